package ready

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/bootfw"
	"github.com/sentryha/sentry/internal/disks"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/mdstat"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/smart"
)

// Options are where the local facts are read (a test's fixture tree) and
// how often the component works.
type Options struct {
	Mdstat    string // /proc/mdstat; a missing file means no arrays
	Root      string // where sys/ and dev/ are, for disks and loaders ("" is /)
	MountInfo string // /proc/self/mountinfo: the ESPs already mounted
	NetRoot   string // where etc/ is, for the network coverage ("" is /)
	// Mounter makes an ESP readable (nil: an ESP already mounted is read
	// where it is, another one is mounted read-only in a private temporary
	// folder for the read).
	Mounter bootfw.Mounter
	// Smart is how the disks' SMART health is read (smartctl; a test gives
	// a Run of its own). With smartctl's own runner SMART is read only when
	// Root is "/" (a fixture tree's disks are not this machine's) and
	// smartctl is installed; otherwise Disks stays empty, which the verdict
	// takes as "not applicable".
	Smart smart.Options
	// SmartBudget bounds the SMART reads of one refresh, all disks
	// together (0: DefaultSmartBudget); a disk whose turn comes after it is
	// listed as not read.
	SmartBudget   time.Duration
	Interval      time.Duration // DefaultInterval
	FactsInterval time.Duration // DefaultFactsInterval
	Registry      *readiness.Registry
}

func (o Options) withDefaults() Options {
	if o.Mdstat == "" {
		o.Mdstat = "/proc/mdstat"
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.MountInfo == "" {
		o.MountInfo = "/proc/self/mountinfo"
	}
	if o.NetRoot == "" {
		o.NetRoot = "/"
	}
	if o.Mounter == nil {
		o.Mounter = espMounter{root: o.Root, mountinfo: o.MountInfo}
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.FactsInterval <= 0 {
		o.FactsInterval = DefaultFactsInterval
	}
	if o.SmartBudget <= 0 {
		o.SmartBudget = DefaultSmartBudget
	}
	return o
}

// DefaultSmartBudget is the default of Options.SmartBudget: smartctl
// answers in well under a second per disk, each run is bounded by
// smart.DefaultTimeout, and the reads hold up the component's loop (the
// facts are read on it) only this long when disks hang.
const DefaultSmartBudget = time.Minute

// maxDisks is how many disks the facts carry (peer.Facts refuses more).
const maxDisks = 64

// readFacts reads the node's local facts: md arrays, the SMART health of
// the node's own disks (when smartctl is installed), boot loaders and the
// network coverage.
func readFacts(o Options, other []hwid.NIC, now time.Time) *peer.Facts {
	f := &peer.Facts{At: now}
	f.RAID, f.RAIDError = readRAID(o)
	ds, err := disks.Scan(disks.Options{Root: o.Root})
	ds = own(o.Root, ds)
	f.Disks = readSmart(o, ds)
	if err == nil {
		var rep *bootfw.Report
		rep, err = bootfw.Inspect(bootfw.Options{Root: o.Root, Mounter: o.Mounter}, ds)
		if err == nil {
			l := &peer.Loader{Mode: rep.Mode, GRUB: rep.GRUB}
			for _, e := range rep.ESPs {
				l.ESPs = append(l.ESPs, peer.ESP{Device: e.Device, Fallback: e.Fallback, Digest: e.Digest, Err: e.Err})
			}
			f.Loader = l
		}
	}
	if err != nil {
		f.LoaderErr = err.Error()
	}
	cov, err := bootcheck.NetworkCoverage(o.NetRoot, other)
	switch {
	case err != nil:
		f.NetErr = err.Error()
	case !cov.Covered && len(other) == 0:
		// Names that need the other machine's NICs: unknown until its
		// status brings them, not a fault.
		f.NetErr = "the other machine's NICs are not known yet: " + cov.Detail
	default:
		f.Network = &peer.Network{Method: cov.Method, Covered: cov.Covered, Detail: cov.Detail}
	}
	return f
}

// readSmart reads the SMART health of each disk, one after the other,
// within o.SmartBudget. Without smartctl (or under a fixture root with
// smartctl's own runner) it reads nothing: no disk is listed. A disk
// without SMART (a virtual disk) or that could not be read is listed with
// Passed nil and the reason in Detail; the verdict skips it.
func readSmart(o Options, ds []disks.Disk) []peer.DiskHealth {
	if len(ds) == 0 || (o.Smart.Run == nil && o.Root != "/") || !smart.Available(o.Smart) {
		return nil
	}
	budget := o.SmartBudget
	if budget <= 0 {
		budget = DefaultSmartBudget
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	var out []peer.DiskHealth
	for _, d := range ds {
		if len(out) == maxDisks {
			break
		}
		dh := peer.DiskHealth{Device: "/dev/" + d.Name, Serial: d.Serial}
		if ctx.Err() != nil {
			dh.Detail = "SMART not read: the time for one round of SMART reads (" + budget.String() + ") ran out"
		} else {
			h, err := smart.Read(ctx, d.Name, o.Smart)
			if h.Serial != "" {
				dh.Serial = h.Serial
			}
			dh.Passed, dh.Detail = h.Passed, h.Detail
			if err != nil && dh.Detail == "" {
				dh.Detail = err.Error()
			}
		}
		dh.Device, dh.Serial, dh.Detail = cut(dh.Device, 128), cut(dh.Serial, 128), cut(dh.Detail, 1024)
		out = append(out, dh)
	}
	return out
}

// cut bounds a string for the facts (peer.Facts bounds what crosses), at
// the start of a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// readRAID reads the md arrays (cheap: /proc/mdstat), with the error that
// kept them unread.
func readRAID(o Options) ([]peer.RAIDArray, string) {
	arrays, err := mdstat.ReadFile(o.Mdstat)
	if err != nil {
		return nil, err.Error()
	}
	var out []peer.RAIDArray
	for _, a := range arrays {
		x := peer.RAIDArray{Name: a.Name, Level: a.Level, Members: a.Members, Up: a.Up, Action: a.Action, Progress: a.Progress, Failed: a.Failed}
		if x.Action == "recovery" {
			x.Action = "recover" // readiness's name
		}
		if a.State != "active" {
			x.Failed = append(x.Failed, "(array "+a.State+")")
		}
		out = append(out, x)
	}
	return out, ""
}

// own keeps the disks whose device node is in root's dev/: a container
// sees the host's disks in /sys, not in its own /dev, and has no disk set
// of its own to boot.
func own(root string, ds []disks.Disk) []disks.Disk {
	var out []disks.Disk
	for _, d := range ds {
		if _, err := os.Stat(filepath.Join(root, "dev", d.Name)); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// NodeOf is a node's status as the checks read it, measured at at (nil:
// nil).
func NodeOf(s *peer.NodeStatus, at time.Time) *readiness.Node {
	if s == nil {
		return nil
	}
	n := &readiness.Node{Name: s.Name, Role: s.Role, Generation: s.Generation, SafeMode: s.SafeMode, StatusAt: at,
		ConfigHead: s.ConfigHead, ConfigHeadAt: s.ConfigHeadAt, ConfigApplied: s.ConfigApplied, ConfigFailed: s.ConfigFailed,
		ConfigError: s.ConfigError, ConfigRetry: s.ConfigRetry, ConfigDrift: s.ConfigDrift, ConfigAt: at,
		Modules: s.Modules, ModulesAt: at, BoundaryPending: s.BoundaryPending}
	for _, r := range s.Results {
		n.Probes = append(n.Probes, readiness.Probe{Name: r.Probe, OK: r.OK, Message: r.Message, At: r.Start, Duration: time.Duration(r.DurationMS) * time.Millisecond})
	}
	fillFacts(n, s.Facts)
	if r := s.Restore; r != nil {
		n.Backup = &readiness.BackupFacts{At: r.At, Repo: r.Repo, Snapshot: r.Snapshot, RestoreErr: r.Err}
	}
	return n
}

// fillFacts puts a node's facts (from its status) into the verdict's
// node. A part not read stays nil: the check says unknown.
func fillFacts(n *readiness.Node, f *peer.Facts) {
	if f == nil {
		return
	}
	if f.RAIDError == "" {
		r := &readiness.RAIDFacts{At: f.At}
		for _, a := range f.RAID {
			r.Arrays = append(r.Arrays, readiness.Array{Name: a.Name, Level: a.Level, Members: a.Members, Up: a.Up,
				Action: a.Action, Progress: a.Progress, Failed: a.Failed})
		}
		n.RAID = r
	}
	n.DisksAt = f.At
	for _, d := range f.Disks {
		n.Disks = append(n.Disks, readiness.DiskHealth{Device: d.Device, Serial: d.Serial, Passed: d.Passed, Detail: d.Detail})
	}
	if l := f.Loader; l != nil {
		lf := &readiness.LoaderFacts{At: f.At, Mode: l.Mode, GRUBDisks: l.GRUB}
		unread := false
		for _, e := range l.ESPs {
			unread = unread || e.Err != ""
			lf.ESPs = append(lf.ESPs, readiness.ESP{Device: e.Device, Fallback: e.Fallback, Digest: e.Digest})
		}
		if !unread { // an ESP that could not be read: unknown, not "no fallback loader"
			n.Loaders = lf
		}
	}
	if nw := f.Network; nw != nil {
		n.Network = &readiness.NetFacts{At: f.At, Method: nw.Method, Covered: nw.Covered, Detail: nw.Detail}
	}
}

// espMounter reads an ESP where it is mounted already (mountinfo), else
// mounts it read-only (no exec, no devices, no setuid) in a private
// temporary folder and unmounts it after the read.
type espMounter struct {
	root      string
	mountinfo string
}

func (m espMounter) Mount(dev string) (string, func(), error) {
	if dir, ok := mountedAt(m.mountinfo, dev); ok {
		return filepath.Join(m.root, dir), func() {}, nil
	}
	if m.root != "/" {
		return "", nil, fmt.Errorf("%s is not mounted", dev)
	}
	dir, err := os.MkdirTemp("", "sentry-esp-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	flags := uintptr(syscall.MS_RDONLY | syscall.MS_NOEXEC | syscall.MS_NODEV | syscall.MS_NOSUID)
	if err := syscall.Mount(dev, dir, "vfat", flags, ""); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("mounting %s read-only: %w", dev, err)
	}
	return dir, func() {
		syscall.Unmount(dir, 0)
		os.Remove(dir)
	}, nil
}

// mountedAt finds where dev is mounted, from a mountinfo file: fields
// "id parent major:minor root mountpoint options ... - fstype source
// superoptions"; a bind mount of a subfolder (root not /) does not count.
func mountedAt(path, dev string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 2 || a[3] != "/" || b[1] != dev {
			continue
		}
		return unescape(a[4]), true
	}
	return "", false
}

// unescape undoes mountinfo's octal escapes (\040 is a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

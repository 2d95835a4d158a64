// Package lab runs two real Debian nodes on one machine: two "hardware"
// network namespaces with fixed MACs, an "office" namespace for clients, and
// two disk sets (P and S) as overlays on a cached base root filesystem, each
// booted with systemd as PID 1 under systemd-nspawn.
//
// Everything the lab starts is recorded (PIDs with their start times, mounts,
// namespaces) in a state file, and Down stops exactly that.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Paths of external commands; variables so tests and odd hosts can change them.
var (
	IPCmd        = "ip"
	NspawnCmd    = "systemd-nspawn"
	NsenterCmd   = "nsenter"
	DebootstrapC = "debootstrap"
	ChrootCmd    = "chroot"
)

// Defaults for the lab's folders.
const (
	DefaultCacheDir = "/var/cache/sentry-lab"
	DefaultStateDir = "/var/lib/sentry-lab"
)

// ErrNotRunning is returned when a command needs a running lab or node.
var ErrNotRunning = errors.New("lab is not running")

// Hardware is one machine of the lab: a network namespace with one NIC.
type Hardware struct {
	ID  string // "a" or "b"
	NIC string // interface name inside the namespace
	MAC string
}

// DiskSet is one set of "RAID disks": an overlay on the base.
type DiskSet struct {
	ID       string // "P" or "S"
	Hostname string
	Home     string // the hardware it was installed on
	Address  string // the address its installed network config gives it, CIDR
}

// The lab's fixed topology. The two machines deliberately name their NICs
// differently (as two real servers of different makes would), so that a disk
// set booted on the other machine finds a NIC it was not configured for.
var (
	Machines = []Hardware{
		{ID: "a", NIC: "enp1s0", MAC: "02:00:00:00:0a:01"},
		{ID: "b", NIC: "eno1", MAC: "02:00:00:00:0b:01"},
		// c is a third machine nobody installed on: an unknown (or
		// replacement) machine for the boot decision.
		{ID: "c", NIC: "ens3", MAC: "02:00:00:00:0c:01"},
	}
	Sets = []DiskSet{
		{ID: "P", Hostname: "node-p", Home: "a", Address: "192.0.2.10/24"},
		{ID: "S", Hostname: "node-s", Home: "b", Address: "192.0.2.20/24"},
	}
	OfficeAddress = "192.0.2.100/24"
)

// Options configure a Lab.
type Options struct {
	// Name prefixes the namespaces ("" gives hw-a, hw-b and office; "x"
	// gives x-hw-a, x-hw-b and x-office) and names the state folder.
	Name     string
	CacheDir string
	StateDir string
	// Mirror is the Debian mirror for the base; "" reads the host's apt sources.
	Mirror string
	// HostSources lists the host's apt source files the mirror is read
	// from when Mirror is ""; nil means DefaultHostSources.
	HostSources []string
	// BasePackages is what debootstrap installs on top of minbase; nil
	// means DefaultBasePackages.
	BasePackages []string
	// Binary is what is installed into both disk sets: a Debian package
	// (a path ending in .deb, installed with dpkg), or a bare sentry binary
	// (copied to /usr/local/bin/sentry with the agent's unit it prints:
	// sentry agent unit); the nodes are then ready when sentry-agent is
	// active too. "" installs no sentry.
	Binary string
	// NoBootcheckInstall leaves out the operator's `sentry bootcheck
	// install` after sentry is installed: the role services get no
	// drop-ins. The rolling-upgrade test installs the previous release so,
	// whose install wrote unit copies that shadow its package's.
	NoBootcheckInstall bool
	// Log receives progress lines.
	Log io.Writer
	// Terminal says Log is a terminal: the progress of a long step is then
	// one line rewritten in place, instead of one line per step.
	Terminal bool
	// BootTimeout bounds the wait for a node's services.
	BootTimeout time.Duration
}

// Lab is a handle on the two-node lab; it is cheap to make. It only
// sequences the lab's operations (Up, Down, Swap, Move, ...); each part of
// the lab is a type of its own with its own state.
type Lab struct {
	opt   Options
	log   logFunc
	prog  *progress
	net   *netns      // the network namespaces
	state *stateFile  // what runs, and the lab's lock
	base  *baseCache  // the debootstrapped base
	apt   *aptCache   // the lab's apt repository and kernel tree
	sets  *diskSets   // the disk sets: overlays, installs, mounts
	nodes *nodeRunner // a node's lifecycle: boot, wait, command, stop
}

// logFunc prints one progress line.
type logFunc func(format string, args ...any)

// New returns a Lab with defaults filled in.
func New(opt Options) *Lab {
	if opt.CacheDir == "" {
		opt.CacheDir = DefaultCacheDir
	}
	if opt.StateDir == "" {
		opt.StateDir = DefaultStateDir
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if opt.BootTimeout == 0 {
		opt.BootTimeout = 3 * time.Minute
	}
	if opt.BasePackages == nil {
		opt.BasePackages = DefaultBasePackages()
	}
	if opt.HostSources == nil {
		opt.HostSources = DefaultHostSources()
	}
	name := opt.Name
	if name == "" {
		name = "default"
	}
	root := filepath.Join(opt.StateDir, name)
	prog := newProgress(opt.Log, opt.Terminal)
	log := prog.logf
	l := &Lab{opt: opt, log: log, prog: prog}
	l.net = &netns{prefix: opt.Name}
	l.state = &stateFile{dir: root}
	l.base = &baseCache{cacheDir: opt.CacheDir, mirror: opt.Mirror, packages: opt.BasePackages,
		sources: opt.HostSources, log: log, prog: prog}
	l.apt = &aptCache{cacheDir: opt.CacheDir, log: log, prog: prog}
	l.sets = &diskSets{dir: root, base: l.base, apt: l.apt, binary: opt.Binary, noBootcheckInstall: opt.NoBootcheckInstall, log: log, prog: prog}
	l.nodes = &nodeRunner{name: opt.Name, net: l.net, sets: l.sets, state: l.state,
		binary: opt.Binary, bootTimeout: opt.BootTimeout, log: log, prog: prog}
	return l
}

// NS returns the namespace name of hardware id ("a", "b") or "office".
func (l *Lab) NS(id string) string { return l.net.name(id) }

// MachineFile is the host's path of one of machine id's files that its
// node sees under HardwareMount (MachineMdstat, MachineClockOffset): tests
// write them to inject a fault.
func (l *Lab) MachineFile(id, name string) string {
	return filepath.Join(l.sets.hardwareDir(), id, name)
}

// SetRoot is where disk set id is mounted on the host while it runs.
func (l *Lab) SetRoot(id string) string { return l.sets.root(id) }

// AptRepoDir is the lab's apt repository on the host.
func (l *Lab) AptRepoDir() string { return l.apt.repoDir() }

// BaseReady tells whether the cached base matches what this binary wants.
func (l *Lab) BaseReady() bool { return l.base.ready() }

// EnsureBase builds the base root filesystem once; later calls return at once.
func (l *Lab) EnsureBase(ctx context.Context) error { return l.base.ensure(ctx) }

// EnsureApt builds the lab's apt repository and kernel tree once.
func (l *Lab) EnsureApt(ctx context.Context) error { return l.apt.ensure(ctx) }

func machine(id string) (Hardware, bool) {
	for _, m := range Machines {
		if m.ID == id {
			return m, true
		}
	}
	return Hardware{}, false
}

func diskSet(id string) (DiskSet, bool) {
	for _, s := range Sets {
		if s.ID == id {
			return s, true
		}
	}
	return DiskSet{}, false
}

// resolveNode turns what the user typed (P, S, node-p, hw-a, a, ...) into the
// running node it means.
func (st *State) resolveNode(net *netns, name string) (*NodeState, error) {
	n := strings.TrimSpace(name)
	for i := range st.Nodes {
		nd := &st.Nodes[i]
		ds, _ := diskSet(nd.Set)
		for _, alias := range []string{nd.Set, strings.ToLower(nd.Set), ds.Hostname, nd.Hardware, "hw-" + nd.Hardware, net.name(nd.Hardware)} {
			if n == alias {
				return nd, nil
			}
		}
	}
	return nil, fmt.Errorf("no running node %q (use P, S, node-p, node-s, hw-a, hw-b or hw-c)", name)
}

// ErrNeedRoot is returned by commands that must run as root.
var ErrNeedRoot = errors.New("the lab needs root (namespaces, mounts, systemd-nspawn)")

func needRoot() error {
	if os.Geteuid() != 0 {
		return ErrNeedRoot
	}
	return nil
}

package bootcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// RunDir holds this boot's decision: ResultName (the whole of it, JSON),
// RoleName (present when the role's services may start; the role units'
// drop-ins have ConditionPathExists on it) and SafeName (the reason, in
// safe mode). Paths.RunDir names another (a fixture tree).
const RunDir = "/run/sentry"

// Paths are the machine's files and folders that a boot check reads and
// writes besides the state folder. A field left empty means the machine's
// own: the constant of the same name (hwid.DMIDir for DMIDir).
type Paths struct {
	RunDir        string // this boot's decision
	NetworkDir    string // the installed systemd-networkd configuration
	RunNetworkDir string // where this boot's network configuration goes
	// The driver check reads the PCI devices in SysDir (or in the folder
	// that the environment variable SysEnv names), the module trees in
	// ModulesDir and the firmware in FirmwareDir.
	SysDir      string
	ModulesDir  string
	FirmwareDir string
	// DMIDir is where the hardware identity's DMI attributes are read
	// from, when Options.HW names no folder.
	DMIDir string
}

// Resolved returns p with its empty fields set to the machine's own.
func (p Paths) Resolved() Paths {
	for _, f := range []struct {
		v   *string
		def string
	}{
		{&p.RunDir, RunDir}, {&p.NetworkDir, NetworkDir}, {&p.RunNetworkDir, RunNetworkDir},
		{&p.SysDir, SysDir}, {&p.ModulesDir, ModulesDir}, {&p.FirmwareDir, FirmwareDir}, {&p.DMIDir, hwid.DMIDir},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	return p
}

// File names in RunDir and the state folder.
const (
	ResultName = "bootcheck.json"
	RoleName   = "role"
	SafeName   = "safe-mode"
	// LastName, in the state folder, is the previous boot's result: a
	// failover is a primary boot on other hardware than the last one.
	LastName = "bootcheck-last.json"
)

// Options configure Run.
type Options struct {
	StateDir string
	// MachinesFile is the cluster's machine profiles ("": MachinesFile).
	MachinesFile string
	// Paths are the other files and folders (the zero value: the machine's).
	Paths Paths
	HW    hwid.Options
	// Identify, when set, replaces hwid.Detect(HW) (tests).
	Identify func() (hwid.Identity, error)
	// ProbeWindow bounds the ARP probe of the primary's addresses;
	// PeerTimeout the one hello to the peer agent. They run together; the
	// whole check ends within ProbeWindow + PeerTimeout.
	ProbeWindow time.Duration
	PeerTimeout time.Duration
	// Budget bounds the whole run (0: DefaultBudget). Past it, the run
	// writes a safe-mode decision that names the stage it was in, and
	// returns. Keep it below the unit's TimeoutStartSec (UnitTimeout): a
	// run that systemd kills writes no decision at all.
	Budget time.Duration
	// NoNetwork leaves links and addresses alone (no probe, no address):
	// for `bootcheck explain --dry-run` and tests.
	NoNetwork bool
	Console   io.Writer
	Log       *slog.Logger
}

// Stage is one timed step of a run.
type Stage struct {
	Name  string  `json:"name"`
	MS    float64 `json:"ms"`
	Error string  `json:"error,omitempty"`
}

// Probe is one check made before taking the primary role.
type Probe struct {
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Answered bool    `json:"answered"`
	Detail   string  `json:"detail"`
	MS       float64 `json:"ms"`
	// Error is set when the check could not be made (a socket or netlink
	// error): that is not "nobody answered", and explain says so.
	Error string `json:"error,omitempty"`
	// Holder is the MAC that answered ARP for one of the addresses.
	Holder string `json:"holder,omitempty"`
	// Peer is what the peer agent said of itself (role, generation).
	Peer *PeerClaim `json:"peer,omitempty"`
}

// Result is a boot decision with all its evidence; `sentry bootcheck
// explain` prints it.
type Result struct {
	ID             string     `json:"id"`
	Time           time.Time  `json:"time"`
	TookMS         float64    `json:"took_ms"`
	Outcome        string     `json:"outcome"`
	Reason         string     `json:"reason"`
	Failover       bool       `json:"failover"`
	Hardware       string     `json:"hardware"`
	HardwareSource string     `json:"hardware_source,omitempty"`
	NICs           []hwid.NIC `json:"nics,omitempty"`
	Home           bool       `json:"home"`
	HomeHardware   string     `json:"home_hardware,omitempty"`
	Cluster        string     `json:"cluster,omitempty"`
	DiskSet        string     `json:"disk_set,omitempty"`
	Role           string     `json:"role,omitempty"`
	Generation     uint64     `json:"generation,omitempty"`
	KnownMachines  []string   `json:"known_machines,omitempty"`
	// Replaces is the machine this one was adopted in place of; HomeOf
	// the node whose home this machine is, or stands in for.
	Replaces string `json:"replaces,omitempty"`
	HomeOf   string `json:"home_of,omitempty"`
	// UnknownMachine marks a safe mode that `sentry bootcheck adopt` can lift.
	UnknownMachine bool     `json:"unknown_machine,omitempty"`
	Network        *Plan    `json:"network,omitempty"`
	Probes         []Probe  `json:"probes,omitempty"`
	Stages         []Stage  `json:"stages"`
	Warnings       []string `json:"warnings,omitempty"`
	// PreviousHardware is where this disk set booted last time.
	PreviousHardware string `json:"previous_hardware,omitempty"`
	// Drivers says whether these disks carry the drivers (and firmware) of
	// this machine's storage and network devices, with the evidence.
	Drivers *inventory.CompatReport `json:"drivers,omitempty"`
}

// RoleStarts says the role's services may start.
func (r *Result) RoleStarts() bool { return r.Outcome != SafeMode }

type runner struct {
	opt Options
	res *Result
	log *slog.Logger

	// mu guards what the budget's timer reads and sets while the run goes
	// on: the evidence as of the current stage's start (snap), the stage,
	// the warnings, and whether the run may still write (sealed: the budget
	// ran out first; committing: the run writes its decision).
	mu         sync.Mutex
	snap       Result
	stageName  string
	stageStart time.Time
	sealed     bool
	committing bool
	taken      []takenAddr
}

// stage runs one named step, timed and bracketed in the log.
func (r *runner) stage(name string, f func() error) error {
	t := time.Now()
	r.mu.Lock()
	r.snap = cloneResult(r.res)
	r.stageName, r.stageStart = name, t
	r.mu.Unlock()
	r.log.Debug("stage start", "stage", name)
	err := f()
	s := Stage{Name: name, MS: ms(time.Since(t))}
	if err != nil {
		s.Error = err.Error()
		r.log.Warn("stage failed", "stage", name, "err", err)
	} else {
		r.log.Debug("stage finish", "stage", name, "ms", s.MS)
	}
	r.mu.Lock()
	r.res.Stages = append(r.res.Stages, s)
	r.stageName = ""
	r.mu.Unlock()
	return err
}

// warn adds a warning to the result and logs it.
func (r *runner) warn(w string) {
	r.log.Warn(w)
	r.mu.Lock()
	r.res.Warnings = append(r.res.Warnings, w)
	r.mu.Unlock()
}

// cloneResult copies a result with its own lists, so the budget's timer
// can read the copy while the run appends to the original. The network
// plan is left out: a run over its budget writes the safe network.
func cloneResult(r *Result) Result {
	c := *r
	c.NICs = slices.Clone(r.NICs)
	c.KnownMachines = slices.Clone(r.KnownMachines)
	c.Probes = slices.Clone(r.Probes)
	c.Stages = slices.Clone(r.Stages)
	c.Warnings = slices.Clone(r.Warnings)
	c.Network = nil
	return c
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runFinished, when set (tests), is called with the result when the run
// itself ends, also after the budget gave up on it.
var runFinished func(*Result)

// errOverBudget is what a run that the budget gave up on returns to no one.
var errOverBudget = errors.New("the boot check ran out of time")

// Run makes the boot decision, writes this boot's network configuration
// and the result files, and returns the result. An error means the result
// could not be written; the decision itself is always in the result.
// When the run takes longer than opt.Budget, a safe-mode decision naming
// the stage it was in is written instead, and Run returns it: systemd must
// not be the one to stop the boot check (it would leave no decision).
func Run(ctx context.Context, opt Options) (*Result, error) {
	start := time.Now()
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.ProbeWindow == 0 {
		opt.ProbeWindow = 600 * time.Millisecond
	}
	if opt.PeerTimeout == 0 {
		opt.PeerTimeout = 1500 * time.Millisecond
	}
	if opt.Budget <= 0 {
		opt.Budget = DefaultBudget
	}
	if opt.MachinesFile == "" {
		opt.MachinesFile = MachinesFile
	}
	opt.Paths = opt.Paths.Resolved()
	if opt.HW.DMIDir == "" {
		opt.HW.DMIDir = opt.Paths.DMIDir
	}
	r := &runner{opt: opt, res: &Result{ID: newID(), Time: start.UTC()}, log: opt.Log}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type out struct {
		res *Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := r.run(ctx, start)
		if runFinished != nil {
			runFinished(res)
		}
		done <- out{res, err}
	}()
	budget := time.NewTimer(opt.Budget)
	defer budget.Stop()
	select {
	case o := <-done:
		return o.res, o.err
	case <-budget.C:
	}
	r.mu.Lock()
	if r.committing {
		// The decision is being written: let it finish.
		r.mu.Unlock()
		o := <-done
		return o.res, o.err
	}
	r.sealed = true
	res, name, since := cloneResult(&r.snap), r.stageName, time.Since(r.stageStart)
	r.mu.Unlock()
	cancel()
	if name == "" {
		name, since = "(between stages)", 0
	}
	if res.Outcome != "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("before the budget ran out, the decision was %s: %s", res.Outcome, res.Reason))
	}
	res.Outcome, res.Failover, res.UnknownMachine = SafeMode, false, false
	res.Reason = fmt.Sprintf("the boot check did not finish within %s: it was still in stage %s after %s; the role's services are held",
		opt.Budget, name, since.Round(time.Millisecond))
	res.Stages = append(res.Stages, Stage{Name: name, MS: ms(since), Error: "did not finish within the budget of " + opt.Budget.String()})
	r.giveBack(func(w string) { res.Warnings = append(res.Warnings, w) })
	res.Network = SafeNetwork(res.NICs)
	opt.Log.Warn("the boot check ran out of time: safe mode", "budget", opt.Budget, "stage", name)
	var werr error
	if !opt.NoNetwork {
		if err := WritePlan(opt.Paths.RunNetworkDir, res.Network); err != nil {
			werr = fmt.Errorf("network configuration: %w", err)
		}
	}
	res.TookMS = ms(time.Since(start))
	if err := writeRun(opt.Paths.RunDir, &res); err != nil {
		werr = errors.Join(werr, err)
	}
	b, _ := json.MarshalIndent(&res, "", "  ")
	werr = errors.Join(werr, writeFile(filepath.Join(opt.Paths.RunDir, ResultName), append(b, '\n')))
	console(opt.Console, &res)
	return &res, werr
}

// run is the boot check itself, stage by stage.
func (r *runner) run(ctx context.Context, start time.Time) (*Result, error) {
	opt := r.opt
	in := Input{StampPath: filepath.Join(opt.StateDir, stamp.StampFile), ClusterPath: filepath.Join(opt.StateDir, stamp.ClusterFile)}
	var node *pki.Node
	var cl *stamp.Cluster
	res := r.res
	r.stage("read-stamp", func() error {
		in.Stamp, in.StampErr = stamp.ReadStamp(in.StampPath)
		c, cerr := stamp.ReadCluster(in.ClusterPath)
		if cerr == nil {
			cl = c
			in.StateCluster, in.Node = c.ClusterID, c.NodeName
		} else if !errors.Is(cerr, stamp.ErrMissing) {
			r.warn(fmt.Sprintf("the cluster state is unreadable (%v): the peer is not asked at boot", cerr))
		}
		n, nerr := pki.Load(filepath.Join(opt.StateDir, "pki"))
		if nerr == nil {
			node = n
			in.CACluster = n.Cluster
		}
		_, pkiErr := os.Stat(filepath.Join(opt.StateDir, "pki"))
		in.Paired = cerr == nil || !errors.Is(cerr, stamp.ErrMissing) || pkiErr == nil
		if in.Stamp != nil {
			res.HomeHardware, res.Cluster, res.DiskSet, res.Role, res.Generation = in.Stamp.HomeHardware, in.Stamp.ClusterID, in.Stamp.DiskSet, in.Stamp.Role, in.Stamp.Generation
		}
		return in.StampErr
	})
	r.stage("identify-hardware", func() error {
		if opt.Identify != nil {
			in.Here, in.HereErr = opt.Identify()
		} else {
			in.Here, in.HereErr = hwid.Detect(opt.HW)
		}
		res.Hardware, res.HardwareSource, res.NICs = in.Here.ID, in.Here.Source, in.Here.NICs
		return in.HereErr
	})
	r.stage("read-profiles", func() error {
		m, err := ReadMachines(opt.MachinesFile)
		in.Machines = m
		a, aerr := ReadMachines(filepath.Join(opt.StateDir, AdoptedName))
		in.Adopted = a
		if errors.Is(err, ErrNoProfiles) {
			err = nil
		}
		if errors.Is(aerr, ErrNoProfiles) {
			aerr = nil
		}
		// The decision goes on with what could be read, and says so: a
		// list it could not read may be what would have known this
		// machine.
		in.MachinesErr, in.AdoptedErr = err, aerr
		for _, e := range []error{err, aerr} {
			if e != nil {
				r.warn(fmt.Sprintf("a machine list could not be read (%v): this boot decides without what it holds", e))
			}
		}
		return errors.Join(err, aerr)
	})
	d := Decide(in)
	res.Outcome, res.Reason, res.Failover, res.Home = d.Outcome, d.Reason, d.Failover, d.Home
	res.Replaces, res.HomeOf = d.Replaces, d.HomeOf
	if in.Machines != nil {
		for _, m := range in.Machines.Machine {
			res.KnownMachines = append(res.KnownMachines, m.ID)
		}
	}
	res.UnknownMachine = d.UnknownMachine
	if last, err := readResult(filepath.Join(opt.StateDir, LastName)); err == nil {
		res.PreviousHardware = last.Hardware
	}

	if d.Outcome == Primary || d.Outcome == Secondary {
		r.stage("check-drivers", func() error {
			rep, err := checkDrivers(opt.Paths)
			if rep == nil {
				return err
			}
			res.Drivers = rep
			if err != nil {
				// Part of the evidence is missing: the verdicts that
				// rest on it are unknown, not failed, and the boot says
				// why.
				r.warn(fmt.Sprintf("the driver check is incomplete: %v (the verdicts that need it are unknown)", err))
			}
			if rep.Boots == "no" {
				r.warn("these disks lack drivers for this machine: " + strings.Join(rep.Because, "; ") +
					" (sentry compat; sentry parity plan adds them)")
			}
			return err
		})
		var plan *Plan
		err := r.stage("adapt-network", func() error {
			var err error
			plan, err = r.networkPlan(d, in)
			return err
		})
		if err != nil {
			d = safe("cannot bring the %s's addresses up on this machine: %v", d.Outcome, err)
			res.Outcome, res.Reason, res.Failover = d.Outcome, d.Reason, false
		} else {
			res.Network = plan
		}
	}
	if res.Outcome == Primary && !opt.NoNetwork {
		r.stage("probe", func() error {
			why, refuse, err := r.probePrimary(ctx, in, node, cl)
			if refuse {
				res.Outcome, res.Reason, res.Failover = SafeMode, why, false
			}
			return err
		})
	}
	if res.Outcome == SafeMode {
		res.Network = SafeNetwork(in.Here.NICs)
	}
	r.mu.Lock()
	sealed := r.sealed
	r.committing = !sealed
	r.mu.Unlock()
	if sealed {
		r.giveBack(r.warn)
		return res, errOverBudget
	}
	var werr error
	r.stage("write-result", func() error {
		if res.Network != nil && !opt.NoNetwork {
			if err := WritePlan(opt.Paths.RunNetworkDir, res.Network); err != nil {
				werr = fmt.Errorf("network configuration: %w", err)
				return werr
			}
		}
		res.TookMS = ms(time.Since(start))
		werr = writeRun(opt.Paths.RunDir, res)
		if werr == nil && res.Outcome != SafeMode && res.Outcome != Unpaired {
			if b, err := json.MarshalIndent(res, "", "  "); err == nil {
				werr = atomicfile.Write(filepath.Join(opt.StateDir, LastName), append(b, '\n'), 0o644)
			}
		}
		return werr
	})
	res.TookMS = ms(time.Since(start))
	if werr == nil {
		b, _ := json.MarshalIndent(res, "", "  ")
		werr = writeFile(filepath.Join(opt.Paths.RunDir, ResultName), append(b, '\n'))
	}
	console(opt.Console, res)
	return res, werr
}

// Paths read by the driver check (Paths names others). SysEnv, when set in
// the environment, names another sysfs tree to read the machine's PCI
// devices from (the lab gives each of its machines its own list).
const (
	SysDir      = "/sys"
	ModulesDir  = "/lib/modules"
	FirmwareDir = "/lib/firmware"
	SysEnv      = "SENTRY_INVENTORY_SYS"
)

// checkDrivers matches this machine's PCI devices against the module trees
// and firmware on these disks (no dpkg, no initramfs: a boot-time check).
// With an error and a report, the report is partial: the firmware could
// not be listed, so no device is failed for missing firmware (its verdict
// is unknown, naming the error).
func checkDrivers(p Paths) (*inventory.CompatReport, error) {
	sys := p.SysDir
	if v := os.Getenv(SysEnv); v != "" {
		sys = v
	}
	hw, err := inventory.ReadHardware(sys)
	if err != nil {
		return nil, fmt.Errorf("PCI devices in %s: %w", sys, err)
	}
	inv := &inventory.Inventory{SchemaVersion: inventory.SchemaVersion}
	dirs, _ := filepath.Glob(filepath.Join(p.ModulesDir, "*"))
	for _, d := range dirs {
		k, err := inventory.ReadKernel(d)
		if err != nil {
			continue
		}
		// The firmware the modules of this machine's devices name.
		m := k.Matcher()
		for _, dev := range hw.PCI {
			for _, name := range m.ModulesFor(dev.Modalias) {
				k.ReadModuleFirmware(p.ModulesDir, name)
			}
		}
		inv.Kernels = append(inv.Kernels, k)
	}
	fw, ferr := readFirmware(p.FirmwareDir)
	inv.Firmware = fw
	rep := inventory.Compat(inv, &hw)
	if ferr != nil {
		firmwareUnknown(&rep, ferr)
	}
	return &rep, ferr
}

// readFirmware lists the firmware on these disks. No firmware folder at
// all is a fact (none of it is there); a folder that cannot be read, or
// read to the end, is an error naming it (what was listed is returned).
func readFirmware(dir string) ([]string, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	fw, err := inventory.ReadFirmware(dir)
	if err != nil {
		return fw, fmt.Errorf("the firmware in %s could not be listed: %w", dir, err)
	}
	return fw, nil
}

// firmwareUnknown turns the devices failed for missing firmware into
// unknown ones (the listing was incomplete: the file may be there), and
// sums the report up again as inventory.Compat does.
func firmwareUnknown(rep *inventory.CompatReport, why error) {
	changed := false
	for i := range rep.Devices {
		ev := &rep.Devices[i]
		if ev.Verdict == "fail" && ev.Cause == inventory.CauseMissingFirmware {
			ev.Verdict, ev.Cause = inventory.StateUnknown, inventory.CauseFirmwareUnknown
			ev.Reason = fmt.Sprintf("module %s needs firmware %s, and %v", ev.Module, strings.Join(ev.Firmware, ", "), why)
			changed = true
		}
	}
	if !changed {
		return
	}
	var fails, unknowns []string
	for _, ev := range rep.Devices {
		line := fmt.Sprintf("%s %s %s", ev.Slot, ev.Kind, ev.ID)
		if ev.Driver != "" {
			line += " (" + ev.Driver + " on its machine)"
		}
		switch ev.Verdict {
		case "fail":
			fails = append(fails, line+": "+ev.Reason)
		case inventory.StateUnknown:
			unknowns = append(unknowns, line+": "+ev.Reason)
		}
	}
	switch {
	case len(fails) > 0:
		rep.Boots, rep.Because = "no", fails
	default:
		rep.Boots, rep.Because = inventory.StateUnknown, unknowns
	}
}

// networkPlan maps the role's installed network files to this machine.
func (r *runner) networkPlan(d Decision, in Input) (*Plan, error) {
	home := in.Here.NICs
	if d.HomeMachine != nil && len(d.HomeMachine.NICs) > 0 {
		home = d.HomeMachine.NICs
	} else if !d.Home {
		return nil, fmt.Errorf("the home machine's profile (%s) is not in %s, so its NICs cannot be mapped to this machine's", in.Stamp.HomeHardware, r.opt.MachinesFile)
	}
	files, err := RoleNetworks(r.opt.Paths.NetworkDir, home)
	if err != nil {
		return nil, err
	}
	var extra []string
	if d.Outcome == Primary && in.Machines != nil {
		extra = in.Machines.PrimaryAddresses
	}
	if len(files) == 0 && len(extra) == 0 {
		r.warn(fmt.Sprintf("no network file in %s configures the home machine's NICs: the network is left as installed", r.opt.Paths.NetworkDir))
		return &Plan{Files: map[string][]byte{}}, nil
	}
	return AdaptNetwork(files, home, in.Here.NICs, extra)
}

// ConsolePath is the machine's console: `sentry bootcheck run` prints the
// decision there as well as to the journal.
const ConsolePath = "/dev/console"

// console prints the decision where the operator at the machine sees it.
func console(w io.Writer, res *Result) {
	if w == nil {
		return
	}
	switch res.Outcome {
	case SafeMode:
		fmt.Fprintf(w, "sentry bootcheck: SAFE MODE: %s\n", res.Reason)
		fmt.Fprintf(w, "sentry bootcheck: the role's services are held; ssh and the sentry agent run. `sentry bootcheck explain` shows the evidence.\n")
	default:
		fmt.Fprintf(w, "sentry bootcheck: %s: %s (%.0f ms)\n", strings.ToUpper(res.Outcome), res.Reason, res.TookMS)
		if res.Failover {
			fmt.Fprintf(w, "sentry bootcheck: FAILOVER: %s\n", res.failoverLine())
		}
		if res.Network != nil {
			for _, m := range res.Network.Moves {
				fmt.Fprintf(w, "sentry bootcheck: network: %s\n", m)
			}
		}
	}
	for _, wn := range res.Warnings {
		fmt.Fprintf(w, "sentry bootcheck: warning: %s\n", wn)
	}
}

// adoptedText says what this machine was adopted in place of ("" when it
// stands for itself).
func (r *Result) adoptedText() string {
	if r.Replaces == "" {
		return ""
	}
	s := "adopted in place of " + r.Replaces
	if r.HomeOf != "" {
		s += ", the home of " + r.HomeOf
	}
	return s
}

// FailoverText is the failover event's text: the disk set, the machine it
// runs on (with the machine it was adopted in place of) and its home: the
// same machines as the console's FAILOVER line and the decision's reason.
func (r *Result) FailoverText() string {
	where := r.Hardware
	if a := r.adoptedText(); a != "" {
		where += " (" + a + ")"
	}
	return fmt.Sprintf("failover: the primary disk set %s (generation %d) runs on machine %s, its home is %s",
		r.DiskSet, r.Generation, where, r.HomeHardware)
}

// failoverLine is the console's FAILOVER line (without its prefix).
func (r *Result) failoverLine() string {
	home := "home " + r.HomeHardware
	if a := r.adoptedText(); a != "" {
		home = a + "; " + home
	}
	return fmt.Sprintf("the primary disk set runs on machine %s (%s)", r.Hardware, home)
}

// writeRun writes the role and safe-mode markers into runDir.
func writeRun(runDir string, res *Result) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	role, safeP := filepath.Join(runDir, RoleName), filepath.Join(runDir, SafeName)
	if res.Outcome == SafeMode {
		os.Remove(role)
		return writeFile(safeP, []byte(res.Reason+"\n"))
	}
	os.Remove(safeP)
	return writeFile(role, []byte(res.Outcome+"\n"))
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func readResult(p string) (*Result, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &r, nil
}

// Last returns this boot's result (nil, ErrNotExist when bootcheck has not
// run since boot).
func Last() (*Result, error) { return Paths{}.Last() }

// Last returns this boot's result from p.RunDir.
func (p Paths) Last() (*Result, error) {
	return readResult(filepath.Join(p.Resolved().RunDir, ResultName))
}

package bootcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
	"github.com/vishvananda/netlink"
)

// RunDir holds this boot's decision: ResultName (the whole of it, JSON),
// RoleName (present when the role's services may start; the role units'
// drop-ins have ConditionPathExists on it) and SafeName (the reason, in
// safe mode).
var RunDir = "/run/sentry"

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
	HW       hwid.Options
	// Identify, when set, replaces hwid.Detect(HW) (tests).
	Identify func() (hwid.Identity, error)
	// ProbeWindow bounds the ARP probe of the primary's addresses;
	// PeerTimeout the one hello to the peer agent.
	ProbeWindow time.Duration
	PeerTimeout time.Duration
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
}

// stage runs one named step, timed and bracketed in the log.
func (r *runner) stage(name string, f func() error) error {
	t := time.Now()
	r.log.Debug("stage start", "stage", name)
	err := f()
	s := Stage{Name: name, MS: ms(time.Since(t))}
	if err != nil {
		s.Error = err.Error()
		r.log.Warn("stage failed", "stage", name, "err", err)
	} else {
		r.log.Debug("stage finish", "stage", name, "ms", s.MS)
	}
	r.res.Stages = append(r.res.Stages, s)
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Run makes the boot decision, writes this boot's network configuration
// and the result files, and returns the result. An error means the result
// could not be written; the decision itself is always in the result.
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
	r := &runner{opt: opt, res: &Result{ID: newID(), Time: start.UTC()}, log: opt.Log}
	in := Input{StampPath: filepath.Join(opt.StateDir, stamp.StampFile)}
	var node *pki.Node
	var cl *stamp.Cluster
	r.stage("read-stamp", func() error {
		in.Stamp, in.StampErr = stamp.ReadStamp(in.StampPath)
		c, cerr := stamp.ReadCluster(filepath.Join(opt.StateDir, stamp.ClusterFile))
		if cerr == nil {
			cl = c
		}
		n, nerr := pki.Load(filepath.Join(opt.StateDir, "pki"))
		if nerr == nil {
			node = n
			in.CACluster = n.Cluster
		}
		_, pkiErr := os.Stat(filepath.Join(opt.StateDir, "pki"))
		in.Paired = cerr == nil || !errors.Is(cerr, stamp.ErrMissing) || pkiErr == nil
		return in.StampErr
	})
	r.stage("identify-hardware", func() error {
		if opt.Identify != nil {
			in.Here, in.HereErr = opt.Identify()
		} else {
			in.Here, in.HereErr = hwid.Detect(opt.HW)
		}
		return in.HereErr
	})
	r.stage("read-profiles", func() error {
		m, err := ReadMachines(MachinesFile)
		in.Machines = m
		a, aerr := ReadMachines(filepath.Join(opt.StateDir, AdoptedName))
		in.Adopted = a
		if errors.Is(err, ErrNoProfiles) {
			err = nil
		}
		if errors.Is(aerr, ErrNoProfiles) {
			aerr = nil
		}
		return errors.Join(err, aerr)
	})
	d := Decide(in)
	res := r.res
	res.Outcome, res.Reason, res.Failover, res.Home = d.Outcome, d.Reason, d.Failover, d.Home
	res.Hardware, res.HardwareSource, res.NICs = in.Here.ID, in.Here.Source, in.Here.NICs
	if in.Stamp != nil {
		res.HomeHardware, res.Cluster, res.DiskSet, res.Role, res.Generation = in.Stamp.HomeHardware, in.Stamp.ClusterID, in.Stamp.DiskSet, in.Stamp.Role, in.Stamp.Generation
	}
	if in.Machines != nil {
		for _, m := range in.Machines.Machine {
			res.KnownMachines = append(res.KnownMachines, m.ID)
		}
	}
	res.UnknownMachine = d.Outcome == SafeMode && in.Stamp != nil && in.HereErr == nil && d.Machine == nil &&
		(in.CACluster == "" || in.CACluster == in.Stamp.ClusterID)
	if last, err := readResult(filepath.Join(opt.StateDir, LastName)); err == nil {
		res.PreviousHardware = last.Hardware
	}

	if d.Outcome == Primary || d.Outcome == Secondary {
		r.stage("check-drivers", func() error {
			rep, err := checkDrivers()
			if err != nil {
				return err
			}
			res.Drivers = rep
			if rep.Boots == "no" {
				res.Warnings = append(res.Warnings, "these disks lack drivers for this machine: "+strings.Join(rep.Because, "; ")+
					" (sentry compat; sentry parity plan adds them)")
			}
			return nil
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
			if why, ok := r.probePrimary(ctx, in, node, cl); ok {
				res.Outcome, res.Reason, res.Failover = SafeMode, why, false
			}
			return nil
		})
	}
	if res.Outcome == SafeMode {
		res.Network = SafeNetwork(in.Here.NICs)
	}
	var werr error
	r.stage("write-result", func() error {
		if res.Network != nil && !opt.NoNetwork {
			if err := WritePlan(RunNetworkDir, res.Network); err != nil {
				werr = fmt.Errorf("network configuration: %w", err)
				return werr
			}
		}
		res.TookMS = ms(time.Since(start))
		werr = writeRun(res)
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
		werr = writeFile(filepath.Join(RunDir, ResultName), append(b, '\n'))
	}
	r.console()
	return res, werr
}

// Paths read by the driver check; variables for tests. SysEnv, when set in
// the environment, names another sysfs tree to read the machine's PCI
// devices from (the lab gives each of its machines its own list).
var (
	SysDir      = "/sys"
	ModulesDir  = "/lib/modules"
	FirmwareDir = "/lib/firmware"
	SysEnv      = "SENTRY_INVENTORY_SYS"
)

// checkDrivers matches this machine's PCI devices against the module trees
// and firmware on these disks (no dpkg, no initramfs: a boot-time check).
func checkDrivers() (*inventory.CompatReport, error) {
	sys := SysDir
	if v := os.Getenv(SysEnv); v != "" {
		sys = v
	}
	hw, err := inventory.ReadHardware(sys)
	if err != nil {
		return nil, fmt.Errorf("PCI devices in %s: %w", sys, err)
	}
	inv := &inventory.Inventory{SchemaVersion: inventory.SchemaVersion}
	dirs, _ := filepath.Glob(filepath.Join(ModulesDir, "*"))
	for _, d := range dirs {
		k, err := inventory.ReadKernel(d)
		if err != nil {
			continue
		}
		// The firmware the modules of this machine's devices name.
		m := k.Matcher()
		for _, dev := range hw.PCI {
			for _, name := range m.ModulesFor(dev.Modalias) {
				k.ReadModuleFirmware(ModulesDir, name)
			}
		}
		inv.Kernels = append(inv.Kernels, k)
	}
	inv.Firmware, _ = inventory.ReadFirmware(FirmwareDir)
	rep := inventory.Compat(inv, &hw)
	return &rep, nil
}

// networkPlan maps the role's installed network files to this machine.
func (r *runner) networkPlan(d Decision, in Input) (*Plan, error) {
	home := in.Here.NICs
	if d.HomeMachine != nil && len(d.HomeMachine.NICs) > 0 {
		home = d.HomeMachine.NICs
	} else if !d.Home {
		return nil, fmt.Errorf("the home machine's profile (%s) is not in %s, so its NICs cannot be mapped to this machine's", in.Stamp.HomeHardware, MachinesFile)
	}
	files, err := RoleNetworks(NetworkDir, home)
	if err != nil {
		return nil, err
	}
	var extra []string
	if d.Outcome == Primary && in.Machines != nil {
		extra = in.Machines.PrimaryAddresses
	}
	if len(files) == 0 && len(extra) == 0 {
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("no network file in %s configures the home machine's NICs: the network is left as installed", NetworkDir))
		return &Plan{Files: map[string][]byte{}}, nil
	}
	return AdaptNetwork(files, home, in.Here.NICs, extra)
}

// probePrimary makes the one bounded check before taking the primary role:
// does anything hold the primary's addresses, and does the peer agent hold
// a newer primary generation? It returns the reason to refuse.
func (r *runner) probePrimary(ctx context.Context, in Input, node *pki.Node, cl *stamp.Cluster) (string, bool) {
	plan := r.res.Network
	if plan == nil {
		return "", false
	}
	for _, nic := range in.Here.NICs {
		addrs := plan.Addresses[nic.Name]
		if len(addrs) == 0 {
			continue
		}
		link, err := netlink.LinkByName(nic.Name)
		if err != nil {
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("probe: %s: %v", nic.Name, err))
			continue
		}
		if err := netlink.LinkSetUp(link); err != nil {
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("probe: set %s up: %v", nic.Name, err))
			continue
		}
		var ips []net.IP
		for _, a := range addrs {
			if ip, _, err := net.ParseCIDR(a); err == nil && ip.To4() != nil {
				ips = append(ips, ip)
			}
		}
		if len(ips) > 0 {
			t := time.Now()
			held, mac, err := ProbeARP(ctx, nic.Name, ips, r.opt.ProbeWindow)
			var targets []string
			for _, ip := range ips {
				targets = append(targets, ip.String())
			}
			p := Probe{Name: "arp", Target: strings.Join(targets, " ") + " on " + nic.Name, MS: ms(time.Since(t))}
			switch {
			case err != nil:
				p.Detail = err.Error()
			case mac != nil:
				p.Answered, p.Detail = true, held.String()+" answered by "+mac.String()
			default:
				p.Detail = "no answer within " + r.opt.ProbeWindow.String()
			}
			r.res.Probes = append(r.res.Probes, p)
			if p.Answered {
				return fmt.Sprintf("the primary's address %s already answers (from %s): another node holds the primary role", held, mac), true
			}
		}
		// The addresses are free: take them now (systemd-networkd keeps
		// them), so the peer can be asked.
		for _, a := range addrs {
			if na, err := netlink.ParseAddr(a); err == nil {
				if err := netlink.AddrAdd(link, na); err != nil && !errors.Is(err, os.ErrExist) {
					r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("probe: add %s to %s: %v", a, nic.Name, err))
				}
			}
		}
	}
	if node == nil || cl == nil || cl.PeerAddress == "" {
		return "", false
	}
	t := time.Now()
	self := peer.NodeStatus{Name: node.Name, Role: in.Stamp.Role, ClusterID: in.Stamp.ClusterID, DiskSet: in.Stamp.DiskSet,
		Generation: in.Stamp.Generation, Hardware: in.Here.ID, Boot: "bootcheck", Time: time.Now().UTC()}
	claim, err := AskPeer(ctx, node, cl.PeerName, cl.PeerAddress, self, r.opt.PeerTimeout)
	p := Probe{Name: "peer", Target: cl.PeerName + " at " + cl.PeerAddress, MS: ms(time.Since(t))}
	if err != nil {
		p.Detail = "no answer: " + err.Error()
		r.res.Probes = append(r.res.Probes, p)
		return "", false
	}
	p.Answered = true
	p.Detail = fmt.Sprintf("%s, generation %d", claim.Role, claim.Generation)
	if claim.SafeMode != "" {
		p.Detail += " (in safe mode)"
	}
	r.res.Probes = append(r.res.Probes, p)
	return ClaimConflict(claim, in.Stamp.Generation)
}

// console prints the decision where the operator at the machine sees it.
func (r *runner) console() {
	res := r.res
	w := r.opt.Console
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
			fmt.Fprintf(w, "sentry bootcheck: FAILOVER: the primary disk set runs on machine %s (home %s)\n", res.Hardware, res.HomeHardware)
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

// writeRun writes the role and safe-mode markers.
func writeRun(res *Result) error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	role, safeP := filepath.Join(RunDir, RoleName), filepath.Join(RunDir, SafeName)
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
func Last() (*Result, error) { return readResult(filepath.Join(RunDir, ResultName)) }

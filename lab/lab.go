// Package lab runs two real Debian nodes on one machine: two "hardware"
// network namespaces with fixed MACs, an "office" namespace for clients, and
// two disk sets (P and S) as overlays on a cached base root filesystem, each
// booted with systemd as PID 1 under systemd-nspawn.
//
// Everything the lab starts is recorded (PIDs with their start times, mounts,
// namespaces) in a state file, and Down stops exactly that.
package lab

import (
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
	// Binary is the sentry binary installed as /usr/local/bin/sentry into
	// both disk sets, with the agent's unit it prints (sentry agent unit);
	// the nodes are then ready when sentry-agent is active too. "" installs
	// no sentry.
	Binary string
	// Log receives progress lines.
	Log io.Writer
	// BootTimeout bounds the wait for a node's services.
	BootTimeout time.Duration
}

// Lab is a handle on the two-node lab; it is cheap to make.
type Lab struct {
	opt  Options
	root string // state folder of this lab
}

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
	name := opt.Name
	if name == "" {
		name = "default"
	}
	return &Lab{opt: opt, root: filepath.Join(opt.StateDir, name)}
}

func (l *Lab) logf(format string, args ...any) {
	fmt.Fprintf(l.opt.Log, "lab: "+format+"\n", args...)
}

// NS returns the namespace name of hardware id ("a", "b") or "office".
func (l *Lab) NS(id string) string {
	n := "hw-" + id
	if id == "office" {
		n = "office"
	}
	if l.opt.Name != "" {
		n = l.opt.Name + "-" + n
	}
	return n
}

func (l *Lab) setDir(id string) string { return filepath.Join(l.root, "sets", id) }

// SetRoot is where disk set id is mounted on the host while it runs.
func (l *Lab) SetRoot(id string) string { return l.setRoot(id) }
func (l *Lab) setRoot(id string) string { return filepath.Join(l.setDir(id), "root") }
func (l *Lab) logFile(id string) string { return filepath.Join(l.root, "logs", id+".console.log") }
func (l *Lab) statePath() string        { return filepath.Join(l.root, "state.json") }

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
func (st *State) resolveNode(l *Lab, name string) (*NodeState, error) {
	n := strings.TrimSpace(name)
	for i := range st.Nodes {
		nd := &st.Nodes[i]
		ds, _ := diskSet(nd.Set)
		for _, alias := range []string{nd.Set, strings.ToLower(nd.Set), ds.Hostname, nd.Hardware, "hw-" + nd.Hardware, l.NS(nd.Hardware)} {
			if n == alias {
				return nd, nil
			}
		}
	}
	return nil, fmt.Errorf("no running node %q (use P, S, node-p, node-s, hw-a, hw-b or hw-c)", name)
}

// NeedRoot is returned by commands that must run as root.
var ErrNeedRoot = errors.New("the lab needs root (namespaces, mounts, systemd-nspawn)")

func needRoot() error {
	if os.Geteuid() != 0 {
		return ErrNeedRoot
	}
	return nil
}

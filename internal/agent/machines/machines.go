// Package machines is the agent's part that knows the machines: this
// boot's bootcheck result (and the safe mode it may hold the node in), the
// cluster's machine profiles (machines.toml, kept by the primary), promote
// and adopt.
package machines

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
)

// BootRecordedName, in the state folder, holds the id of the last boot
// result recorded as events (so a restarted agent does not record it twice).
const BootRecordedName = "bootcheck-recorded"

// Identity is who this node is, as the wiring knows it now.
type Identity struct {
	Node     string       // this node's name
	Stamp    *stamp.Stamp // this disk set's stamp (a copy; nil until init or join)
	PeerName string       // the peer's name ("" until one joined)
}

// Deps is what the machines component takes from the agent. The funcs may
// take the agent's lock: the component calls none of them with its own
// lock held, and none from FillStatus, SafeMode, Boot or NotePeer (which
// the agent calls with its lock held).
type Deps struct {
	Log   *slog.Logger
	Event func(kind, node, msg string, fields map[string]string)
	// Self is this node's identity now.
	Self func() Identity
	// ChangeStamp calls change with the stamp in force (nil: none), under
	// the agent's lock; when change returns a stamp, the agent writes it to
	// the stamp file and takes it.
	ChangeStamp func(change func(cur *stamp.Stamp) (*stamp.Stamp, error)) error
	// Hardware is this machine's identity (detected once at start).
	Hardware func() (hwid.Identity, error)
	// HWOptions are how the hardware identity is read (for a new boot check).
	HWOptions func() hwid.Options
	// StateDir is the disk set's state folder.
	StateDir func() string
	// PeerRecord is the peer's record in the store (its last status).
	PeerRecord func(name string) (store.PeerRecord, bool, error)
	// RoleStarted is called after an adoption started the role's services
	// (the agent then starts what safe mode held: the configuration sync).
	RoleStarted func()
}

// Option sets where the component finds the system's files and how it
// reaches systemd: for tests, which keep everything under their folders.
type Option func(*options)

type options struct {
	machinesFile string
	networkDir   string
	lastResult   func() (*bootcheck.Result, error)
	runCheck     func(context.Context, bootcheck.Options) (*bootcheck.Result, error)
	startRole    func(context.Context) error
}

// WithMachinesFile keeps the machine profiles at path (default
// bootcheck.MachinesFile).
func WithMachinesFile(path string) Option { return func(o *options) { o.machinesFile = path } }

// WithNetworkDir reads the installed network (the primary's addresses) in
// dir (default bootcheck.NetworkDir).
func WithNetworkDir(dir string) Option { return func(o *options) { o.networkDir = dir } }

// WithBootResult reads this boot's bootcheck result with f (default
// bootcheck.Last).
func WithBootResult(f func() (*bootcheck.Result, error)) Option {
	return func(o *options) { o.lastResult = f }
}

// WithBootcheck runs the boot decision again (after an adoption) with f
// (default bootcheck.Run).
func WithBootcheck(f func(context.Context, bootcheck.Options) (*bootcheck.Result, error)) Option {
	return func(o *options) { o.runCheck = f }
}

// WithStartRole starts the role's services with f (default: restart
// systemd-networkd and start the role target over the system bus).
func WithStartRole(f func(context.Context) error) Option { return func(o *options) { o.startRole = f } }

// Machines is the component.
type Machines struct {
	d   Deps
	opt options

	mu          sync.Mutex // guards the fields below; never held across Deps calls or I/O
	boot        *bootcheck.Result
	identErr    error
	peer        *peer.NodeStatus // the peer's last status (NotePeer)
	peerContact time.Time

	updateMu  sync.Mutex    // one machines.toml update at a time
	promoteMu sync.Mutex    // one promote or adopt at a time
	kick      chan struct{} // NotePeer asks Run for an update
}

// New makes the component.
func New(d Deps, opts ...Option) *Machines {
	o := options{machinesFile: bootcheck.MachinesFile, networkDir: bootcheck.NetworkDir,
		lastResult: bootcheck.Last, runCheck: bootcheck.Run, startRole: startRole}
	for _, f := range opts {
		f(&o)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Machines{d: d, opt: o, kick: make(chan struct{}, 1)}
}

// MachinesFile is where the machine profiles are kept.
func (m *Machines) MachinesFile() string { return m.opt.machinesFile }

// Run updates the machine profiles when the peer's machine changed
// (NotePeer), until ctx ends.
func (m *Machines) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.kick:
			m.Update()
		}
	}
}

func (m *Machines) statePath(name string) string { return filepath.Join(m.d.StateDir(), name) }

// SetIdentityError puts the node in safe mode: its disk identity (stamp,
// cluster state, keys) could not be read.
func (m *Machines) SetIdentityError(err error) {
	m.mu.Lock()
	m.identErr = err
	m.mu.Unlock()
}

// Boot is this boot's bootcheck result (nil: none).
func (m *Machines) Boot() *bootcheck.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boot
}

// SafeMode returns why the role's services are held ("" when not in safe
// mode).
func (m *Machines) SafeMode() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.safeModeLocked()
}

func (m *Machines) safeModeLocked() string {
	if m.boot != nil && m.boot.Outcome == bootcheck.SafeMode {
		return m.boot.Reason
	}
	if m.identErr != nil {
		return "disk identity unreadable: " + m.identErr.Error()
	}
	return ""
}

// FillStatus fills the boot fields of this node's status.
func (m *Machines) FillStatus(s *peer.NodeStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.boot != nil {
		s.Boot, s.Failover = m.boot.Outcome, m.boot.Failover
	}
	s.SafeMode = m.safeModeLocked()
	if s.SafeMode != "" {
		s.Boot = bootcheck.SafeMode
	}
}

// NotePeer takes the peer's status from a hello (sent or answered). When
// the peer's machine changed, the machine profiles are updated (by Run).
func (m *Machines) NotePeer(h *peer.NodeStatus) {
	m.mu.Lock()
	prev := m.peer
	m.peer, m.peerContact = h, time.Now().UTC()
	m.mu.Unlock()
	if prev == nil || prev.Hardware != h.Hardware || prev.HomeHardware != h.HomeHardware || len(prev.HardwareNICs) != len(h.HardwareNICs) {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// LoadBoot reads this boot's bootcheck result and records it as events
// (once per boot): the decision, and a failover when the primary disk set
// runs on other hardware than its home.
func (m *Machines) LoadBoot() {
	res, err := m.opt.lastResult()
	if errors.Is(err, os.ErrNotExist) {
		return // no bootcheck on this system (or not since boot)
	}
	if err != nil {
		m.d.Log.Error("bootcheck result", "err", err)
		return
	}
	m.takeBoot(res)
}

// takeBoot makes res this boot's result and records it as events, once.
func (m *Machines) takeBoot(res *bootcheck.Result) {
	m.mu.Lock()
	m.boot = res
	m.mu.Unlock()
	if res.Outcome == bootcheck.SafeMode {
		m.d.Log.Warn("safe mode: the role's services are held", "reason", res.Reason)
	}
	mark := m.statePath(BootRecordedName)
	if b, err := os.ReadFile(mark); err == nil && string(b) == res.ID {
		return
	}
	node := m.d.Self().Node
	fields := map[string]string{"hardware": res.Hardware, "home_hardware": res.HomeHardware, "disk_set": res.DiskSet,
		"generation": strconv.FormatUint(res.Generation, 10), "outcome": res.Outcome, "took_ms": fmt.Sprintf("%.1f", res.TookMS)}
	m.d.Event("bootcheck", node, fmt.Sprintf("boot decision: %s: %s", res.Outcome, res.Reason), fields)
	if res.Failover {
		m.d.Event("failover", node, res.FailoverText(), fields)
	}
	// What the boot went on despite (drivers missing for this machine, a
	// check that could not be made) is news too, not only a console line.
	for _, w := range res.Warnings {
		m.d.Event("bootcheck-warning", node, "boot warning: "+w, fields)
	}
	if err := atomicfile.Write(mark, []byte(res.ID), 0o600); err != nil {
		m.d.Log.Error("bootcheck record mark", "err", err)
	}
}

// startRole restarts systemd-networkd (it reads bootcheck's new files) and
// starts the role target.
func startRole(ctx context.Context) error {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("system bus: %w", err)
	}
	defer conn.Close()
	ch := make(chan string, 1)
	if _, err := conn.RestartUnitContext(ctx, "systemd-networkd.service", "replace", ch); err != nil {
		return err
	}
	<-ch
	if _, err := conn.StartUnitContext(ctx, bootcheck.RoleTarget, "replace", ch); err != nil {
		return err
	}
	if r := <-ch; r != "done" {
		return fmt.Errorf("%s: %s", bootcheck.RoleTarget, r)
	}
	return nil
}

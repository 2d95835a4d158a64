// Package agent is the Sentry daemon (`sentry agent`): it serves the peer
// API to the other node over mutual TLS and the local API to the CLI over a
// root-only unix socket (its read-only view to group sentry over another:
// localsock), keeps its state in an embedded store, and talks to systemd
// (READY, STOPPING, watchdog).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/agent/events"
	"github.com/sentryha/sentry/internal/agent/link"
	"github.com/sentryha/sentry/internal/agent/localsock"
	"github.com/sentryha/sentry/internal/agent/machines"
	"github.com/sentryha/sentry/internal/agent/modset"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/agent/ready"
	"github.com/sentryha/sentry/internal/agent/reports"
	"github.com/sentryha/sentry/internal/agent/schedule"
	"github.com/sentryha/sentry/internal/agent/swaps"
	"github.com/sentryha/sentry/internal/apttrust"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/logging"
	"github.com/sentryha/sentry/internal/metrics"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// Retention of the store, applied hourly.
var DefaultRetention = store.Retention{MaxAge: 90 * 24 * time.Hour, MaxEvents: 100000, TokenAge: 7 * 24 * time.Hour}

// Agent is one running daemon.
type Agent struct {
	cfgPath string
	version string
	level   *slog.LevelVar
	log     *slog.Logger
	started time.Time

	cfg   atomic.Pointer[config.Config] // replaced whole on SIGHUP: read it through conf()
	paths paths                         // set by New, never changed

	mu       sync.Mutex
	store    *store.Store
	hw       hwid.Identity
	hwErr    error
	node     *pki.Node          // nil until init or join
	cluster  *stamp.Cluster     // nil until init or join
	stamp    *stamp.Stamp       // nil until init or join
	machines *machines.Machines // boot result, safe mode, machines.toml, promote, adopt
	events   *events.Hub        // every stored event, to the local API's subscribers
	sched    *schedule.Schedule // set by Run once the store is open

	joinMu     sync.Mutex // one join at a time, without holding mu across it
	modsetOnce sync.Once
	modsSet    *modset.Set // the selected modules: mods()
	secrets    *synchronizer.Secrets
	link       *link.Link // the peer link: lnk()
	linkOnce   sync.Once
	syncerOnce sync.Once
	syncer     *cfgsync.Sync  // the configuration sync: cfgsync()
	parity     *parity.Parity // built by New
	verdict    *ready.Ready   // the readiness verdict, built by New
	swaps      *swaps.Swaps   // failover plans and records, set by Run
	reports    *reports.Reports
	wg         sync.WaitGroup
}

// Option adjusts where an agent finds the system's files: for tests, which
// keep everything under their own folders, and for images built offline.
type Option func(*paths)

// paths are the system folders the agent reads and writes besides its
// state folder.
type paths struct {
	clusterDir string // the cluster's own tracked folder: machine and hardware profiles
	applyRoot  string // the secondary applies the primary's configuration under this folder
	modules    modules.Options
	// reloader reloads the secondary's units (nil: systemd's).
	reloader synchronizer.Reloader
	// retryBackoff: the waits before each new try of a commit that failed
	// for a reason that may clear by itself (nil: cfgsync's default).
	retryBackoff []time.Duration
	// parity: the files and commands of package parity (the state and
	// hardware folders are set by newParity).
	parity  parity.Options
	ready   ready.Options // the readiness component's files (the zero value: the machine's)
	swaps   []swaps.Option
	reports []reports.Option

	boot bootcheck.Paths // bootcheck's folders (the zero value: the machine's)
	// codec: the peer protocol spoken (the zero value: this build's).
	codec peer.Codec
}

// WithAptTrust reads apt's sources, keys and indexes from o's folders.
func WithAptTrust(o apttrust.Options) Option { return func(p *paths) { p.parity.Apt = o } }

// WithReloader makes a secondary reload its units through r instead of
// systemd (tests).
func WithReloader(r synchronizer.Reloader) Option { return func(p *paths) { p.reloader = r } }

// WithRetryBackoff sets the waits before each new try of a commit whose
// apply failed for a reason that may clear by itself.
func WithRetryBackoff(d ...time.Duration) Option { return func(p *paths) { p.retryBackoff = d } }

// WithClusterDir puts the cluster's folder (default /etc/sentry/cluster:
// machines.toml, hardware/) at dir.
func WithClusterDir(dir string) Option { return func(p *paths) { p.clusterDir = dir } }

// WithBootPaths points bootcheck's folders (this boot's decision, network, DMI) at b's.
func WithBootPaths(b bootcheck.Paths) Option { return func(p *paths) { p.boot = b } }

// WithApplyRoot makes a secondary apply the configuration under dir
// instead of /.
func WithApplyRoot(dir string) Option { return func(p *paths) { p.applyRoot = dir } }

// WithModules reads the modules from opts' folders instead of the
// system's (modules.DefaultOptions).
func WithModules(opts modules.Options) Option { return func(p *paths) { p.modules = opts } }

// machinesFile is where the machines' profiles are kept.
func (p *paths) machinesFile() string { return filepath.Join(p.clusterDir, "machines.toml") }

// hardwareDir holds the machines' hardware profiles, one file a machine.
func (p *paths) hardwareDir() string { return filepath.Join(p.clusterDir, "hardware") }

// New makes an agent from the configuration file at cfgPath.
func New(cfgPath, version string, opts ...Option) (*Agent, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	lv := new(slog.LevelVar)
	l, _ := logging.ParseLevel(cfg.Log.Level)
	lv.Set(l)
	a := &Agent{
		cfgPath: cfgPath, version: version, level: lv,
		log: logging.New(os.Stderr, lv, "sentry-agent"),
		paths: paths{clusterDir: synchronizer.ClusterDir, modules: modules.DefaultOptions(),
			reloader: synchronizer.SystemdReloader{}, parity: parity.DefaultOptions()},
	}
	for _, o := range opts {
		o(&a.paths)
	}
	a.cfg.Store(cfg)
	a.newComponents()
	return a, nil
}

// newComponents makes the agent's components (again, after SetLogger).
func (a *Agent) newComponents() {
	if a.events == nil {
		a.events = events.NewHub()
	}
	a.machines = machines.New(machinesDeps(a), machines.WithMachinesFile(a.paths.machinesFile()),
		machines.WithNetworkDir(a.paths.boot.Resolved().NetworkDir),
		machines.WithBootResult(a.paths.boot.Last),
		machines.WithBootcheck(func(ctx context.Context, o bootcheck.Options) (*bootcheck.Result, error) {
			o.Paths = a.paths.boot
			return bootcheck.Run(ctx, o)
		}))
	a.parity = newParity(a)
	a.verdict = newReady(a)
}

// machinesDeps is what the machines component takes from the agent.
func machinesDeps(a *Agent) machines.Deps {
	return machines.Deps{
		Log:   a.log.With("component", "machines"),
		Event: a.event,
		Self: func() machines.Identity {
			a.mu.Lock()
			defer a.mu.Unlock()
			id := machines.Identity{Node: a.nodeName()}
			if a.stamp != nil {
				st := *a.stamp
				id.Stamp = &st
			}
			if a.cluster != nil {
				id.PeerName = a.cluster.PeerName
			}
			return id
		},
		ChangeStamp: func(change func(*stamp.Stamp) (*stamp.Stamp, error)) error {
			a.mu.Lock()
			defer a.mu.Unlock()
			var cur *stamp.Stamp
			if a.stamp != nil {
				c := *a.stamp
				cur = &c
			}
			st, err := change(cur)
			if err != nil || st == nil {
				return err
			}
			if err := stamp.WriteStamp(a.statePath(stamp.StampFile), st); err != nil {
				return err
			}
			a.stamp = st
			return nil
		},
		// Detected once in Run, before anything that asks.
		Hardware:  func() (hwid.Identity, error) { return a.hw, a.hwErr },
		HWOptions: a.hwOptions,
		StateDir:  func() string { return a.conf().Node.StateDir },
		PeerRecord: func(name string) (store.PeerRecord, bool, error) {
			if a.store == nil {
				return store.PeerRecord{}, false, nil
			}
			return a.store.Peer(name)
		},
		RoleStarted: func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.node != nil { // nothing when the sync runs already
				if err := a.startSyncLocked(); err != nil {
					a.log.Error("config sync", "err", err)
				}
			}
		},
	}
}

// safeModeLocked returns the safe mode's reason ("" when not in safe
// mode). It takes the machines component's lock only: callers may hold
// a.mu.
func (a *Agent) safeModeLocked() string { return a.machines.SafeMode() }

// conf is the configuration in force. SIGHUP replaces it whole, so a
// caller reads one consistent version without the agent's lock.
func (a *Agent) conf() *config.Config { return a.cfg.Load() }

// SetLogger replaces the agent's logger (tests read what it logs).
// Call it before Run: the components are made again with it.
func (a *Agent) SetLogger(l *slog.Logger) {
	a.log = l
	a.newComponents()
}

// loadConfig reads the configuration; a missing file means defaults.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if errors.Is(err, os.ErrNotExist) {
		d := config.Default()
		d.Path = path
		return &d, nil
	}
	return cfg, err
}

func (a *Agent) statePath(name string) string { return filepath.Join(a.conf().Node.StateDir, name) }

// Run serves until ctx ends or SIGTERM, then drains within the configured
// shutdown timeout.
func (a *Agent) Run(ctx context.Context) error {
	a.started = time.Now()
	if err := os.MkdirAll(a.conf().Node.StateDir, 0o700); err != nil {
		return err
	}
	// The state folder holds the keys, the store and config.git (whose
	// history may hold what a config file said): root's only, whatever
	// made it before.
	for _, p := range []string{a.conf().Node.StateDir, a.statePath("config.git")} {
		if err := os.Chmod(p, 0o700); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state folder: %w", err)
		}
	}
	_, hadErr := os.Stat(a.statePath("state.db"))
	st, salvaged, err := store.OpenChecked(a.statePath("state.db"), store.Options{})
	if err != nil {
		return err
	}
	a.store = st
	defer st.Close()
	if salvaged != nil {
		a.log.Error("state store damaged: salvaged", "summary", salvaged.String())
		a.event("store-salvaged", a.nodeName(), salvaged.String(), map[string]string{"damaged": salvaged.DamagedPath})
	}
	msg, fields, err := events.Started(a.statePath(events.VersionFile), a.version, hadErr == nil)
	a.event("agent-started", a.nodeName(), msg, fields)
	if err != nil {
		a.log.Error("record the version", "err", err)
	}
	a.detectHardware()
	if err := a.loadIdentity(); err != nil {
		// A bad stamp or bad keys: bootcheck has held the role's services;
		// the agent stays up to say why.
		a.log.Error("disk identity unreadable: safe mode", "err", err)
		a.machines.SetIdentityError(err)
	}
	a.machines.LoadBoot()
	sched, err := newSchedule(a)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.sched = sched
	a.mu.Unlock()
	a.swaps = newSwaps(a) // before the link starts
	a.reports = newReports(a, ctx.Done())
	a.swaps.Begin()
	mctx, mcancel := context.WithCancel(context.Background())
	defer mcancel()
	a.machines.Update()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.machines.Run(mctx)
	}()
	// The root-only socket, and the read-only one (docs/security.md).
	localLns, err := localsock.Listen(a.conf().Agent.Socket, a.conf().Agent.ReadSocket, a.log)
	if err != nil {
		return err
	}
	localSrv := localsock.Server(a.localHandler(), logging.HTTPErrorLog(a.log, "local api"))
	localSrv.RegisterOnShutdown(a.events.Close) // the event streams end, so the server drains
	for _, ln := range localLns {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := localSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("local api stopped", "err", err)
			}
		}()
	}
	a.mu.Lock()
	initialized := a.node != nil
	a.mu.Unlock()
	if initialized {
		if err := a.lnk().Start(); err != nil {
			return err
		}
	}

	vctx, vcancel := context.WithCancel(context.Background())
	defer vcancel()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.sched.Run(vctx)
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.parity.Run(vctx)
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.verdict.Run(vctx)
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.swaps.Run(vctx)
	}()
	if l := a.conf().Metrics.Listen; l != "" { // opt-in (docs/monitoring.md); a change needs a restart
		snap := func() metrics.Snapshot {
			in, res, _ := a.verdict.Last()
			s := metrics.FromReadiness(a.nodeName(), in, res, a.cfgsync().ApplyFailures())
			s.LastReport, s.ReportsEnabled = a.reports.Last(), true
			return s
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := metrics.Serve(vctx, l, metrics.NewCollector(snap, a.version), a.log.With("component", "metrics")); err != nil {
				a.log.Error("metrics endpoint", "err", err)
			}
		}()
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	daemon.SdNotify(false, daemon.SdNotifyReady)
	a.log.Info("agent ready", "version", a.version, "socket", a.conf().Agent.Socket, "read_socket", a.conf().Agent.ReadSocket, "initialized", initialized)

	var watchdog <-chan time.Time
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		t := time.NewTicker(wd / 2)
		defer t.Stop()
		watchdog = t.C
	}
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	a.pruneStore()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case s := <-sigs:
			if s == syscall.SIGHUP {
				a.reload()
				continue
			}
			a.log.Info("stopping", "signal", s.String())
			break loop
		case <-watchdog:
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		case <-prune.C:
			a.pruneStore()
		}
	}
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	vcancel()
	mcancel()
	sctx, cancel := context.WithTimeout(context.Background(), a.conf().Agent.ShutdownTimeout.Duration)
	defer cancel()
	a.lnk().Stop(sctx)
	if err := localSrv.Shutdown(sctx); err != nil {
		a.log.Warn("local api did not drain in time", "err", err)
	}
	a.wg.Wait()
	a.cfgsync().Wait()
	a.sched.FlushPeerResults() // what the peer said after the schedule stopped
	a.log.Info("agent stopped")
	return nil
}

func (a *Agent) pruneStore() {
	r := DefaultRetention
	a.mu.Lock()
	r.MaxResults = a.conf().Verifier.KeepResults
	a.mu.Unlock()
	n, err := a.store.Prune(time.Now(), r)
	if err != nil {
		a.log.Error("store retention", "err", err)
	} else if n > 0 {
		a.log.Info("store retention", "deleted", n)
	}
}

func (a *Agent) hwOptions() hwid.Options {
	return hwid.Options{Mode: hwid.Mode(a.conf().Hardware.Identity), NICKinds: a.conf().Hardware.NICKinds, DMIDir: a.paths.boot.DMIDir}
}

func (a *Agent) detectHardware() {
	id, err := hwid.Detect(a.hwOptions())
	a.hw, a.hwErr = id, err
	if err != nil {
		a.log.Error("hardware identity", "err", err)
	}
}

// loadIdentity reads stamp, cluster state and certificates. Missing files
// mean "not initialized"; a present but bad one is an error.
func (a *Agent) loadIdentity() error {
	s, err := stamp.ReadStamp(a.statePath(stamp.StampFile))
	if errors.Is(err, stamp.ErrMissing) {
		return nil
	}
	if err != nil {
		return err
	}
	c, err := stamp.ReadCluster(a.statePath(stamp.ClusterFile))
	if err != nil {
		return err
	}
	n, err := pki.Load(a.statePath("pki"))
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if n.Cluster != s.ClusterID || c.ClusterID != s.ClusterID {
		return fmt.Errorf("cluster ids disagree: stamp %s, cluster state %s, certificate %s", s.ClusterID, c.ClusterID, n.Cluster)
	}
	sec, err := a.loadClusterKey()
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.stamp, a.cluster, a.node, a.secrets = s, c, n, sec
	a.mu.Unlock()
	return nil
}

// loadClusterKey reads the cluster key, if this node has one.
func (a *Agent) loadClusterKey() (*synchronizer.Secrets, error) {
	p := filepath.Join(a.statePath("pki"), pki.ClusterKeyFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := synchronizer.NewSecrets(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return s, nil
}

// reload re-reads the configuration (SIGHUP). The log level applies at
// once; listener addresses need a restart and are said so.
func (a *Agent) reload() {
	// The module files are read again at their next use.
	a.mods().Reload()
	cfg, err := loadConfig(a.cfgPath)
	if err != nil {
		a.log.Error("reload: configuration refused, keeping the old one", "err", err)
		return
	}
	l, _ := logging.ParseLevel(cfg.Log.Level)
	a.level.Set(l)
	a.mu.Lock()
	sched := a.sched
	a.mu.Unlock()
	sched.Reload(cfg)
	old := a.conf()
	if cfg.Agent.Listen != old.Agent.Listen || cfg.Agent.Socket != old.Agent.Socket || cfg.Agent.ReadSocket != old.Agent.ReadSocket || cfg.Node.StateDir != old.Node.StateDir {
		a.log.Warn("reload: listen address, sockets and state_dir change only on restart")
		cfg.Agent.Listen, cfg.Agent.Socket, cfg.Agent.ReadSocket, cfg.Node.StateDir = old.Agent.Listen, old.Agent.Socket, old.Agent.ReadSocket, old.Node.StateDir
	}
	a.cfg.Store(cfg)
	a.log.Info("configuration reloaded", "file", a.cfgPath, "log_level", cfg.Log.Level)
}

// newReports makes the weekly report's component.
func newReports(a *Agent, done <-chan struct{}) *reports.Reports {
	return reports.New(reports.Deps{Conf: a.conf, Store: func() *store.Store { return a.store }, State: a.state,
		Log: a.log.With("component", "reports"), Event: a.event, Done: done, Peer: a.lnk().Client(),
		Backups: func() []verifier.Spec { return a.mods().ProbeSpecs("", 0) }}, a.paths.reports...)
}

// WithReportsOptions adjusts the weekly report's component (tests).
func WithReportsOptions(o ...reports.Option) Option { return func(p *paths) { p.reports = o } }

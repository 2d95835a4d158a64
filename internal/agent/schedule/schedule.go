// Package schedule is the agent's verifier schedule: it runs this node's
// probe set every verifier.interval, runs again after the sync's reloads
// the probes they disturbed, keeps this node's and the peer's results,
// tracks and dispatches the alerts, makes the canaries the primary
// declared, and runs the probes on request (this node's, or the peer's
// through its agent).
package schedule

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/sentryha/sentry/internal/alert"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/verifier"
)

// Reloads is the configuration sync's log of the units it reloaded
// (cfgsync's reload log), for telling a red caused by that reload from a
// fault.
type Reloads interface {
	// Disturbed lists the units reloaded while a probe ran from start to
	// end, among deps (nil: any unit). A sync still under way counts as
	// reloading all of deps, or, without deps, as SyncUnderWay.
	Disturbed(start, end time.Time, deps []string) []string
	// WaitIdle waits, at most bound, until no sync is under way.
	WaitIdle(ctx context.Context, bound time.Duration) error
}

// SyncUnderWay is the name Reloads.Disturbed gives the units of a sync
// still under way (not a unit: nothing to wait on to settle).
const SyncUnderWay = "(a configuration sync under way)"

// Peer is the peer link, as far as the schedule calls it.
type Peer interface {
	// VerifyRun asks the peer's agent to run its probes now (those whose
	// name starts with req.Service, or all), within ctx.
	VerifyRun(ctx context.Context, req peer.VerifyRequest) (*peer.VerifyResults, error)
}

// Deps is what the schedule is built with.
type Deps struct {
	Conf  func() *config.Config
	Store *store.Store
	Log   *slog.Logger
	Event func(kind, node, msg string, fields map[string]string)
	// Node is this node's name. The schedule calls it from FillStatus and
	// NotePeer too, whose callers may hold their own locks: it takes none
	// of theirs.
	Node func() string
	// PeerName is the paired peer's name ("" while unpaired).
	PeerName func() string
	// SafeMode says why this node holds its role's services ("" when it
	// does not): no rounds then, and no runs on request.
	SafeMode func() string
	// Password is the canary password (CanaryPasswordOf the cluster key);
	// false while the node has no cluster key.
	Password func() (string, bool)
	// Specs are this node's probes (the selected modules', else the
	// compiled-in set).
	Specs func(pw string, timeout time.Duration) []verifier.Spec
	// ProbeUnits are, by probe name, the units each probe depends on (nil:
	// no modules, any unit counts).
	ProbeUnits func() map[string][]string
	// CanaryPages are the pages the selected modules' canaries need.
	CanaryPages func() []verifier.Page
	// ClusterDir is the cluster's folder, where canary.toml is.
	ClusterDir string
	Reloads    Reloads
	Peer       Peer
	// Rounded is called after each round, its results stored (nil: nothing).
	Rounded func()
	// Quiet says why alerts are held now ("": they are not): a planned
	// swap announced its faults. While held, results and the verdict do
	// not feed the alert path at all, so that a fault that outlasts the
	// swap fires after fail_after observations from then on.
	Quiet func() string
}

// Option adjusts a schedule (tests).
type Option func(*Schedule)

// WithSystemState makes the schedule ask f for systemd's state instead of
// systemd over D-Bus.
func WithSystemState(f func(context.Context) (string, error)) Option {
	return func(s *Schedule) { s.systemState = f }
}

// WithProber runs the probes through run instead of the verifier's
// runner (results and each probe's log, by name).
func WithProber(run func(context.Context, []verifier.Spec) ([]verifier.Result, map[string]string)) Option {
	return func(s *Schedule) { s.runProbes = run }
}

// WithSenders makes the dispatcher deliver through senders (besides the
// journal) instead of the mail relay of the configuration.
func WithSenders(senders ...alert.Sender) Option {
	return func(s *Schedule) { s.senders, s.sendersSet = senders, true }
}

// failAfter is how many failures in a row turn a probe red in the status
// and the events (1: the first, so the status is never behind); one
// success turns it green. Alerts by mail have their own hysteresis
// ([alert]).
const failAfter = 1

// Schedule is the verifier schedule of one agent.
type Schedule struct {
	d           Deps
	systemState func(context.Context) (string, error)
	runProbes   func(context.Context, []verifier.Spec) ([]verifier.Result, map[string]string)
	senders     []alert.Sender
	sendersSet  bool

	alerts   *alert.Tracker // its own lock
	dispatch *alert.Dispatcher

	saveMu      sync.Mutex
	savedAlerts []byte // the alert state as last stored or read

	mu       sync.Mutex
	last     map[string]verifier.Result // by probe name, the newest scheduled run
	fails    map[string]int             // consecutive failures
	red      map[string]bool            // reported red (after failAfter failures)
	round    time.Time
	roundMS  int64
	logs     map[string]string    // by probe name, the newest run's own log
	peerSeen map[string]time.Time // newest peer result stored, by probe
	// peerHeld: the peer's new results, written with this node's next
	// round (one store write for both), or when peerHeldSince is older
	// than PeerResultsHold (safe mode runs no rounds), or before a read.
	peerHeld      []store.StoredResult
	peerHeldSince time.Time
	peerProto     int       // the peer's protocol, from its last status
	dropSaid      time.Time // when dropped peer results were last logged
	held          string    // why alerts are held ("": they are not)
}

// New makes the schedule: its alert tracker (the state restored from the
// store) and the dispatcher, to the journal always and by mail when a
// relay is configured.
func New(d Deps, opts ...Option) (*Schedule, error) {
	s := &Schedule{d: d, systemState: systemdState, runProbes: runProbes,
		last: map[string]verifier.Result{}, fails: map[string]int{}, red: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	cfg := d.Conf()
	s.alerts = alert.NewTracker(alert.PolicyFromConfig(cfg.Alert))
	if b, err := d.Store.AlertState(); err != nil {
		d.Log.Error("alert state", "err", err)
	} else if err := s.alerts.Unmarshal(b); err != nil {
		d.Log.Error("alert state: starting afresh", "err", err)
	} else if m, err := s.alerts.Marshal(); err == nil && bytes.Equal(m, b) {
		s.savedAlerts = m
	}
	senders := s.senders
	if mc, ok := alert.MailConfigFromConfig(cfg.Alert.Mail); ok && !s.sendersSet {
		m, err := alert.NewMailer(mc)
		if err != nil {
			return nil, fmt.Errorf("mail alerts: %w", err)
		}
		senders = append(senders, m)
		d.Log.Info("mail alerts on", "relay", mc.Relay, "to", strings.Join(mc.To, ","))
	}
	s.dispatch = alert.NewDispatcher(d.Log.With("component", "alert"), alert.DispatcherOptions{}, senders...)
	return s, nil
}

// Reload takes a new configuration (SIGHUP): the alert policy at once; a
// changed mail relay only at the next restart.
func (s *Schedule) Reload(cfg *config.Config) {
	if s == nil {
		return
	}
	s.alerts.SetPolicy(alert.PolicyFromConfig(cfg.Alert))
	if mc, ok := alert.MailConfigFromConfig(cfg.Alert.Mail); ok {
		if _, err := alert.NewMailer(mc); err != nil {
			s.d.Log.Error("reload: mail alerts: keeping the old relay settings", "err", err)
		} else {
			s.d.Log.Warn("reload: a changed mail relay takes effect at the next restart")
		}
	}
}

// Run runs this node's probe set every verifier.interval (with jitter),
// once the node is paired and `sentry verifier setup` has made the
// canaries (the canary page tells), and delivers the alerts, until ctx
// ends.
func (s *Schedule) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.dispatch.Run(ctx)
	}()
	defer func() { <-done }()
	defer s.FlushPeerResults()
	if st := s.waitBootSettled(ctx, 2*time.Minute); st == "initializing" || st == "starting" {
		s.d.Log.Warn("verifier: systemd still starting after 2 minutes; probing anyway", "state", st)
	}
	for {
		v := s.d.Conf().Verifier
		iv, jit, to := v.Interval.Duration, v.Jitter.Duration, v.Timeout.Duration
		wait := iv
		if jit > 0 {
			wait += time.Duration(rand.Int64N(int64(jit)))
		}
		safeMode := s.d.SafeMode() != ""
		if pw, ok := s.d.Password(); ok && !safeMode {
			s.followCanaries(ctx, pw)
			// Once the canaries were made here (the mark), a missing
			// canary page is a failure to report, not a reason to wait.
			_, markErr := os.Stat(s.markFile())
			if _, err := os.Stat(verifier.CanaryPage); err == nil || markErr == nil {
				s.runRound(ctx, pw, to)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// systemdState asks systemd for its state ("starting" while boot jobs
// run, then "running" or "degraded").
func systemdState(ctx context.Context) (string, error) {
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	v, err := conn.GetManagerProperty("SystemState")
	if err != nil {
		return "", err
	}
	return strings.Trim(v, `"`), nil
}

// waitBootSettled waits, at most limit, until systemd has no boot jobs
// left (the role's services started or failed), so that the first round
// after a boot does not report services as red that are still starting.
// Without an answer from systemd it does not wait.
func (s *Schedule) waitBootSettled(ctx context.Context, limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		st, err := s.systemState(ctx)
		if err != nil || (st != "initializing" && st != "starting") {
			return st
		}
		if time.Now().After(deadline) {
			return st
		}
		select {
		case <-ctx.Done():
			return st
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (s *Schedule) node() string { return s.d.Node() }

func (s *Schedule) stateDir() string { return s.d.Conf().Node.StateDir }

func (s *Schedule) markFile() string { return filepath.Join(s.stateDir(), canaryAppliedName) }

// Package cfgsync is the configuration sync of the agent: on the primary,
// the watcher that commits the tracked files and the fetch handler that
// serves them; on the secondary, the fetch/apply loop with its retries,
// drift checks and status; the rollback; the reload log the verifier reads;
// and the history behind `sentry config log/show/diff`.
package cfgsync

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer"
)

// Peer is the one call the sync makes to the other node: the secondary's
// fetch from the primary (POST /v1/config/fetch). The wiring adapts the
// peer client to it.
type Peer interface {
	// FetchConfig asks the primary for its head and a gzip-compressed
	// pack of what have lacks (nil when have is its head).
	FetchConfig(ctx context.Context, have string) (head string, pack io.ReadCloser, err error)
}

// Deps is what the sync needs from the agent. The funcs are called without
// the sync's lock held; the wiring may call the sync's methods with its own
// lock held, so none of them may take that lock except where said.
type Deps struct {
	Conf  func() *config.Config
	Log   *slog.Logger
	Event func(kind, node, msg string, fields map[string]string)
	// Policy is the sync policy and the reload order the selected modules
	// give now (modset).
	Policy func() (*synchronizer.Policy, []synchronizer.RootUnit)
	// Peer carries the secondary's fetch to the primary.
	Peer Peer
	// Hello tells the peer this node's status at once (after a commit or
	// an apply). It is called in its own goroutine.
	Hello func()
	// StartAgain starts the sync again (Start, with the agent's role and
	// cluster key) unless the agent stops or holds its role: after a
	// restart for a new policy. It takes the agent's lock.
	StartAgain func() (started bool, err error)
	// Pending is what the secondary holds back of the primary's modules
	// (modset), for the status.
	Pending func() []string
	// Applying marks a secondary's sync under way (modset.Applying); its
	// end gets the paths written or removed (nil: unknown).
	Applying func() (end func(paths []string))
	// Committed gets the paths a primary's commit changed (modset.Touched).
	Committed func(paths []string)
	// Refuse answers a refused peer request (an error envelope).
	Refuse func(w http.ResponseWriter, r *http.Request, code int, err error)
	// Reloader reloads the secondary's units (nil: systemd's).
	Reloader synchronizer.Reloader
	// ApplyRoot: the secondary applies the configuration under it ("": /).
	ApplyRoot string
	// RetryBackoff: the waits before each new try of a commit that failed
	// for a reason that may clear by itself (nil: the default, 10 s up to
	// 10 min over six tries).
	RetryBackoff []time.Duration
}

// defaultRetryBackoff is the wait before each new try of a commit whose
// apply failed for a reason that may clear by itself; past the last, the
// commit waits for a newer one or sync --force, like any failed commit.
var defaultRetryBackoff = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}

// Sync is the configuration sync of one agent. Its state is behind its own
// lock, never held across the network or the disk.
type Sync struct {
	d       Deps
	reloads ReloadLog
	wg      sync.WaitGroup
	// applyFailures counts the applies that failed since the agent
	// started (the metrics' counter).
	applyFailures atomic.Int64
	startMu       sync.Mutex // orders Start and Stop; taken before mu

	mu        sync.Mutex
	role      string // the role the running sync was started for
	secrets   *synchronizer.Secrets
	primary   *synchronizer.Primary
	repo      *synchronizer.Repo // primary
	secondary *synchronizer.Secondary
	kick      chan struct{}
	cancel    context.CancelFunc
	done      chan struct{} // closed when the running sync's goroutine ends
	policyKey string        // the policy the running sync was started with
	head      string        // primary: repo head; secondary: fetched head
	headAt    time.Time     // primary: when head was committed
	applied   string
	failed    string
	err       string
	refused   map[string]string // primary: reported refusals
	peerErr   string            // primary: last failure the secondary reported
	retries   int               // secondary: tries of the failed commit after a transient failure
	retryAt   time.Time         // secondary: when the failed commit is tried again (zero: not)
	rearm     chan struct{}     // secondary: tells the sync loop that retryAt changed
	drift     map[string]synchronizer.DriftItem

	// driftSnap is the applied snapshot, for this node, that Drift last
	// read (a commit does not change: read again only for another one,
	// or another secondary).
	driftSnap *synchronizer.Snapshot
	driftOf   *synchronizer.Secondary
	// driftCache: the files found in step, by their stat (read and hashed
	// again only when it moved).
	driftCache synchronizer.DriftCache
}

// New makes the sync; Start runs it.
func New(d Deps) *Sync {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Reloader == nil {
		d.Reloader = synchronizer.SystemdReloader{}
	}
	if d.RetryBackoff == nil {
		d.RetryBackoff = defaultRetryBackoff
	}
	if d.Hello == nil {
		d.Hello = func() {}
	}
	if d.Pending == nil {
		d.Pending = func() []string { return nil }
	}
	if d.Applying == nil {
		d.Applying = func() func([]string) { return func([]string) {} }
	}
	if d.Committed == nil {
		d.Committed = func([]string) {}
	}
	if d.StartAgain == nil {
		d.StartAgain = func() (bool, error) { return false, nil }
	}
	return &Sync{d: d}
}

func (s *Sync) node() string { return s.d.Conf().Node.Name }

func (s *Sync) event(kind, node, msg string, fields map[string]string) {
	if s.d.Event != nil {
		s.d.Event(kind, node, msg, fields)
	}
}

// queued holds events made under the lock, recorded after it is let go
// (the store is on disk; the lock guards the status a request reads).
type queued []func()

func (q *queued) add(s *Sync, kind, node, msg string, fields map[string]string) {
	*q = append(*q, func() { s.event(kind, node, msg, fields) })
}

// record records them (a pointer: `defer evs.record()` sees what is
// added after the defer).
func (q *queued) record() {
	for _, f := range *q {
		f()
	}
}

func (s *Sync) dir() string { return filepath.Join(s.d.Conf().Node.StateDir, "config.git") }

// Reloads is the log of the units the sync reloaded, for the verifier.
func (s *Sync) Reloads() *ReloadLog { return &s.reloads }

// Wait waits for the sync's goroutines to end (after Stop).
func (s *Sync) Wait() { s.wg.Wait() }

// Start starts the primary's watcher or the secondary's sync loop, by the
// disk stamp's role; nothing when it runs already. The repository is
// opened without the state's lock (a status does not wait for the disk);
// starts and stops are kept in order by their own lock.
func (s *Sync) Start(role string, secrets *synchronizer.Secrets) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.Running() {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	dir := s.dir()
	done := make(chan struct{})
	switch role {
	case stamp.RolePrimary:
		pol := s.primaryPolicy(secrets)
		_, units := s.d.Policy()
		repo, err := synchronizer.OpenRepo(dir, s.node(), pol)
		if err != nil {
			cancel()
			return err
		}
		pr := &synchronizer.Primary{Repo: repo, Log: s.d.Log, Debounce: s.d.Conf().Sync.Debounce.Duration,
			Rescan: s.d.Conf().Sync.RescanInterval.Duration, OnCommit: s.onCommit}
		head := repo.Head().String()
		var headAt time.Time
		if c, err := repo.Git().CommitObject(repo.Head()); err == nil {
			headAt = c.Committer.When.UTC()
		}
		s.mu.Lock()
		s.role, s.secrets, s.policyKey = role, secrets, policyKey(pol, units)
		s.repo, s.primary, s.head, s.headAt = repo, pr, head, headAt
		s.refused = map[string]string{}
		s.cancel, s.done = cancel, done
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(done)
			if err := pr.Run(ctx); err != nil {
				s.d.Log.Error("config watcher stopped", "err", err)
			}
		}()
	case stamp.RoleSecondary:
		m, err := synchronizer.MirrorOpen(dir)
		if err != nil {
			cancel()
			return err
		}
		pol, units := s.d.Policy()
		sec := &synchronizer.Secondary{Mirror: m, Path: dir, Policy: pol, Node: s.node(), Secrets: secrets, Units: units,
			Reloader: s.d.Reloader, Log: s.d.Log, Root: s.d.ApplyRoot}
		applied := sec.Applied().String()
		if f := sec.Failed(); !f.IsZero() && f != sec.Fetched() {
			// A newer head was fetched since: what failed no longer describes this node.
			if err := sec.ForgetFailed(); err != nil {
				s.d.Log.Warn("config sync", "err", err)
			}
		}
		kick, rearm := make(chan struct{}, 1), make(chan struct{}, 1)
		s.mu.Lock()
		s.role, s.secrets, s.policyKey = role, secrets, policyKey(pol, units)
		s.secondary, s.applied = sec, applied
		if f := sec.Failed(); !f.IsZero() {
			s.failed, s.err = f.String(), sec.FailedReason()
			if s.err == "" {
				s.err = "failed before this agent started (reason not recorded)"
			}
		}
		s.kick, s.rearm = kick, rearm
		s.cancel, s.done = cancel, done
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(done)
			s.runSecondary(ctx, sec, kick, rearm)
		}()
	default:
		close(done)
		s.mu.Lock()
		s.role, s.secrets = role, secrets
		s.cancel, s.done = cancel, done
		s.mu.Unlock()
	}
	return nil
}

// Stop stops the running sync (Wait waits for it).
func (s *Sync) Stop() {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
}

// RestartIfPolicyChanged restarts the sync when the selected modules now
// give another policy (tracked paths, executables, node keys, reload
// order) than the one it runs with: after a commit on the primary, after
// an apply on the secondary, after an approval. The secondary then applies
// the head again in full, so that files its old policy left out are
// written. It must not be called from the sync's own goroutine (it waits
// for it to end): callers start it with go.
func (s *Sync) RestartIfPolicyChanged() {
	s.mu.Lock()
	if s.cancel == nil {
		s.mu.Unlock()
		return
	}
	primary, secrets, old := s.role == stamp.RolePrimary, s.secrets, s.policyKey
	s.mu.Unlock()
	// Worked out without the lock: it reads the module files.
	if s.currentPolicyKey(primary, secrets) == old {
		return
	}
	s.mu.Lock()
	if s.cancel == nil || s.policyKey != old {
		s.mu.Unlock()
		return // stopped, or restarted meanwhile
	}
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	cancel()
	<-done
	// Not when the agent is stopping (the peer side is down by then).
	started, err := s.d.StartAgain()
	if !started && err == nil {
		return
	}
	if err != nil {
		s.d.Log.Error("config sync: restart with the modules' new policy", "err", err)
		return
	}
	s.mu.Lock()
	secondary := s.secondary != nil && s.role == stamp.RoleSecondary
	s.mu.Unlock()
	s.d.Log.Info("config sync restarted: the selected modules changed its policy")
	s.event("sync-policy", s.node(), "the selected modules changed the sync's tracked paths, executables, node keys or reload order: sync restarted with them", nil)
	if secondary {
		if _, err := s.SyncNow(context.Background(), true); err != nil {
			s.d.Log.Warn("config sync: full apply with the new policy", "err", err)
		}
	}
}

// onCommit runs after each commit on the primary.
func (s *Sync) onCommit(c *synchronizer.CommitResult) {
	var evs queued
	s.mu.Lock()
	var paths []string
	for p := range c.Changed {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	committed := !c.Hash.IsZero() // zero: only what is left out changed
	if c.Repaired != "" {
		s.d.Log.Warn("configuration repository repaired", "commit", c.Hash.String(), "what", c.Repaired)
		evs.add(s, "config-repaired", s.node(), c.Repaired, map[string]string{"commit": c.Hash.String()})
	}
	if committed {
		s.head, s.headAt = c.Hash.String(), time.Now().UTC()
		evs.add(s, "config-commit", s.node(), fmt.Sprintf("configuration commit %s: %d path(s) changed", c.Hash.String()[:12], len(paths)),
			map[string]string{"commit": c.Hash.String(), "paths": strings.Join(paths, " ")})
	}
	if s.refused == nil {
		s.refused = map[string]string{}
	}
	for _, r := range c.Refused {
		if s.refused[r.Path] != r.Reason {
			s.refused[r.Path] = r.Reason
			s.d.Log.Warn("config path refused: it will not reach the secondary", "path", r.Path, "reason", r.Reason)
			evs.add(s, "config-refused", s.node(), fmt.Sprintf("%s left out: %s", r.Path, r.Reason), map[string]string{"path": r.Path, "reason": r.Reason})
		}
	}
	s.mu.Unlock()
	evs.record()
	if !committed {
		return
	}
	s.d.Log.Info("configuration committed", "commit", c.Hash.String(), "paths", len(paths))
	s.d.Committed(paths) // before the policy is compared
	// Tell the secondary at once rather than at its next hello.
	go s.d.Hello()
	go s.RestartIfPolicyChanged()
}

// kickLocked asks the secondary's sync loop to run (non-blocking).
func (s *Sync) kickLocked(primaryHead string) {
	if s.kick == nil || primaryHead == "" {
		return
	}
	if primaryHead == s.applied || primaryHead == s.failed {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// ApplyFailures is how many applies failed since the agent started.
func (s *Sync) ApplyFailures() int { return int(s.applyFailures.Load()) }

// DriftInterval is how often the secondary looks for tracked files edited
// locally (a hash of each: a few hundred files).
const DriftInterval = 15 * time.Second

func (s *Sync) runSecondary(ctx context.Context, sec *synchronizer.Secondary, kick, rearm chan struct{}) {
	tick := time.NewTicker(time.Minute) // a sync, in case a kick was missed
	defer tick.Stop()
	driftTick := time.NewTicker(DriftInterval)
	defer driftTick.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	// Objects lost in a power cut: the mirror drops what is damaged and
	// fetches it again.
	if said, err := sec.Repair(); err != nil {
		s.d.Log.Error("configuration mirror: repair", "err", err)
		s.event("config-repair-failed", s.node(), "the configuration mirror is damaged and could not be repaired: "+err.Error(), nil)
	} else if said != "" {
		s.d.Log.Warn("configuration mirror repaired", "what", said)
		s.event("config-repaired", s.node(), said, nil)
		// What was dropped is fetched again now: a hello whose head S has
		// applied kicks no sync, and the minute's tick is a long time for
		// a mirror missing objects (the chaos campaign saw that window).
		select {
		case kick <- struct{}{}:
		default: // a kick is waiting already
		}
	}
	s.CheckDrift()
	for {
		retrying, run := false, true
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
			s.CheckDrift()
		case <-driftTick.C:
			s.CheckDrift()
			continue
		case <-retry.C:
			retrying = true
		case <-rearm:
			run = false // a sync outside this loop scheduled a retry
		}
		s.mu.Lock()
		failed, n := s.failed, s.retries
		if retrying && s.retryAt.IsZero() {
			retrying = false // a newer commit applied meanwhile
		}
		s.mu.Unlock()
		if retrying {
			s.d.Log.Info("config sync: trying the failed commit again", "commit", failed, "try", n+1)
		}
		if run {
			s.SyncNow(ctx, retrying)
		}
		s.mu.Lock()
		at := s.retryAt
		s.mu.Unlock()
		retry.Stop()
		if !at.IsZero() {
			retry.Reset(time.Until(at))
		}
	}
}

// Drift lists the secondary's local edits under the tracked paths.
func (s *Sync) Drift() ([]synchronizer.DriftItem, error) {
	s.mu.Lock()
	sec := s.secondary
	s.mu.Unlock()
	if sec == nil {
		return nil, fmt.Errorf("drift is a secondary's: this node is not one")
	}
	applied := sec.Applied()
	s.mu.Lock()
	snap := s.driftSnap
	if snap == nil || s.driftOf != sec || snap.Commit != applied {
		snap = nil
	}
	s.mu.Unlock()
	if snap == nil {
		full, err := synchronizer.ReadSnapshot(sec.Mirror.Storer, applied)
		if err != nil {
			return nil, err
		}
		snap = full.ForNode(sec.Node)
		s.mu.Lock()
		s.driftSnap, s.driftOf = snap, sec
		s.mu.Unlock()
	}
	return synchronizer.DriftCached(sec.Mirror.Storer, snap, sec.Root, sec.Secrets, &s.driftCache)
}

// CheckDrift records newly found drift as events, with its diff.
func (s *Sync) CheckDrift() {
	items, err := s.Drift()
	if err != nil {
		s.d.Log.Warn("config drift check", "err", err)
		return
	}
	var evs queued
	defer evs.record() // after the lock is let go
	s.mu.Lock()
	defer s.mu.Unlock()
	now := map[string]synchronizer.DriftItem{}
	for _, it := range items {
		now[it.Path] = it
		if old, ok := s.drift[it.Path]; ok && old == it {
			continue
		}
		diff := redactSecrets(it.Diff)
		if len(diff) > 2000 {
			diff = diff[:2000] + "...\n"
		}
		s.d.Log.Warn("local edit on the secondary under a tracked path: the next apply overwrites it", "path", it.Path, "what", it.What)
		evs.add(s, "config-drift-found", s.node(), fmt.Sprintf("%s differs from the primary's configuration (%s); the next apply or sync --force overwrites it", it.Path, it.What),
			map[string]string{"path": it.Path, "what": it.What, "diff": diff})
	}
	s.drift = now
}

// appliedPaths are the paths a sync wrote or removed, as on this disk
// (under the apply root): none when it changed nothing, nil (unknown) when
// it failed or rolled back.
func (s *Sync) appliedPaths(res *synchronizer.SyncResult) []string {
	if res == nil || !res.Changed {
		return []string{}
	}
	if res.Failed != "" || res.Result == nil {
		return nil
	}
	paths := []string{}
	for _, p := range append(append([]string{}, res.Result.Written...), res.Result.Removed...) {
		paths = append(paths, strings.TrimSuffix(s.d.ApplyRoot, "/")+p)
	}
	return paths
}

// SyncNow fetches and applies (force: the head again in full); it reports
// the outcome to the primary.
func (s *Sync) SyncNow(ctx context.Context, force bool) (*synchronizer.SyncResult, error) {
	s.mu.Lock()
	sec := s.secondary
	s.mu.Unlock()
	if sec == nil {
		return nil, fmt.Errorf("this node is not a secondary")
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	endReloads := s.reloads.Begin()
	endModules := s.d.Applying()
	res, err := sec.Sync(sctx, s.fetcher(), force)
	endModules(s.appliedPaths(res))
	if res != nil && res.Changed {
		// Whatever it reloaded (the new commit's units, or a rollback's).
		endReloads(res.Units)
	} else {
		endReloads(nil)
	}
	backoff := s.d.RetryBackoff
	var evs queued
	s.mu.Lock()
	if err != nil {
		s.err = err.Error()
		s.d.Log.Warn("config sync", "err", err)
		s.mu.Unlock()
		return nil, err
	}
	s.head = res.Head
	if res.Repaired != "" {
		evs.add(s, "config-repaired", s.node(), res.Repaired, map[string]string{"commit": res.Head})
	}
	if !res.Changed {
		// A fetch error of an earlier try is over; a commit that failed
		// before still says so, with its recorded reason.
		if res.Failed == "" {
			s.err = ""
		} else if s.retryAt.IsZero() || s.failed != res.Failed {
			s.failed, s.err = res.Failed, res.Error
		}
	}
	if res.Changed {
		if res.Failed != "" {
			if res.Failed != s.failed {
				s.retries = 0
			}
			s.failed, s.err = res.Failed, res.Error
			s.retryAt = time.Time{}
			if res.Transient && s.retries < len(backoff) {
				s.retryAt = time.Now().Add(backoff[s.retries])
				s.retries++
				select {
				case s.rearm <- struct{}{}:
				default:
				}
			}
			next := "it waits for a newer commit or sync --force"
			if !s.retryAt.IsZero() {
				next = fmt.Sprintf("the cause may clear by itself: trying again at %s (try %d of %d)",
					s.retryAt.Format("15:04:05"), s.retries+1, len(backoff)+1)
			}
			evs.add(s, "config-apply-failed", s.node(), fmt.Sprintf("configuration %s failed to apply; rolled back to %s: %s; %s",
				short(res.Failed), short(res.Applied), res.Error, next), map[string]string{"commit": res.Failed, "rolled_back": fmt.Sprint(res.RolledBack),
				"transient": fmt.Sprint(res.Transient)})
			s.d.Log.Error("configuration apply failed", "commit", res.Failed, "rolled_back", res.RolledBack, "err", res.Error)
			s.applyFailures.Add(1)
		} else {
			s.applied, s.err, s.failed = res.Applied, "", ""
			s.retries, s.retryAt = 0, time.Time{}
			n := 0
			if res.Result != nil {
				n = len(res.Result.Written) + len(res.Result.Removed)
				for _, d := range res.Result.Drift {
					evs.add(s, "config-drift", s.node(), d+" was edited on this node; overwritten by the primary's version", map[string]string{"path": d})
				}
				for _, r := range res.Result.Refused {
					evs.add(s, "config-refused", s.node(), fmt.Sprintf("%s not written: %s", r.Path, r.Reason), map[string]string{"path": r.Path, "reason": r.Reason})
				}
			}
			evs.add(s, "config-applied", s.node(), fmt.Sprintf("configuration %s applied: %d path(s), reloaded %s", short(res.Applied), n, strings.Join(res.Units, " ")),
				map[string]string{"commit": res.Applied, "pack_bytes": fmt.Sprint(res.PackBytes), "ms": fmt.Sprint(time.Since(start).Milliseconds())})
			s.d.Log.Info("configuration applied", "commit", res.Applied, "paths", n, "units", strings.Join(res.Units, " "), "pack_bytes", res.PackBytes)
		}
	}
	s.mu.Unlock()
	evs.record()
	if res.Changed {
		s.CheckDrift()
		go s.d.Hello()
		if res.Failed == "" && !force {
			go s.RestartIfPolicyChanged()
		}
	}
	return res, nil
}

// FillStatus fills the configuration fields of this node's status (the
// hello and `sentry status`).
func (s *Sync) FillStatus(st *peer.NodeStatus) {
	s.mu.Lock()
	st.ConfigHead = s.head
	if s.repo != nil {
		st.ConfigHeadAt = s.headAt
	}
	secondary := s.secondary != nil
	if secondary {
		st.ConfigApplied, st.ConfigFailed, st.ConfigError = s.applied, s.failed, s.err
		if !s.retryAt.IsZero() {
			st.ConfigRetry = fmt.Sprintf("try %d of %d at %s", s.retries+1, len(s.d.RetryBackoff)+1, s.retryAt.UTC().Format(time.RFC3339))
		}
		st.ConfigDrift = len(s.drift)
	}
	s.mu.Unlock()
	if secondary {
		st.BoundaryPending = s.d.Pending()
	}
	if strings.Trim(st.ConfigHead, "0") == "" {
		st.ConfigHead = ""
	}
	if strings.Trim(st.ConfigApplied, "0") == "" {
		st.ConfigApplied = ""
	}
}

// NotePeer takes the peer's status from a hello: the secondary fetches a
// new head; the primary reports the secondary's failures.
func (s *Sync) NotePeer(h *peer.NodeStatus) {
	var evs queued
	defer evs.record() // after the lock is let go
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repo == nil {
		s.kickLocked(h.ConfigHead)
		return
	}
	if h.ConfigError != "" && h.ConfigFailed != s.peerErr {
		s.peerErr = h.ConfigFailed
		evs.add(s, "peer-config-failed", h.Name, fmt.Sprintf("%s could not apply configuration %s: %s", h.Name, short(h.ConfigFailed), h.ConfigError),
			map[string]string{"commit": h.ConfigFailed})
		s.d.Log.Error("the secondary failed to apply a configuration commit", "node", h.Name, "commit", h.ConfigFailed, "err", h.ConfigError)
	}
	if h.ConfigError == "" {
		s.peerErr = ""
	}
}

// RollbackResult is what `sentry config rollback` prints.
type RollbackResult struct {
	Restored string `json:"restored"` // the commit whose configuration was restored
	Commit   string `json:"commit"`   // the new commit that records it
}

// Rollback restores the tracked files of rev on the primary's disk and
// commits that as a new commit: history is never rewritten, and the
// secondary follows as with any change.
func (s *Sync) Rollback(rev string) (*RollbackResult, error) {
	s.mu.Lock()
	repo, secrets := s.repo, s.secrets
	s.mu.Unlock()
	if repo == nil {
		return nil, fmt.Errorf("rollback is done on the primary")
	}
	h, err := repo.Git().ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w", rev, err)
	}
	st := repo.Git().Storer
	want, err := synchronizer.ReadSnapshot(st, *h)
	if err != nil {
		return nil, err
	}
	cur, err := synchronizer.ReadSnapshot(st, repo.Head())
	if err != nil {
		return nil, err
	}
	ap := &synchronizer.Applier{Store: st, Policy: s.primaryPolicy(secrets)}
	res, err := ap.Apply(cur, want)
	if err != nil {
		return nil, fmt.Errorf("restoring %s: %w", short(h.String()), err)
	}
	if err := repo.ScanAll(); err != nil {
		return nil, err
	}
	c, err := repo.Commit("rollback to "+short(h.String()), time.Now())
	if err != nil {
		return nil, err
	}
	out := &RollbackResult{Restored: h.String()}
	if c != nil {
		if !c.Hash.IsZero() {
			out.Commit = c.Hash.String()
		}
		s.onCommit(c)
	}
	// The primary's own services read the restored files too.
	var paths []string
	paths = append(append(paths, res.Written...), res.Removed...)
	_, units := s.d.Policy()
	sec := &synchronizer.Secondary{Units: units}
	reload := sec.Affected(paths)
	endReloads := s.reloads.Begin()
	err = (synchronizer.SystemdReloader{}).Reload(context.Background(), reload)
	endReloads(reload)
	if err != nil {
		return out, fmt.Errorf("restored and committed, but: %w", err)
	}
	return out, nil
}

// Running says whether a sync runs (Start was called and Stop was not).
func (s *Sync) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancel != nil
}

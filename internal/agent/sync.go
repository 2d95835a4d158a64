package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer"
)

// syncState is what this agent knows of the configuration sync.
type syncState struct {
	primary   *synchronizer.Primary
	repo      *synchronizer.Repo // primary
	secondary *synchronizer.Secondary
	kick      chan struct{}
	cancel    context.CancelFunc
	done      chan struct{} // closed when the running sync's goroutine ends
	policyKey string        // the policy the running sync was started with
	head      string        // primary: repo head; secondary: fetched head
	applied   string
	failed    string
	err       string
	refused   map[string]string // primary: reported refusals
	peerErr   string            // primary: last failure the secondary reported
	retries   int               // secondary: tries of the failed commit after a transient failure
	retryAt   time.Time         // secondary: when the failed commit is tried again (zero: not)
	rearm     chan struct{}     // secondary: tells the sync loop that retryAt changed
	drift     map[string]synchronizer.DriftItem
}

func (a *Agent) policy() *synchronizer.Policy {
	p, _ := a.policyUnits()
	return p
}

// policyUnits is the sync policy and the reload order: sync.paths if set,
// else the selected modules' tracked paths (else the compiled-in roots),
// plus the cluster's own folder.
func (a *Agent) policyUnits() (*synchronizer.Policy, []synchronizer.RootUnit) {
	p := &synchronizer.Policy{Roots: a.conf().Sync.Paths, Exclude: a.conf().Sync.Exclude}
	units := a.modulePolicy(p)
	if len(p.Roots) == 0 {
		p.Roots = synchronizer.DefaultRoots
	}
	// The machine profiles are the cluster's, on every disk set.
	p.Roots = append(append([]string{}, p.Roots...), a.paths.clusterDir)
	return p, units
}

// primaryPolicy adds the per-node overlays, which only the primary tracks.
func (a *Agent) primaryPolicy() *synchronizer.Policy {
	p := a.policy()
	p.Roots = append(append([]string{}, p.Roots...), synchronizer.OverlayDir)
	if a.conf().Sync.EncryptSecrets {
		p.Secrets = a.secrets
	}
	return p
}

// policyKey is a text form of the sync policy and the reload order, to
// tell when the selected modules changed them.
func policyKey(p *synchronizer.Policy, units []synchronizer.RootUnit) string {
	var exec []string
	for e, ok := range p.AllowExec {
		if ok {
			exec = append(exec, e)
		}
	}
	sort.Strings(exec)
	us := make([]string, len(units))
	for i, u := range units {
		us[i] = u.Root + "=" + u.Unit
	}
	return strings.Join([]string{strings.Join(p.Roots, " "), strings.Join(p.Exclude, " "), strings.Join(exec, " "),
		strings.Join(p.NodeKeys, " "), strings.Join(us, " ")}, "\n")
}

// currentPolicyKey is the key of the policy the selected modules give now,
// for this node's role.
func (a *Agent) currentPolicyKey(primary bool) string {
	p, units := a.policyUnits()
	if primary {
		p = a.primaryPolicy()
	}
	return policyKey(p, units)
}

// startSyncLocked starts the primary's watcher or the secondary's sync
// loop, by the disk stamp's role. a.mu is held.
func (a *Agent) startSyncLocked() error {
	if a.sync.cancel != nil || a.stamp == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	dir := a.statePath("config.git")
	done := make(chan struct{})
	switch a.stamp.Role {
	case stamp.RolePrimary:
		pol := a.primaryPolicy()
		_, units := a.policyUnits()
		a.sync.policyKey = policyKey(pol, units)
		repo, err := synchronizer.OpenRepo(dir, a.nodeName(), pol)
		if err != nil {
			cancel()
			return err
		}
		a.sync.repo = repo
		a.sync.head = repo.Head().String()
		a.sync.refused = map[string]string{}
		a.sync.primary = &synchronizer.Primary{Repo: repo, Log: a.log, Debounce: a.conf().Sync.Debounce.Duration,
			Rescan: a.conf().Sync.RescanInterval.Duration, OnCommit: a.onCommit}
		a.wg.Add(1)
		go func(pr *synchronizer.Primary) {
			defer a.wg.Done()
			defer close(done)
			if err := pr.Run(ctx); err != nil {
				a.log.Error("config watcher stopped", "err", err)
			}
		}(a.sync.primary)
	case stamp.RoleSecondary:
		m, err := synchronizer.MirrorOpen(dir)
		if err != nil {
			cancel()
			return err
		}
		pol, units := a.policyUnits()
		a.sync.policyKey = policyKey(pol, units)
		a.sync.secondary = &synchronizer.Secondary{Mirror: m, Path: dir, Policy: pol, Node: a.nodeName(), Secrets: a.secrets, Units: units,
			Reloader: a.paths.reloader, Log: a.log, Root: a.paths.applyRoot}
		a.sync.applied = a.sync.secondary.Applied().String()
		if f := a.sync.secondary.Failed(); !f.IsZero() && f != a.sync.secondary.Fetched() {
			// A newer head was fetched since: what failed no longer describes this node.
			if err := a.sync.secondary.ForgetFailed(); err != nil {
				a.log.Warn("config sync", "err", err)
			}
		}
		if f := a.sync.secondary.Failed(); !f.IsZero() {
			a.sync.failed, a.sync.err = f.String(), a.sync.secondary.FailedReason()
			if a.sync.err == "" {
				a.sync.err = "failed before this agent started (reason not recorded)"
			}
		}
		a.sync.kick = make(chan struct{}, 1)
		a.sync.rearm = make(chan struct{}, 1)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer close(done)
			a.runSecondarySync(ctx)
		}()
	default:
		close(done)
	}
	a.sync.cancel, a.sync.done = cancel, done
	return nil
}

// restartSyncIfPolicyChanged restarts the sync when the selected modules
// now give another policy (tracked paths, executables, node keys, reload
// order) than the one it runs with: after a commit on the primary, after
// an apply on the secondary. The secondary then applies the head again in
// full, so that files its old policy left out are written. It must not be
// called from the sync's own goroutine (it waits for it to end): callers
// start it with go.
func (a *Agent) restartSyncIfPolicyChanged() {
	a.mu.Lock()
	if a.sync.cancel == nil || a.stamp == nil {
		a.mu.Unlock()
		return
	}
	primary := a.stamp.Role == stamp.RolePrimary
	old := a.sync.policyKey
	a.mu.Unlock()
	// Worked out without a.mu: it reads the module files.
	if a.currentPolicyKey(primary) == old {
		return
	}
	a.mu.Lock()
	if a.sync.cancel == nil || a.sync.policyKey != old {
		a.mu.Unlock()
		return // stopped, or restarted meanwhile
	}
	cancel, done := a.sync.cancel, a.sync.done
	a.sync.cancel = nil
	a.mu.Unlock()
	cancel()
	<-done
	a.mu.Lock()
	// Not when the agent is stopping (the peer side is down by then).
	if !a.lnk().Running() || a.safeModeLocked() != "" || a.sync.cancel != nil {
		a.mu.Unlock()
		return
	}
	err := a.startSyncLocked()
	secondary := a.sync.secondary != nil && a.stamp != nil && a.stamp.Role == stamp.RoleSecondary
	a.mu.Unlock()
	if err != nil {
		a.log.Error("config sync: restart with the modules' new policy", "err", err)
		return
	}
	a.log.Info("config sync restarted: the selected modules changed its policy")
	a.event("sync-policy", a.nodeName(), "the selected modules changed the sync's tracked paths, executables, node keys or reload order: sync restarted with them", nil)
	if secondary {
		if _, err := a.syncOnce(context.Background(), true); err != nil {
			a.log.Warn("config sync: full apply with the new policy", "err", err)
		}
	}
}

func (a *Agent) stopSyncLocked() {
	if a.sync.cancel != nil {
		a.sync.cancel()
		a.sync.cancel = nil
	}
}

// onCommit runs after each commit on the primary.
func (a *Agent) onCommit(c *synchronizer.CommitResult) {
	a.mu.Lock()
	var paths []string
	for p := range c.Changed {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	committed := !c.Hash.IsZero() // zero: only what is left out changed
	if c.Repaired != "" {
		a.log.Warn("configuration repository repaired", "commit", c.Hash.String(), "what", c.Repaired)
		a.event("config-repaired", a.nodeName(), c.Repaired, map[string]string{"commit": c.Hash.String()})
	}
	if committed {
		a.sync.head = c.Hash.String()
		a.event("config-commit", a.nodeName(), fmt.Sprintf("configuration commit %s: %d path(s) changed", c.Hash.String()[:12], len(paths)),
			map[string]string{"commit": c.Hash.String(), "paths": strings.Join(paths, " ")})
	}
	for _, r := range c.Refused {
		if a.sync.refused[r.Path] != r.Reason {
			a.sync.refused[r.Path] = r.Reason
			a.log.Warn("config path refused: it will not reach the secondary", "path", r.Path, "reason", r.Reason)
			a.event("config-refused", a.nodeName(), fmt.Sprintf("%s left out: %s", r.Path, r.Reason), map[string]string{"path": r.Path, "reason": r.Reason})
		}
	}
	a.mu.Unlock()
	if !committed {
		return
	}
	a.log.Info("configuration committed", "commit", c.Hash.String(), "paths", len(paths))
	// Tell the secondary at once rather than at its next hello.
	go a.helloOnce(context.Background())
	go a.restartSyncIfPolicyChanged()
}

// handleFetch serves the secondary: the primary's head, and a packfile of
// what the secondary lacks (POST /v1/config/fetch, peer only).
func (a *Agent) handleFetch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Have string `json:"have"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, fmt.Errorf("fetch request: %w", err))
		return
	}
	a.mu.Lock()
	repo := a.sync.repo
	a.mu.Unlock()
	if repo == nil {
		a.refusePeer(w, r, http.StatusConflict, fmt.Errorf("this node is not the primary"))
		return
	}
	head := repo.Head()
	w.Header().Set("X-Sentry-Config-Head", head.String())
	if head.IsZero() || head.String() == req.Have {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The packfile, gzipped: its objects are compressed one by one, and a
	// stream compression over all of them saves another quarter or so.
	w.Header().Set("Content-Type", "application/x-git-packfile")
	w.Header().Set("X-Sentry-Pack-Encoding", "gzip")
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	n, err := synchronizer.WritePack(zw, repo.Git().Storer, head, []plumbing.Hash{plumbing.NewHash(req.Have)})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		a.log.Error("config fetch", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	a.log.Debug("config fetch served", "peer", r.RemoteAddr, "objects", n, "bytes", buf.Len())
}

// fetcher is the secondary's side of handleFetch.
func (a *Agent) fetcher() synchronizer.Fetcher {
	return func(ctx context.Context, have plumbing.Hash) (plumbing.Hash, io.ReadCloser, error) {
		haveStr := ""
		if !have.IsZero() {
			haveStr = have.String()
		}
		head, pack, err := a.peerClient().FetchConfig(ctx, haveStr, a.peerProtocol())
		if err != nil || pack == nil {
			return plumbing.NewHash(head), nil, err
		}
		cr := &synchronizer.CountingReader{R: io.LimitReader(pack, 1<<30)}
		zr, err := gzip.NewReader(cr)
		if err != nil {
			pack.Close()
			return plumbing.ZeroHash, nil, fmt.Errorf("pack from the primary: %w", err)
		}
		return plumbing.NewHash(head), &gzipPack{Reader: zr, body: pack, cr: cr}, nil
	}
}

// kickSync asks the secondary's sync loop to run (non-blocking).
func (a *Agent) kickSyncLocked(primaryHead string) {
	if a.sync.kick == nil || primaryHead == "" {
		return
	}
	if primaryHead == a.sync.applied || primaryHead == a.sync.failed {
		return
	}
	select {
	case a.sync.kick <- struct{}{}:
	default:
	}
}

// defaultRetryBackoff is the wait before each new try of a commit whose apply
// failed for a reason that may clear by itself; past the last, the commit
// waits for a newer one or sync --force, like any failed commit.
var defaultRetryBackoff = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}

func (a *Agent) runSecondarySync(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	// Objects lost in a power cut: the mirror drops what is damaged and
	// fetches it again.
	a.mu.Lock()
	sec := a.sync.secondary
	a.mu.Unlock()
	if said, err := sec.Repair(); err != nil {
		a.log.Error("configuration mirror: repair", "err", err)
		a.event("config-repair-failed", a.nodeName(), "the configuration mirror is damaged and could not be repaired: "+err.Error(), nil)
	} else if said != "" {
		a.log.Warn("configuration mirror repaired", "what", said)
		a.event("config-repaired", a.nodeName(), said, nil)
	}
	a.checkDrift()
	for {
		retrying, run := false, true
		select {
		case <-ctx.Done():
			return
		case <-a.sync.kick:
		case <-tick.C:
			a.checkDrift()
		case <-retry.C:
			retrying = true
		case <-a.sync.rearm:
			run = false // a sync outside this loop scheduled a retry
		}
		a.mu.Lock()
		failed, n := a.sync.failed, a.sync.retries
		if retrying && a.sync.retryAt.IsZero() {
			retrying = false // a newer commit applied meanwhile
		}
		a.mu.Unlock()
		if retrying {
			a.log.Info("config sync: trying the failed commit again", "commit", failed, "try", n+1)
		}
		if run {
			a.syncOnce(ctx, retrying)
		}
		a.mu.Lock()
		at := a.sync.retryAt
		a.mu.Unlock()
		retry.Stop()
		if !at.IsZero() {
			retry.Reset(time.Until(at))
		}
	}
}

// Drift lists the secondary's local edits under the tracked paths.
func (a *Agent) Drift() ([]synchronizer.DriftItem, error) {
	a.mu.Lock()
	sec := a.sync.secondary
	a.mu.Unlock()
	if sec == nil {
		return nil, fmt.Errorf("drift is a secondary's: this node is not one")
	}
	s, err := synchronizer.ReadSnapshot(sec.Mirror.Storer, sec.Applied())
	if err != nil {
		return nil, err
	}
	return synchronizer.Drift(sec.Mirror.Storer, s.ForNode(sec.Node), sec.Root, sec.Secrets)
}

// checkDrift records newly found drift as events, with its diff.
func (a *Agent) checkDrift() {
	items, err := a.Drift()
	if err != nil {
		a.log.Warn("config drift check", "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := map[string]synchronizer.DriftItem{}
	for _, it := range items {
		now[it.Path] = it
		if old, ok := a.sync.drift[it.Path]; ok && old == it {
			continue
		}
		diff := redactSecrets(it.Diff)
		if len(diff) > 2000 {
			diff = diff[:2000] + "...\n"
		}
		a.log.Warn("local edit on the secondary under a tracked path: the next apply overwrites it", "path", it.Path, "what", it.What)
		a.event("config-drift-found", a.nodeName(), fmt.Sprintf("%s differs from the primary's configuration (%s); the next apply or sync --force overwrites it", it.Path, it.What),
			map[string]string{"path": it.Path, "what": it.What, "diff": diff})
	}
	a.sync.drift = now
}

// syncOnce fetches and applies; it reports the outcome to the primary.
func (a *Agent) syncOnce(ctx context.Context, force bool) (*synchronizer.SyncResult, error) {
	a.mu.Lock()
	sec := a.sync.secondary
	a.mu.Unlock()
	if sec == nil {
		return nil, fmt.Errorf("this node is not a secondary")
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	endReloads := a.reloads.begin()
	res, err := sec.Sync(sctx, a.fetcher(), force)
	if res != nil && res.Changed {
		// Whatever it reloaded (the new commit's units, or a rollback's).
		endReloads(res.Units)
	} else {
		endReloads(nil)
	}
	a.mu.Lock()
	if err != nil {
		a.sync.err = err.Error()
		a.log.Warn("config sync", "err", err)
		a.mu.Unlock()
		return nil, err
	}
	a.sync.head = res.Head
	if res.Repaired != "" {
		a.event("config-repaired", a.nodeName(), res.Repaired, map[string]string{"commit": res.Head})
	}
	if !res.Changed {
		// A fetch error of an earlier try is over; a commit that failed
		// before still says so, with its recorded reason.
		if res.Failed == "" {
			a.sync.err = ""
		} else if a.sync.retryAt.IsZero() || a.sync.failed != res.Failed {
			a.sync.failed, a.sync.err = res.Failed, res.Error
		}
	}
	if res.Changed {
		if res.Failed != "" {
			if res.Failed != a.sync.failed {
				a.sync.retries = 0
			}
			a.sync.failed, a.sync.err = res.Failed, res.Error
			a.sync.retryAt = time.Time{}
			if res.Transient && a.sync.retries < len(a.paths.retryBackoff) {
				a.sync.retryAt = time.Now().Add(a.paths.retryBackoff[a.sync.retries])
				a.sync.retries++
				select {
				case a.sync.rearm <- struct{}{}:
				default:
				}
			}
			next := "it waits for a newer commit or sync --force"
			if !a.sync.retryAt.IsZero() {
				next = fmt.Sprintf("the cause may clear by itself: trying again at %s (try %d of %d)",
					a.sync.retryAt.Format("15:04:05"), a.sync.retries+1, len(a.paths.retryBackoff)+1)
			}
			a.event("config-apply-failed", a.nodeName(), fmt.Sprintf("configuration %s failed to apply; rolled back to %s: %s; %s",
				short(res.Failed), short(res.Applied), res.Error, next), map[string]string{"commit": res.Failed, "rolled_back": fmt.Sprint(res.RolledBack),
				"transient": fmt.Sprint(res.Transient)})
			a.log.Error("configuration apply failed", "commit", res.Failed, "rolled_back", res.RolledBack, "err", res.Error)
		} else {
			a.sync.applied, a.sync.err, a.sync.failed = res.Applied, "", ""
			a.sync.retries, a.sync.retryAt = 0, time.Time{}
			n := 0
			if res.Result != nil {
				n = len(res.Result.Written) + len(res.Result.Removed)
				for _, d := range res.Result.Drift {
					a.event("config-drift", a.nodeName(), d+" was edited on this node; overwritten by the primary's version", map[string]string{"path": d})
				}
				for _, r := range res.Result.Refused {
					a.event("config-refused", a.nodeName(), fmt.Sprintf("%s not written: %s", r.Path, r.Reason), map[string]string{"path": r.Path, "reason": r.Reason})
				}
			}
			a.event("config-applied", a.nodeName(), fmt.Sprintf("configuration %s applied: %d path(s), reloaded %s", short(res.Applied), n, strings.Join(res.Units, " ")),
				map[string]string{"commit": res.Applied, "pack_bytes": fmt.Sprint(res.PackBytes), "ms": fmt.Sprint(time.Since(start).Milliseconds())})
			a.log.Info("configuration applied", "commit", res.Applied, "paths", n, "units", strings.Join(res.Units, " "), "pack_bytes", res.PackBytes)
		}
	}
	a.mu.Unlock()
	if res.Changed {
		a.checkDrift()
		go a.helloOnce(context.Background())
		if res.Failed == "" && !force {
			go a.restartSyncIfPolicyChanged()
		}
	}
	return res, nil
}

// secretLine matches a configuration line that sets a password or a
// secret (key = value, key: value, key value), whatever the service.
var secretLine = regexp.MustCompile(`(?i)^([-+ ]?\s*[\w.-]*(passwd|password|passphrase|secret|credential|token|api_?key)[\w.-]*\s*[=:]?\s*)\S.*$`)

// redactSecrets hides the values of password-looking lines in a diff kept
// in an event (events are stored, listed and may be mailed; the operator
// sees the whole file with sentry config drift, as root).
func redactSecrets(diff string) string {
	lines := strings.Split(diff, "\n")
	for i, l := range lines {
		if m := secretLine.FindStringSubmatch(l); m != nil {
			lines[i] = m[1] + "(redacted)"
		}
	}
	return strings.Join(lines, "\n")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// syncFieldsLocked fills the configuration fields of this node's status.
func (a *Agent) syncFieldsLocked(s *peer.NodeStatus) {
	s.ConfigHead = a.sync.head
	if a.sync.secondary != nil {
		s.ConfigApplied, s.ConfigFailed, s.ConfigError = a.sync.applied, a.sync.failed, a.sync.err
		if !a.sync.retryAt.IsZero() {
			s.ConfigRetry = fmt.Sprintf("try %d of %d at %s", a.sync.retries+1, len(a.paths.retryBackoff)+1, a.sync.retryAt.UTC().Format(time.RFC3339))
		}
		s.ConfigDrift = len(a.sync.drift)
		s.BoundaryPending = a.boundary.list()
	}
	if strings.Trim(s.ConfigHead, "0") == "" {
		s.ConfigHead = ""
	}
	if strings.Trim(s.ConfigApplied, "0") == "" {
		s.ConfigApplied = ""
	}
}

// notePeerSyncLocked is the primary's view of the secondary's report.
func (a *Agent) notePeerSyncLocked(h *peer.NodeStatus) {
	if a.sync.repo == nil {
		a.kickSyncLocked(h.ConfigHead)
		return
	}
	if h.ConfigError != "" && h.ConfigFailed != a.sync.peerErr {
		a.sync.peerErr = h.ConfigFailed
		a.event("peer-config-failed", h.Name, fmt.Sprintf("%s could not apply configuration %s: %s", h.Name, short(h.ConfigFailed), h.ConfigError),
			map[string]string{"commit": h.ConfigFailed})
		a.log.Error("the secondary failed to apply a configuration commit", "node", h.Name, "commit", h.ConfigFailed, "err", h.ConfigError)
	}
	if h.ConfigError == "" {
		a.sync.peerErr = ""
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
func (a *Agent) Rollback(rev string) (*RollbackResult, error) {
	a.mu.Lock()
	repo := a.sync.repo
	a.mu.Unlock()
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
	ap := &synchronizer.Applier{Store: st, Policy: a.primaryPolicy()}
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
		a.onCommit(c)
	}
	// The primary's own services read the restored files too.
	var paths []string
	paths = append(append(paths, res.Written...), res.Removed...)
	_, units := a.policyUnits()
	sec := &synchronizer.Secondary{Units: units}
	reload := sec.Affected(paths)
	endReloads := a.reloads.begin()
	err = (synchronizer.SystemdReloader{}).Reload(context.Background(), reload)
	endReloads(reload)
	if err != nil {
		return out, fmt.Errorf("restored and committed, but: %w", err)
	}
	return out, nil
}

// gzipPack is the pack as read from the wire; WireBytes is what crossed.
type gzipPack struct {
	*gzip.Reader
	body io.Closer
	cr   *synchronizer.CountingReader
}

func (g *gzipPack) Close() error     { g.Reader.Close(); return g.body.Close() }
func (g *gzipPack) WireBytes() int64 { return g.cr.N }

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/alert"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// verifyState is the agent's view of its own node's probes.
type verifyState struct {
	last    map[string]verifier.Result // by probe name, the newest run
	fails   map[string]int             // consecutive failures
	red     map[string]bool            // reported red (after FailAfter failures)
	round   time.Time
	roundMS int64
	logs    map[string]string // by probe name, the newest run's own log
}

// FailAfter is how many failures in a row turn a probe red in the status
// and the events (1: the first, so the status is never behind); one success
// turns it green. Alerts by mail have their own hysteresis ([alert]).
var FailAfter = 1

// canaryPassword is derived from the cluster key (the same on both nodes).
func (a *Agent) canaryPassword() (string, bool) {
	a.mu.Lock()
	sec := a.secrets
	a.mu.Unlock()
	if sec == nil {
		// A node paired before the agent knew the key: read it again.
		b, err := os.ReadFile(filepath.Join(a.statePath("pki"), pki.ClusterKeyFile))
		if err != nil {
			return "", false
		}
		return deriveCanary(string(b))
	}
	return sec.MAC([]byte("sentry canary password"))[:32], true
}

// CanaryFile declares the canaries: `sentry verifier setup` on the primary
// writes it, the configuration sync brings it to the secondary, and the
// secondary's agent then makes the same canaries there (accounts and
// databases are not files the sync could carry). Only the declaration
// crosses; no user data does.
const CanaryFile = "/etc/sentry/cluster/canary.toml"

// canaryFile is CanaryFile in this agent's cluster folder.
func (a *Agent) canaryFile() string { return filepath.Join(a.paths.clusterDir, "canary.toml") }

// canaryAppliedName, in the state folder, holds the setup id done here.
const canaryAppliedName = "canary-applied"

// DeclareCanaries records, after a successful setup on this node, that the
// canaries exist (on a primary, for the secondary to follow).
func DeclareCanaries(stateDir string, primary bool) error {
	id := randomID()
	if primary {
		body := fmt.Sprintf("# Written by `sentry verifier setup` on the primary; the secondary's agent\n# makes the same canaries when this changes.\nschema_version = 1\nsetup_id = %q\nsetup_at = %s\n",
			id, time.Now().UTC().Format(time.RFC3339))
		if err := os.MkdirAll(filepath.Dir(CanaryFile), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(CanaryFile, []byte(body), 0o644); err != nil {
			return err
		}
	}
	if !primary {
		// A secondary set up by hand has done what the primary declared.
		var decl struct {
			SetupID string `toml:"setup_id"`
		}
		if _, err := safetoml.DecodeFile(CanaryFile, &decl, safetoml.Small()); err == nil && decl.SetupID != "" {
			id = decl.SetupID
		}
	}
	return atomicfile.Write(filepath.Join(stateDir, canaryAppliedName), []byte(id), 0o600)
}

// followCanaries makes this node's canaries when the declaration changed.
func (a *Agent) followCanaries(ctx context.Context, pw string) {
	var decl struct {
		SchemaVersion int       `toml:"schema_version"`
		SetupID       string    `toml:"setup_id"`
		SetupAt       time.Time `toml:"setup_at"`
	}
	if _, err := safetoml.DecodeFile(a.canaryFile(), &decl, safetoml.Small()); err != nil || decl.SetupID == "" {
		return
	}
	mark := a.statePath(canaryAppliedName)
	if b, err := os.ReadFile(mark); err == nil && string(b) == decl.SetupID {
		return
	}
	var pages []verifier.Page
	if set := a.moduleSet(); set != nil {
		pages = set.CanaryPages()
	}
	steps := verifier.Setup(ctx, pw, pages...)
	var bad []string
	for _, st := range steps {
		if st.Error != "" {
			bad = append(bad, st.Service+": "+st.Error)
		}
	}
	node := a.nodeName()
	if len(bad) > 0 {
		a.log.Error("canary setup from the primary's declaration failed", "errors", strings.Join(bad, "; "))
		a.mu.Lock()
		a.event("canary-setup-failed", node, "canary setup failed: "+strings.Join(bad, "; "), map[string]string{"setup_id": decl.SetupID})
		a.mu.Unlock()
		return
	}
	if err := atomicfile.Write(mark, []byte(decl.SetupID), 0o600); err != nil {
		a.log.Error("canary mark", "err", err)
	}
	a.log.Info("canaries made as the primary declared", "setup_id", decl.SetupID)
	a.mu.Lock()
	a.event("canary-setup", node, fmt.Sprintf("canaries made on %s as the primary declared (%d steps)", node, len(steps)), map[string]string{"setup_id": decl.SetupID})
	a.mu.Unlock()
}

// runVerifier runs this node's probe set every verifier.interval (with
// jitter), once the node is paired and `sentry verifier setup` has made the
// canaries (the canary page tells).
// SystemState asks systemd for its state ("starting" while boot jobs
// run, then "running" or "degraded"); tests replace it.
var SystemState = func(ctx context.Context) (string, error) {
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
func waitBootSettled(ctx context.Context, limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		st, err := SystemState(ctx)
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

func (a *Agent) runVerifier(ctx context.Context) {
	if st := waitBootSettled(ctx, 2*time.Minute); st == "initializing" || st == "starting" {
		a.log.Warn("verifier: systemd still starting after 2 minutes; probing anyway", "state", st)
	}
	for {
		a.mu.Lock()
		iv, jit, to := a.conf().Verifier.Interval.Duration, a.conf().Verifier.Jitter.Duration, a.conf().Verifier.Timeout.Duration
		a.mu.Unlock()
		wait := iv
		if jit > 0 {
			wait += time.Duration(rand.Int64N(int64(jit)))
		}
		a.mu.Lock()
		safeMode := a.safeModeLocked() != ""
		a.mu.Unlock()
		if pw, ok := a.canaryPassword(); ok && !safeMode {
			a.followCanaries(ctx, pw)
			// Once the canaries were made here (the mark), a missing
			// canary page is a failure to report, not a reason to wait.
			_, markErr := os.Stat(a.statePath(canaryAppliedName))
			if _, err := os.Stat(verifier.CanaryPage); err == nil || markErr == nil {
				a.verifyRound(ctx, pw, to)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (a *Agent) verifyRound(ctx context.Context, pw string, timeout time.Duration) {
	start := time.Now()
	specs := a.probeSpecs(pw, timeout)
	results, logs := runProbes(ctx, specs)
	results, logs = a.reprobeAfterReloads(ctx, specs, results, logs)
	node := a.nodeName()
	for _, r := range results {
		if err := a.store.PutResult(storedResult(node, r)); err != nil {
			a.log.Error("store probe result", "probe", r.Name, "err", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	v := &a.verify
	if v.last == nil {
		v.last, v.fails, v.red = map[string]verifier.Result{}, map[string]int{}, map[string]bool{}
	}
	v.logs = logs
	v.round, v.roundMS = start, time.Since(start).Milliseconds()
	// Probes no longer in the set (a module changed) leave the summary.
	current := map[string]bool{}
	for _, r := range results {
		current[r.Name] = true
	}
	for name := range v.last {
		if !current[name] {
			delete(v.last, name)
			delete(v.fails, name)
			delete(v.red, name)
		}
	}
	for _, r := range results {
		v.last[r.Name] = r
		// Status and events follow each result at once ("red" is the
		// last run failed); alerts by mail wait for the hysteresis.
		if r.OK {
			v.fails[r.Name] = 0
			if v.red[r.Name] {
				v.red[r.Name] = false
				a.log.Info("probe green again", "probe", r.Name)
				a.event("probe-green", node, fmt.Sprintf("%s on %s works again", r.Name, node), map[string]string{"probe": r.Name})
			}
		} else {
			v.fails[r.Name]++
			if v.fails[r.Name] == FailAfter && !v.red[r.Name] {
				v.red[r.Name] = true
				a.log.Error("probe red", "probe", r.Name, "failures", v.fails[r.Name], "err", r.Message)
				a.event("probe-red", node, fmt.Sprintf("%s on %s fails: %s", r.Name, node, r.Message), map[string]string{"probe": r.Name})
			}
		}
		a.noticesLocked(a.alerts.ObserveResult(node, r))
	}
	a.saveAlertStateLocked()
}

// reprobeAfterReloads runs again the failed probes that the sync's own
// reload of a unit of their module disturbed (see reprobe).
func (a *Agent) reprobeAfterReloads(ctx context.Context, specs []verifier.Spec, results []verifier.Result, logs map[string]string) ([]verifier.Result, map[string]string) {
	var deps map[string][]string
	if set := a.moduleSet(); set != nil {
		deps = set.ProbeUnits()
	}
	disturbed := func(r verifier.Result) []string {
		var d []string
		if deps != nil {
			d = deps[r.Name]
			if d == nil {
				return nil // a probe of no module's units
			}
		}
		return a.reloads.disturbed(r.Started, r.Started.Add(r.Duration), d)
	}
	settle := func(ctx context.Context, units []string) error {
		if err := a.reloads.waitIdle(ctx, 2*time.Minute); err != nil {
			return err
		}
		var real []string
		for _, u := range units {
			if u != syncUnderWay {
				real = append(real, u)
			}
		}
		return synchronizer.WaitSettled(ctx, real, synchronizer.DefaultSettle)
	}
	out, logs := reprobe(ctx, specs, results, logs, disturbed, settle, runProbes)
	for _, r := range out {
		if why := r.Values["reprobed"]; why != "" {
			a.log.Info("probe run again after the sync's reload", "probe", r.Name, "ok", r.OK, "why", why)
		}
	}
	return out, logs
}

// runProbes runs specs side by side (a service that stalls costs the round
// one deadline, not one per stalled service), each logging at debug level
// into its own buffer: `sentry verify --debug NAME` shows the last
// scheduled run's log.
func runProbes(ctx context.Context, specs []verifier.Spec) ([]verifier.Result, map[string]string) {
	bufs := make([]bytes.Buffer, len(specs))
	loggers := make([]*slog.Logger, len(specs))
	for i := range specs {
		loggers[i] = slog.New(slog.NewTextHandler(&limitWriter{w: &bufs[i], n: maxProbeLog}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	results := verifier.RunAll(ctx, specs, loggers)
	logs := map[string]string{}
	for i, r := range results {
		logs[r.Name] = bufs[i].String()
	}
	return results, logs
}

// VerifyNow runs this node's probes now (those whose name starts with
// service, or all), stores the results and returns them.
func (a *Agent) VerifyNow(ctx context.Context, service string) ([]store.StoredResult, error) {
	pw, ok := a.canaryPassword()
	if !ok {
		return nil, errors.New("no cluster key on this node: pair it first (the canary password comes from it)")
	}
	a.mu.Lock()
	timeout, why := a.conf().Verifier.Timeout.Duration, a.safeModeLocked()
	a.mu.Unlock()
	if why != "" {
		return nil, fmt.Errorf("%s is in safe mode (%s): its role's services are held", a.nodeName(), why)
	}
	var specs []verifier.Spec
	for _, s := range a.probeSpecs(pw, timeout) {
		if service == "" || strings.HasPrefix(s.Name, service) {
			specs = append(specs, s)
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("no probe of %s starts with %q", a.nodeName(), service)
	}
	results, logs := runProbes(ctx, specs)
	results, _ = a.reprobeAfterReloads(ctx, specs, results, logs)
	node := a.nodeName()
	out := make([]store.StoredResult, 0, len(results))
	for _, r := range results {
		sr := storedResult(node, r)
		if err := a.store.PutResult(sr); err != nil {
			a.log.Error("store probe result", "probe", r.Name, "err", err)
		}
		out = append(out, sr)
	}
	return out, nil
}

// VerifyNode runs node's probes now: this node's here, the peer's by asking
// its agent over the peer link (which stores them too).
func (a *Agent) VerifyNode(ctx context.Context, node, service string) ([]store.StoredResult, error) {
	if node == "" || node == a.nodeName() {
		return a.VerifyNow(ctx, service)
	}
	a.mu.Lock()
	peerName, timeout := "", a.conf().Verifier.Timeout.Duration
	if a.cluster != nil {
		peerName = a.cluster.PeerName
	}
	peerProto := 0
	if a.lnk().Peer() != nil {
		peerProto = a.lnk().Peer().Protocol
	}
	a.mu.Unlock()
	if node != peerName {
		return nil, fmt.Errorf("no node %q in this cluster (this node is %s, its peer %q)", node, a.nodeName(), peerName)
	}
	if need := peer.VersionOf(peer.TypeVerifyRequest); peerProto > 0 && peerProto < need {
		return nil, fmt.Errorf("%s's agent speaks peer protocol %d; a run on request needs %d: update sentry there (its scheduled results: sentry verify --node %s --last)", node, peerProto, need, node)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	vr, err := a.peerClient().Verify(ctx, peer.VerifyRequest{Service: service})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node, err)
	}
	if vr.Error != "" {
		return nil, fmt.Errorf("%s: %s", node, vr.Error)
	}
	a.mu.Lock()
	vr.Results = a.admitPeerResultsLocked(node, vr.Results) // the peer's probe names are capped
	a.mu.Unlock()
	for i := range vr.Results {
		vr.Results[i].Values = boundValues(vr.Results[i].Values)
		r := vr.Results[i]
		if err := a.store.PutResult(r); err != nil {
			a.log.Error("store peer result", "probe", r.Probe, "err", err)
		}
	}
	return vr.Results, nil
}

// handleVerifyRun is the peer's side of VerifyNode.
func (a *Agent) handleVerifyRun(w http.ResponseWriter, r *http.Request) {
	env, err := peer.Read(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
	if err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	req, err := env.VerifyRequest()
	if err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	a.mu.Lock()
	timeout := a.conf().Verifier.Timeout.Duration
	a.mu.Unlock()
	// A run lasts up to one probe deadline: longer than the peer API's
	// usual write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + 10*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), timeout+5*time.Second)
	defer cancel()
	res, err := a.VerifyNow(ctx, req.Service)
	out := peer.VerifyResults{Results: res}
	if err != nil {
		out.Error = err.Error()
	}
	if len(out.Results) > peer.MaxProbes { // what the peer takes
		out.Results = out.Results[:peer.MaxProbes]
	}
	if out.Results == nil {
		out.Results = []store.StoredResult{}
	}
	writeEnvelope(w, http.StatusOK, peer.TypeVerifyResults, a.nodeName(), out)
}

// noticesLocked hands alert notices to the dispatcher (journal at once,
// mail in the background) and records them as events.
func (a *Agent) noticesLocked(ns []alert.Notice) {
	if len(ns) == 0 {
		return
	}
	for _, n := range ns {
		a.event("alert-"+string(n.Kind), n.Node, n.Text(), map[string]string{"probe": n.Probe, "phase": n.Phase, "failures": fmt.Sprint(n.Failures)})
	}
	if a.dispatch != nil {
		a.dispatch.Notify(ns...)
	}
}

func (a *Agent) saveAlertStateLocked() {
	b, err := a.alerts.Marshal()
	if err == nil {
		err = a.store.PutAlertState(b)
	}
	if err != nil {
		a.log.Error("alert state", "err", err)
	}
}

// maxProbeLog bounds one probe's kept log.
const maxProbeLog = 64 << 10

// limitWriter keeps the first n bytes written to it.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	l.w.Write(q)
	return len(p), nil
}

// storedResult is a probe result as the store keeps it.
func storedResult(node string, r verifier.Result) store.StoredResult {
	phase, msg := alert.FailedPhase(r)
	if msg == "" {
		msg = r.Message
	}
	sr := store.StoredResult{Node: node, Probe: r.Name, Kind: r.Kind, Start: r.Started, DurationMS: r.Duration.Milliseconds(),
		OK: r.OK, Message: msg, FailedPhase: phase, Values: boundValues(r.Values)}
	for _, p := range r.Phases {
		sr.Phases = append(sr.Phases, store.PhaseTiming{Name: p.Name, MS: p.Duration.Milliseconds(), OK: p.Error == "", Error: p.Error})
	}
	return sr
}

// Bounds of the measured values a stored result keeps (this node's, and
// the peer's as it sent them): a few short numbers, not a log.
const (
	maxValues     = 32
	maxValueKey   = 64
	maxValueBytes = 256
)

// boundValues is vals within those bounds: at most maxValues of them (the
// first by key), keys too long left out, values cut; nil when none.
func boundValues(vals map[string]string) map[string]string {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		if k != "" && len(k) <= maxValueKey {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	if len(keys) > maxValues {
		keys = keys[:maxValues]
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v := vals[k]
		if len(v) > maxValueBytes {
			v = strings.ToValidUTF8(v[:maxValueBytes], "")
		}
		out[k] = v
	}
	return out
}

// latestResultsLocked is this node's newest results, for hello.
func (a *Agent) latestResultsLocked() []store.StoredResult {
	var out []store.StoredResult
	node := a.nodeName()
	for _, r := range a.verify.last {
		out = append(out, storedResult(node, r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Probe < out[j].Probe })
	return out
}

// notePeerResultsLocked stores the results the peer sent that are new.
func (a *Agent) notePeerResultsLocked(h *peer.NodeStatus) {
	if a.peerSeen == nil {
		a.peerSeen = map[string]time.Time{}
	}
	for _, r := range h.Results {
		if r.Node != h.Name || r.Probe == "" {
			continue
		}
		if seen, ok := a.peerSeen[r.Probe]; ok && !r.Start.After(seen) {
			continue
		}
		a.peerSeen[r.Probe] = r.Start
		r.Values = boundValues(r.Values)
		if err := a.store.PutResult(r); err != nil {
			a.log.Error("store peer result", "probe", r.Probe, "err", err)
			return
		}
	}
}

// ProbeDebug is one probe's last scheduled run with its own log.
type ProbeDebug struct {
	Result verifier.Result `json:"result"`
	Log    string          `json:"log"`
}

// Debug returns the last scheduled run of probe name, with its log.
func (a *Agent) Debug(name string) (*ProbeDebug, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.verify.last[name]
	if !ok {
		var names []string
		for n := range a.verify.last {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, errors.New("no scheduled probe run yet (the agent runs them once the node is paired and `sentry verifier setup` ran)")
		}
		return nil, fmt.Errorf("no probe %q ran (probes: %s)", name, strings.Join(names, ", "))
	}
	return &ProbeDebug{Result: r, Log: a.verify.logs[name]}, nil
}

// verifySummaryLocked says, for hello and status, how this node's probes
// stand: "15/15 green" or the red ones with their messages.
func (a *Agent) verifySummaryLocked() (summary string, red []string) {
	v := &a.verify
	if len(v.last) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(v.last))
	for n := range v.last {
		names = append(names, n)
	}
	sort.Strings(names)
	green := 0
	for _, n := range names {
		if v.red[n] {
			red = append(red, n+": "+v.last[n].Message)
		} else {
			green++
		}
	}
	return fmt.Sprintf("%d/%d green, round %d ms at %s", green, len(names), v.roundMS, v.round.UTC().Format(time.RFC3339)), red
}

// VerifyResults are the newest results of this node's probes.
func (a *Agent) VerifyResults() []verifier.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []verifier.Result
	for _, r := range a.verify.last {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func deriveCanary(key string) (string, bool) {
	s, err := synchronizer.NewSecrets(strings.TrimSpace(key))
	if err != nil {
		return "", false
	}
	return s.MAC([]byte("sentry canary password"))[:32], true
}

package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/alert"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// event is one event to record once the schedule's lock is released.
type event struct {
	kind, node, msg string
	fields          map[string]string
}

// runRound runs this node's probe set once, as the schedule does: the
// results are stored, become the status and its events, and feed the
// alerts.
func (s *Schedule) runRound(ctx context.Context, pw string, timeout time.Duration) {
	start := time.Now()
	specs := s.d.Specs(pw, timeout)
	results, logs := s.runProbes(ctx, specs)
	results, logs = s.reprobeAfterReloads(ctx, specs, results, logs)
	if ctx.Err() != nil {
		// Cut short (the agent stopping): the probes still running were
		// stopped, not failed. Nothing of the round is kept, logged or
		// counted: a stop in the middle of a round made red probes with
		// "no answer within" their deadline (chaos seed 43 step 18).
		s.d.Log.Debug("round cut short: not kept", "err", context.Cause(ctx))
		return
	}
	s.store(results) // one transaction
	node := s.node()
	var evs []event
	var notices []alert.Notice
	quiet := s.quiet()
	s.mu.Lock()
	s.logs = logs
	s.round, s.roundMS = start, time.Since(start).Milliseconds()
	// Probes no longer in the set (a module changed) leave the summary.
	current := map[string]bool{}
	for _, r := range results {
		current[r.Name] = true
	}
	for name := range s.last {
		if !current[name] {
			delete(s.last, name)
			delete(s.fails, name)
			delete(s.red, name)
		}
	}
	for _, r := range results {
		s.last[r.Name] = r
		// Status and events follow each result at once ("red" is the
		// last run failed); alerts by mail wait for the hysteresis.
		if r.OK {
			s.fails[r.Name] = 0
			if s.red[r.Name] {
				s.red[r.Name] = false
				s.d.Log.Info("probe green again", "probe", r.Name)
				evs = append(evs, event{"probe-green", node, fmt.Sprintf("%s on %s works again", r.Name, node), map[string]string{"probe": r.Name}})
			}
		} else {
			s.fails[r.Name]++
			if s.fails[r.Name] == failAfter && !s.red[r.Name] {
				s.red[r.Name] = true
				s.d.Log.Error("probe red", "probe", r.Name, "failures", s.fails[r.Name], "err", r.Message)
				evs = append(evs, event{"probe-red", node, fmt.Sprintf("%s on %s fails: %s", r.Name, node, r.Message), map[string]string{"probe": r.Name}})
			}
		}
		if quiet != "" {
			continue
		}
		ns := s.alerts.ObserveResult(node, r)
		for _, n := range ns {
			evs = append(evs, event{"alert-" + string(n.Kind), n.Node, n.Text(), map[string]string{"probe": n.Probe, "phase": n.Phase, "failures": fmt.Sprint(n.Failures)}})
		}
		notices = append(notices, ns...)
	}
	s.mu.Unlock()
	for _, e := range evs {
		s.d.Event(e.kind, e.node, e.msg, e.fields)
	}
	// The journal at once, mail in the background.
	if len(notices) > 0 {
		s.dispatch.Notify(notices...)
	}
	s.saveAlertState()
	if s.d.Rounded != nil {
		s.d.Rounded()
	}
}

// saveAlertState stores the alert state when it changed since it was
// last stored (or read): the round and the verdict's observation after it
// each save it, and in a quiet week it does not change at all.
func (s *Schedule) saveAlertState() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	b, err := s.alerts.Marshal()
	if err == nil && bytes.Equal(b, s.savedAlerts) {
		return
	}
	if err == nil {
		err = s.d.Store.PutAlertState(b)
	}
	if err != nil {
		s.d.Log.Error("alert state", "err", err)
		return
	}
	s.savedAlerts = b
}

// reprobeAfterReloads runs again the failed probes that the sync's own
// reload of a unit of their module disturbed (see reprobe).
func (s *Schedule) reprobeAfterReloads(ctx context.Context, specs []verifier.Spec, results []verifier.Result, logs map[string]string) ([]verifier.Result, map[string]string) {
	if s.d.Reloads == nil {
		return results, logs
	}
	var deps map[string][]string
	if s.d.ProbeUnits != nil {
		deps = s.d.ProbeUnits()
	}
	disturbed := func(r verifier.Result) []string {
		var d []string
		if deps != nil {
			d = deps[r.Name]
			if d == nil {
				return nil // a probe of no module's units
			}
		}
		return s.d.Reloads.Disturbed(r.Started, r.Started.Add(r.Duration), d)
	}
	settle := func(ctx context.Context, units []string) error {
		if err := s.d.Reloads.WaitIdle(ctx, 2*time.Minute); err != nil {
			return err
		}
		var real []string
		for _, u := range units {
			if u != SyncUnderWay {
				real = append(real, u)
			}
		}
		return synchronizer.WaitSettled(ctx, real, synchronizer.DefaultSettle)
	}
	out, logs := reprobe(ctx, specs, results, logs, disturbed, settle, s.runProbes)
	for _, r := range out {
		if why := r.Values["reprobed"]; why != "" {
			s.d.Log.Info("probe run again after the sync's reload", "probe", r.Name, "ok", r.OK, "why", why)
		}
	}
	return out, logs
}

// reprobe runs again, once, each failed probe that the sync's reload of a
// unit it depends on disturbed, after waiting for those units to settle.
// The second run is the result: a reload that really broke the service
// fails it again and stays red; its value "reprobed" says why it ran
// twice. settle's error does not stop the second run.
func reprobe(ctx context.Context, specs []verifier.Spec, results []verifier.Result, logs map[string]string,
	disturbed func(verifier.Result) []string, settle func(context.Context, []string) error,
	run func(context.Context, []verifier.Spec) ([]verifier.Result, map[string]string)) ([]verifier.Result, map[string]string) {
	byName := map[string]verifier.Spec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	var again []verifier.Spec
	why := map[string]string{}
	var units []string
	for _, r := range results {
		if r.OK {
			continue
		}
		s, ok := byName[r.Name]
		if !ok {
			continue
		}
		us := disturbed(r)
		if len(us) == 0 {
			continue
		}
		again = append(again, s)
		why[r.Name] = fmt.Sprintf("the first run failed during the sync's reload of %s (%s); run again once it settled", strings.Join(us, ", "), r.Message)
		for _, u := range us {
			if !slices.Contains(units, u) {
				units = append(units, u)
			}
		}
	}
	if len(again) == 0 {
		return results, logs
	}
	settleErr := settle(ctx, units)
	second, secondLogs := run(ctx, again)
	out := slices.Clone(results)
	for _, r2 := range second {
		if r2.Values == nil {
			r2.Values = map[string]string{}
		}
		r2.Values["reprobed"] = why[r2.Name]
		if settleErr != nil {
			r2.Values["reprobed"] += " (settle: " + settleErr.Error() + ")"
		}
		for i := range out {
			if out[i].Name == r2.Name {
				out[i] = r2
			}
		}
		if logs != nil {
			logs[r2.Name] = logs[r2.Name] + "--- run again after the sync's reload ---\n" + secondLogs[r2.Name]
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

// Run is the answer to a run on request of this node's probes.
type Run struct {
	Results []verifier.Result `json:"results"`
	// AdHoc: run with parameters other than the schedule's (a deadline of
	// its own): not stored, not the schedule's results.
	AdHoc bool `json:"ad_hoc,omitempty"`
}

// RunNow runs this node's probes now, with the schedule's settings (its
// deadline, its modules' probe set, the canary password): those whose
// name starts with service, or all. The results are stored as a scheduled
// round's are. A timeout other than 0 and the schedule's makes the run ad
// hoc: its results are returned, not stored.
func (s *Schedule) RunNow(ctx context.Context, service string, timeout time.Duration) (*Run, error) {
	sched := s.d.Conf().Verifier.Timeout.Duration
	adHoc := timeout > 0 && timeout != sched
	if !adHoc {
		timeout = sched
	}
	specs, err := s.chosen(service, timeout)
	if err != nil {
		return nil, err
	}
	results, logs := s.runProbes(ctx, specs)
	if adHoc {
		return &Run{Results: results, AdHoc: true}, nil
	}
	results, _ = s.reprobeAfterReloads(ctx, specs, results, logs)
	if err := context.Cause(ctx); err != nil {
		// The caller gone or the agent stopping: as runRound, nothing of
		// a run cut short is stored.
		return nil, fmt.Errorf("the run was cut short: %w", err)
	}
	s.store(results)
	return &Run{Results: results}, nil
}

// VerifyNow runs this node's probes now (those whose name starts with
// service, or all), stores the results and returns them.
func (s *Schedule) VerifyNow(ctx context.Context, service string) ([]store.StoredResult, error) {
	run, err := s.RunNow(ctx, service, 0)
	if err != nil {
		return nil, err
	}
	node := s.node()
	out := make([]store.StoredResult, 0, len(run.Results))
	for _, r := range run.Results {
		out = append(out, storedResult(node, r))
	}
	return out, nil
}

// chosen are the probes of this node whose name starts with service.
func (s *Schedule) chosen(service string, timeout time.Duration) ([]verifier.Spec, error) {
	pw, ok := s.d.Password()
	if !ok {
		return nil, errors.New("no cluster key on this node: pair it first (the canary password comes from it)")
	}
	node := s.node()
	if why := s.d.SafeMode(); why != "" {
		return nil, fmt.Errorf("%s is in safe mode (%s): its role's services are held", node, why)
	}
	var specs []verifier.Spec
	for _, sp := range s.d.Specs(pw, timeout) {
		if service == "" || strings.HasPrefix(sp.Name, service) {
			specs = append(specs, sp)
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("no probe of %s starts with %q", node, service)
	}
	return specs, nil
}

// store stores this node's results.
func (s *Schedule) store(results []verifier.Result) {
	node := s.node()
	rs := make([]store.StoredResult, len(results))
	for i, r := range results {
		rs[i] = storedResult(node, r)
	}
	// The peer's results that came since the last round go in the same
	// write.
	if err := s.d.Store.PutResults(append(rs, s.takePeerHeld()...)...); err != nil {
		s.d.Log.Error("store probe results", "err", err)
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

// Observe feeds one observation of something that is not a probe (the
// readiness verdict, as probe "readiness") through the alert path the
// probes use: the same hysteresis, the same events and senders, the same
// stored state. The caller observes once per verifier round, so that the
// hysteresis counts rounds.
func (s *Schedule) Observe(node, name string, ok bool, phase, msg string, at time.Time) {
	if s.quiet() != "" {
		return
	}
	ns := s.alerts.ObservePhase(node, name, ok, phase, msg, at)
	for _, n := range ns {
		s.d.Event("alert-"+string(n.Kind), n.Node, n.Text(), map[string]string{"probe": n.Probe, "phase": n.Phase, "failures": fmt.Sprint(n.Failures)})
	}
	if len(ns) > 0 {
		s.dispatch.Notify(ns...)
	}
	s.saveAlertState()
}

// quiet says why alerts are held now ("": they are not), and records the
// start and the end of each hold as an event.
func (s *Schedule) quiet() string {
	var why string
	if s.d.Quiet != nil {
		why = s.d.Quiet()
	}
	s.mu.Lock()
	was := s.held
	s.held = why
	s.mu.Unlock()
	switch {
	case why != "" && was == "":
		s.d.Event("alerts-held", s.node(), "alerts held: "+why, nil)
	case why == "" && was != "":
		s.d.Event("alerts-resumed", s.node(), "alerts resumed (were held: "+was+")", nil)
	}
	return why
}

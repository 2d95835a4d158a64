package schedule

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// testBed is one schedule with a real store and a prober the test steers.
type testBed struct {
	s      *Schedule
	st     *store.Store
	mu     sync.Mutex
	ok     map[string]bool // by probe: the next run passes
	ran    []verifier.Spec
	events []string // kind: message
	pw     string
	quiet  string // why alerts are held
}

func newTestBed(t *testing.T, node, peerName string, probes ...string) *testBed {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	cfg.Node.Name, cfg.Node.StateDir = node, dir
	cfg.Verifier.Timeout.Duration = 7 * time.Second
	b := &testBed{st: st, ok: map[string]bool{}, pw: "canary-pw"}
	for _, p := range probes {
		b.ok[p] = true
	}
	prober := func(_ context.Context, specs []verifier.Spec) ([]verifier.Result, map[string]string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		var out []verifier.Result
		logs := map[string]string{}
		for _, sp := range specs {
			b.ran = append(b.ran, sp)
			r := verifier.Result{Name: sp.Name, Kind: sp.Kind, OK: b.ok[sp.Name], Started: time.Now().UTC(), Duration: 120 * time.Millisecond,
				Phases: []verifier.Phase{{Name: "smtp submit", Duration: 40 * time.Millisecond}, {Name: "canary visible", Duration: 80 * time.Millisecond}},
				Values: map[string]string{"latency_ms": "87"}}
			if !r.OK {
				r.Phases[1].Error = "not visible"
				r.Message = "canary visible: not visible"
			}
			out = append(out, r)
			logs[sp.Name] = "level=DEBUG msg=" + sp.Name + "\n"
		}
		return out, logs
	}
	s, err := New(Deps{
		Conf:  func() *config.Config { return &cfg },
		Store: st,
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Event: func(kind, node, msg string, fields map[string]string) {
			b.mu.Lock()
			b.events = append(b.events, kind+": "+msg)
			b.mu.Unlock()
		},
		Node:     func() string { return node },
		Quiet:    func() string { b.mu.Lock(); defer b.mu.Unlock(); return b.quiet },
		PeerName: func() string { return peerName },
		SafeMode: func() string { return "" },
		Password: func() (string, bool) { return b.pw, b.pw != "" },
		Specs: func(pw string, timeout time.Duration) []verifier.Spec {
			var out []verifier.Spec
			for _, p := range probes {
				out = append(out, verifier.Spec{Name: p, Kind: "mail", Timeout: timeout})
			}
			return out
		},
	}, WithProber(prober), WithSenders())
	if err != nil {
		t.Fatal(err)
	}
	b.s = s
	return b
}

// A result's values reach the store of this node and, with the status
// the peer receives, the peer's; `sentry verify --node N --last` and
// --debug read them there.
func TestResultValuesReachThePeer(t *testing.T) {
	s := newTestBed(t, "node-s", "node-p", "mail")
	p := newTestBed(t, "node-p", "node-s", "mail")
	s.s.runRound(context.Background(), "canary-pw", time.Second)

	var h peer.NodeStatus
	h.Name, h.Protocol = "node-s", peer.ProtocolVersion
	s.s.FillStatus(&h)
	if !strings.HasPrefix(h.Verify, "1/1 green, round ") || len(h.VerifyRed) != 0 || len(h.Results) != 1 {
		t.Fatalf("status: %q %v %d results", h.Verify, h.VerifyRed, len(h.Results))
	}
	p.s.NotePeer(&h)
	// The peer's results wait for p's round, whose store write takes them
	// along.
	if m, err := p.st.LatestResults("node-s"); err != nil || len(m) != 0 {
		t.Errorf("the peer's results were written before p's round: %+v, %v", m, err)
	}
	stored := func(b *testBed) {
		t.Helper()
		m, err := b.st.LatestResults("node-s")
		if err != nil || len(m) != 1 || m["mail"].Values["latency_ms"] != "87" || len(m["mail"].Phases) != 2 {
			t.Errorf("stored results of node-s: %+v, %v", m, err)
		}
	}
	stored(s)
	d, err := s.s.Debug("mail")
	if err != nil || d.Result.Values["latency_ms"] != "87" || !strings.Contains(d.Log, "msg=mail") {
		t.Errorf("debug %+v, %v", d, err)
	}
	if _, err := s.s.Debug("web"); err == nil || err.Error() != `no probe "web" ran (probes: mail)` {
		t.Errorf("debug of a probe that did not run: %v", err)
	}
	if _, err := p.s.Debug("mail"); err == nil || !strings.HasPrefix(err.Error(), "no scheduled probe run yet") {
		t.Errorf("debug before any round: %v", err)
	}
	p.s.runRound(context.Background(), "canary-pw", time.Second)
	stored(p)
}

// A probe that fails turns red at once (an event), green again on its
// first success; the alert follows its own hysteresis ([alert] fail_after
// 2 by default).
func TestRoundEvents(t *testing.T) {
	b := newTestBed(t, "node-s", "node-p", "mail", "web")
	ctx := context.Background()
	b.ok["mail"] = false
	b.s.runRound(ctx, "pw", time.Second)
	b.s.runRound(ctx, "pw", time.Second)
	b.ok["mail"] = true
	b.s.runRound(ctx, "pw", time.Second)
	want := []string{
		"probe-red: mail on node-s fails: canary visible: not visible",
		"alert-firing: ",
		"probe-green: mail on node-s works again",
	}
	if len(b.events) < 3 || b.events[0] != want[0] || !strings.HasPrefix(b.events[1], want[1]) || b.events[2] != want[2] {
		t.Errorf("events:\n%s", strings.Join(b.events, "\n"))
	}
	st, err := b.st.AlertState()
	if err != nil || len(st) == 0 {
		t.Errorf("alert state not saved: %q %v", st, err)
	}
}

// TestAlertsHeldDuringPlannedSwap: while Quiet says a planned swap is
// under way, failing rounds and a NOT READY verdict raise no alert (the
// status and the red/green events still follow each result); after it,
// the hysteresis counts afresh: two more failing rounds fire.
func TestAlertsHeldDuringPlannedSwap(t *testing.T) {
	b := newTestBed(t, "node-s", "node-p", "mail")
	ctx := context.Background()
	b.quiet = "planned swap plan-1 announced by node-p"
	b.ok["mail"] = false
	for i := 0; i < 3; i++ {
		b.s.runRound(ctx, "pw", time.Second)
		b.s.Observe("node-s", "readiness", false, "NOT READY", "peer: no contact", time.Now())
	}
	got := strings.Join(b.events, "\n")
	if strings.Contains(got, "alert-firing") || !strings.Contains(got, "alerts-held: alerts held: planned swap plan-1") || !strings.Contains(got, "probe-red") {
		t.Fatalf("events while held:\n%s", got)
	}
	b.mu.Lock()
	b.quiet = ""
	b.mu.Unlock()
	b.s.runRound(ctx, "pw", time.Second)
	if got := strings.Join(b.events, "\n"); strings.Contains(got, "alert-firing") || !strings.Contains(got, "alerts-resumed") {
		t.Fatalf("one failing round after the hold fired (or no resume):\n%s", got)
	}
	b.s.runRound(ctx, "pw", time.Second)
	if got := strings.Join(b.events, "\n"); !strings.Contains(got, "alert-firing: node-s mail") {
		t.Fatalf("two failing rounds after the hold did not fire:\n%s", got)
	}
}

// A run now uses the schedule's deadline and stores its results; one with
// a deadline of its own is ad hoc: returned, never stored, never the
// status.
func TestRunNow(t *testing.T) {
	b := newTestBed(t, "node-s", "node-p", "mail", "web")
	ctx := context.Background()
	run, err := b.s.RunNow(ctx, "mail", 0)
	if err != nil || run.AdHoc || len(run.Results) != 1 || b.ran[0].Timeout != 7*time.Second {
		t.Fatalf("run now: %+v %v (ran %+v)", run, err, b.ran)
	}
	if m, _ := b.st.LatestResults("node-s"); len(m) != 1 {
		t.Errorf("stored after a run now: %v", m)
	}
	run, err = b.s.RunNow(ctx, "web", 3*time.Second)
	if err != nil || !run.AdHoc || len(run.Results) != 1 || b.ran[1].Timeout != 3*time.Second {
		t.Fatalf("ad hoc run: %+v %v", run, err)
	}
	if m, _ := b.st.LatestResults("node-s"); len(m) != 1 || m["web"].Probe != "" {
		t.Errorf("an ad hoc run was stored: %v", m)
	}
	if run, err := b.s.RunNow(ctx, "web", 7*time.Second); err != nil || run.AdHoc {
		t.Errorf("the schedule's own deadline given: %+v %v", run, err)
	}
	if len(b.s.Results()) != 0 {
		t.Errorf("runs now changed the schedule's results: %v", b.s.Results())
	}
	if _, err := b.s.RunNow(ctx, "nosuch", 0); err == nil || err.Error() != `no probe of node-s starts with "nosuch"` {
		t.Errorf("no such probe: %v", err)
	}
	b.pw = ""
	if _, err := b.s.RunNow(ctx, "", 0); err == nil || !strings.Contains(err.Error(), "pair it first") {
		t.Errorf("without the cluster key: %v", err)
	}
}

// Asking for a node that is neither this one nor its peer is refused
// before anything runs.
func TestVerifyNodeUnknown(t *testing.T) {
	b := newTestBed(t, "node-s", "node-p", "mail")
	_, err := b.s.VerifyNode(context.Background(), "node-x", "")
	if err == nil || err.Error() != `no node "node-x" in this cluster (this node is node-s, its peer "node-p")` {
		t.Errorf("%v", err)
	}
}

// The first verifier round waits for systemd's boot jobs: it goes on when
// the state leaves "starting", or at the limit, or at once without systemd.
func TestWaitBootSettled(t *testing.T) {
	calls := 0
	s := &Schedule{systemState: func(context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "starting", nil
		}
		return "degraded", nil
	}}
	if st := s.waitBootSettled(context.Background(), time.Minute); st != "degraded" || calls != 3 {
		t.Errorf("settled: state %q after %d calls, want degraded after 3", st, calls)
	}

	s.systemState = func(context.Context) (string, error) { return "starting", nil }
	if st := s.waitBootSettled(context.Background(), 600*time.Millisecond); st != "starting" {
		t.Errorf("at the limit: %q", st)
	}

	calls = 0
	s.systemState = func(context.Context) (string, error) { calls++; return "", errors.New("no system bus") }
	if st := s.waitBootSettled(context.Background(), time.Minute); st != "" || calls != 1 {
		t.Errorf("without systemd: %q after %d calls", st, calls)
	}
}

// The canary password is one derivation of the cluster key, whichever way
// the key comes.
func TestCanaryPassword(t *testing.T) {
	key, err := synchronizer.NewClusterKey()
	if err != nil {
		t.Skip(err)
	}
	sec, err := synchronizer.NewSecrets(key)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := CanaryPassword(key + "\n")
	if err != nil || pw != CanaryPasswordOf(sec) || len(pw) != 32 {
		t.Errorf("password %q %v, from the secrets %q", pw, err, CanaryPasswordOf(sec))
	}
	if _, err := ReadCanaryPassword(t.TempDir()); err == nil || !strings.Contains(err.Error(), "(pair the nodes first)") {
		t.Errorf("without a key: %v", err)
	}
}

// Rounds, runs now, the status for the hello, the peer's results and the
// debug view go on side by side (under -race: each behind the schedule's
// own lock, none held across the store).
func TestConcurrentUse(t *testing.T) {
	s := newTestBed(t, "node-s", "node-p", "mail", "web")
	p := newTestBed(t, "node-p", "node-s", "mail", "web")
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				switch i {
				case 0:
					s.s.runRound(ctx, "pw", time.Second)
				case 1:
					s.s.RunNow(ctx, "", 0)
				case 2:
					var h peer.NodeStatus
					h.Name = "node-s"
					s.s.FillStatus(&h)
					p.s.NotePeer(&h)
				case 3:
					s.s.Debug("mail")
					s.s.Results()
				}
			}
		}()
	}
	wg.Wait()
	var h peer.NodeStatus
	h.Name = "node-s"
	s.s.FillStatus(&h)
	p.s.NotePeer(&h)
	p.s.FlushPeerResults()
	if m, err := p.st.LatestResults("node-s"); err != nil || len(m) == 0 {
		t.Errorf("the peer stored %v, %v", m, err)
	}
}

// The alert state is stored when it changed, not after every round and
// observation (each a durable write).
func TestAlertStateStoredOnChange(t *testing.T) {
	b := newTestBed(t, "node-s", "node-p", "mail")
	ctx := context.Background()
	b.s.runRound(ctx, "pw", time.Second)
	b.s.Observe("node-s", "readiness", true, "", "", time.Now())
	if st, err := b.st.AlertState(); err != nil || len(st) == 0 {
		t.Fatalf("alert state not saved: %q %v", st, err)
	}
	// A mark the schedule would overwrite, were it to write again.
	if err := b.st.PutAlertState([]byte("mark")); err != nil {
		t.Fatal(err)
	}
	b.s.runRound(ctx, "pw", time.Second)
	b.s.Observe("node-s", "readiness", true, "", "", time.Now())
	if st, _ := b.st.AlertState(); string(st) != "mark" {
		t.Errorf("an unchanged alert state was written again: %q", st)
	}
	b.ok["mail"] = false
	b.s.runRound(ctx, "pw", time.Second)
	if st, _ := b.st.AlertState(); string(st) == "mark" {
		t.Error("a changed alert state (a failure) was not written")
	}
}

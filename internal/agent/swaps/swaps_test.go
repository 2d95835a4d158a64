package swaps

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/disks"
	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/garp"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/verifier"
)

// fixture is one node's world as the component sees it.
type fixture struct {
	mu        sync.Mutex
	st        *store.Store
	boot      *bootcheck.Result
	results   []verifier.Result
	reachable bool
	last      time.Time
	verdict   readiness.Result
	events    []string
	announced []string
	self      peer.NodeStatus
	peer      *peer.NodeStatus
}

func newFixture(t *testing.T) *fixture {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{st: st, verdict: readiness.Result{Verdict: readiness.Ready, At: time.Now()},
		self: peer.NodeStatus{Name: "node-p", Role: "primary", DiskSet: "P", Hardware: "b", HomeHardware: "a"}}
}

func (f *fixture) swaps(last time.Time, boot time.Time) *Swaps {
	return New(Deps{Store: f.st, LastContact: last,
		Event: func(kind, node, msg string, _ map[string]string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.events = append(f.events, kind+": "+msg)
		},
		Boot: func() *bootcheck.Result { return f.boot },
		Self: func() peer.NodeStatus { return f.self },
		Peer: func() (*peer.NodeStatus, bool, time.Time) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.peer, f.reachable, f.last
		},
		Results: func() []verifier.Result {
			f.mu.Lock()
			defer f.mu.Unlock()
			return append([]verifier.Result(nil), f.results...)
		},
		Expected: func() []string { return []string{"web", "mail"} },
		Verdict:  func() readiness.Result { f.mu.Lock(); defer f.mu.Unlock(); return f.verdict },
	},
		WithBootTime(func() (time.Time, error) { return boot, nil }),
		WithAddresses(func() ([]garp.Address, error) {
			return []garp.Address{{Interface: "eth0", MAC: "02:00:00:00:0b:01", Prefix: netip.MustParsePrefix("192.0.2.10/24")}}, nil
		}),
		WithAnnounce(func(_ context.Context, ifname string, ip netip.Addr) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.announced = append(f.announced, ifname+" "+ip.String())
			return nil
		}),
		WithDisks(func() (*disks.Set, error) { return &disks.Set{Note: "no block devices (a container)"}, nil }),
	)
}

// waitAnnounced waits for the announcement goroutines.
func (f *fixture) waitAnnounced(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		f.mu.Lock()
		got := len(f.announced)
		f.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("announced %v, want %d", f.announced, n)
}

// TestRecordOfAFailover: a boot of the primary's disk set on the other
// machine starts a record with the plan made before it, the boot check's
// decision and stages; the address seen up is announced once and timed;
// each expected service green after the boot, the peer back and the
// verdict complete it (an event with the downtime); a restart of the agent
// in the same boot takes the stored record up again instead of a new one.
func TestRecordOfAFailover(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)
	lastContact, boot := t0, t0.Add(40*time.Second)
	// The plan, made on P before the shutdown.
	f.boot = &bootcheck.Result{Outcome: bootcheck.Primary, Hardware: "a", PreviousHardware: "a", HomeHardware: "a", DiskSet: "P"}
	s := f.swaps(lastContact, boot)
	s.Begin()
	if s.Current() != nil {
		t.Fatal("a record for a boot on the same machine")
	}
	plan, err := s.Plan(context.Background(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.DisksNote == "" || plan.Verdict != "READY" {
		t.Fatalf("plan: note %q verdict %q", plan.DisksNote, plan.Verdict)
	}

	// The boot on machine b.
	decided := boot.Add(3 * time.Second)
	f.boot = &bootcheck.Result{Outcome: bootcheck.Primary, Hardware: "b", PreviousHardware: "a", HomeHardware: "a", DiskSet: "P",
		Time: decided.Add(-800 * time.Millisecond), TookMS: 800, Reason: "the primary disk set on the home machine of node-s",
		Stages: []bootcheck.Stage{{Name: "stamp", MS: 2}, {Name: "probe", MS: 600}}}
	// The plan's time must be before the boot: move the fixture's boot.
	boot = time.Now().UTC().Add(time.Second)
	decided = boot.Add(3 * time.Second)
	f.boot.Time = decided.Add(-800 * time.Millisecond)
	s = f.swaps(lastContact, boot)
	s.Begin()
	rec := s.Current()
	if rec == nil || rec.Kind != failover.Kind("failover") || rec.PlanID != plan.ID || rec.FromMachine != "a" || rec.ToMachine != "b" || len(rec.Stages) != 2 {
		t.Fatalf("record: %+v", rec)
	}
	if !rec.Decision.Equal(decided) || !rec.Boot.Equal(boot) || !rec.LastPeerContact.Equal(lastContact) {
		t.Fatalf("record times: boot %s decision %s last %s", rec.Boot, rec.Decision, rec.LastPeerContact)
	}

	s.watchAddresses(context.Background())
	s.watchAddresses(context.Background()) // seen again: not announced again
	f.waitAnnounced(t, 1)
	up := decided.Add(time.Second)
	s.mu.Lock()
	s.firstUp = up // the fixture's clock
	s.mu.Unlock()
	s.update(up)
	if rec := s.Current(); rec.AddressUp.IsZero() || len(rec.Addresses) != 1 || rec.Complete {
		t.Fatalf("after the address: %+v", rec)
	}
	f.mu.Lock()
	if len(f.announced) != 1 || f.announced[0] != "eth0 192.0.2.10" {
		t.Fatalf("announced: %v", f.announced)
	}
	f.results = []verifier.Result{
		{Name: "web", OK: true, Started: up.Add(2 * time.Second), Duration: 100 * time.Millisecond},
		{Name: "mail", OK: false, Started: up.Add(2 * time.Second), Duration: time.Second},
	}
	f.mu.Unlock()
	s.update(up.Add(5 * time.Second))
	st := s.Status()
	if st.Record.Complete || !strings.Contains(strings.Join(st.Missing, ","), "mail") {
		t.Fatalf("with mail red: missing %v", st.Missing)
	}

	// A restart of the agent now: the same record goes on.
	s = f.swaps(lastContact, boot)
	s.Begin()
	if rec := s.Current(); rec == nil || rec.ID != st.Record.ID || rec.Services["web"].IsZero() {
		t.Fatalf("after a restart: %+v", rec)
	}
	s.mu.Lock()
	s.firstUp = up
	s.mu.Unlock()
	f.mu.Lock()
	f.results[1] = verifier.Result{Name: "mail", OK: true, Started: up.Add(8 * time.Second), Duration: time.Second}
	f.reachable, f.last = true, up.Add(20*time.Second)
	f.verdict = readiness.Result{Verdict: readiness.Ready, At: up.Add(21 * time.Second)}
	f.mu.Unlock()
	s.update(up.Add(22 * time.Second))
	st = s.Status()
	if !st.Record.Complete || st.Record.VerdictAfter != "READY" || st.Check != "" || len(st.Missing) != 0 {
		t.Fatalf("complete? %+v missing %v check %q", st.Record, st.Missing, st.Check)
	}
	if st.Downtime <= 0 {
		t.Fatalf("downtime %v", st.Downtime)
	}
	f.mu.Lock()
	events := strings.Join(f.events, "\n")
	f.mu.Unlock()
	if !strings.Contains(events, "failover-complete: failover record "+st.Record.ID+" complete") {
		t.Fatalf("events:\n%s", events)
	}
	if h := s.History(0); len(h) != 1 || !h[0].Complete {
		t.Fatalf("history: %+v", h)
	}
	// The first boot since pairing (no previous decision) away from home
	// is a failover from home too.
	first := *f.boot
	first.PreviousHardware, first.Failover, first.Time = "", true, first.Time.Add(time.Hour)
	f.boot = &first
	f2 := f.swaps(lastContact, boot)
	f2.begin()
	r := f2.Current()
	if r == nil || r.FromMachine != "a" || r.ID == rec.ID || r.Kind != failover.KindFailover {
		t.Fatalf("first boot since pairing: %+v", r)
	}
	// An address the boot check took before it decided counts from the
	// decision.
	f2.mu.Lock()
	f2.firstUp = r.Decision.Add(-200 * time.Millisecond)
	f2.mu.Unlock()
	f2.update(r.Decision.Add(time.Second))
	if got := f2.Current(); !got.AddressUp.Equal(r.Decision) {
		t.Fatalf("address up %s, want the decision %s", got.AddressUp, r.Decision)
	}
}

// TestPlanRefusedUnlessReady: over the local API a NOT READY verdict
// refuses the plan (409, the reason named); --force makes and stores it,
// forced; a planned plan measures the barrier.
func TestPlanRefusedUnlessReady(t *testing.T) {
	f := newFixture(t)
	f.verdict = readiness.Result{Verdict: readiness.NotReady, At: time.Now(),
		Findings: []readiness.Finding{{Check: "sync.applied", State: readiness.Fail, Reason: "node-s has not applied 1a2b3c", Severity: readiness.Block, Blocks: true}}}
	f.boot = &bootcheck.Result{Outcome: bootcheck.Primary, Hardware: "a", PreviousHardware: "a", HomeHardware: "a"}
	s := f.swaps(time.Now(), time.Now())
	mux := http.NewServeMux()
	s.Routes(mux)
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("POST", "/v1/failover/plan", strings.NewReader(body)))
		return w
	}
	if w := post(`{}`); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "sync.applied") {
		t.Fatalf("NOT READY: %d %s", w.Code, w.Body)
	}
	if docs, _ := f.st.FailoverDocs("plan", 0); len(docs) != 0 {
		t.Fatalf("a refused plan was stored: %s", docs)
	}
	w := post(`{"force":true}`)
	var p failover.Plan
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &p) != nil || !p.Forced {
		t.Fatalf("forced: %d %s", w.Code, w.Body)
	}
	if docs, _ := f.st.FailoverDocs("plan", 0); len(docs) != 1 {
		t.Fatalf("forced plan stored: %d", len(docs))
	}
	if w := post(`{"planned":`); w.Code != http.StatusBadRequest {
		t.Fatalf("bad body: %d", w.Code)
	}

	// The barrier: S has not applied P's head.
	f.verdict = readiness.Result{Verdict: readiness.Ready, At: time.Now()}
	now := time.Now()
	f.self.ConfigHead, f.self.InventoryTaken = "aaaaaaaaaaaaaaaa", now
	f.peer = &peer.NodeStatus{Name: "node-s", Role: "secondary", Hardware: "b", ConfigApplied: "bbbbbbbbbbbbbbbb", InventoryTaken: now}
	if _, err := s.Plan(context.Background(), true, false); err == nil || !strings.Contains(err.Error(), "node-s has applied bbbbbbbbbbbb") {
		t.Fatalf("planned with S behind: %v", err)
	}
	f.peer.ConfigApplied = f.self.ConfigHead
	p2, err := s.Plan(context.Background(), true, false)
	if err != nil || p2.Barrier == nil || !p2.Barrier.OK() || p2.PeerMachine != "b" {
		t.Fatalf("planned with S in step: %v %+v", err, p2)
	}
}

func TestBootTimeFrom(t *testing.T) {
	dir := t.TempDir()
	stat, pid1 := filepath.Join(dir, "stat"), filepath.Join(dir, "1-stat")
	os.WriteFile(stat, []byte("cpu  1 2 3\nbtime 1764720000\nprocesses 5\n"), 0o644)
	os.WriteFile(pid1, []byte("1 (systemd (x)) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12345 1000 100\n"), 0o644)
	got, err := bootTimeFrom(stat, pid1)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1764720000, 0).Add(123450 * time.Millisecond).UTC(); !got.Equal(want) {
		t.Fatalf("boot time %s, want %s", got, want)
	}
	os.WriteFile(pid1, []byte("1 (init) S 0"), 0o644)
	if _, err := bootTimeFrom(stat, pid1); err == nil || !strings.Contains(err.Error(), pid1) {
		t.Fatalf("short stat: %v", err)
	}
	os.WriteFile(stat, []byte("cpu 1\n"), 0o644)
	if _, err := bootTimeFrom(stat, pid1); err == nil || !strings.Contains(err.Error(), "no btime") {
		t.Fatalf("no btime: %v", err)
	}
}

// TestMaintenanceAnnounced: a planned plan makes this node announce a
// planned swap (for the hello) and hold its alerts; the peer's
// announcement holds them too; the swap's record completing ends it.
func TestMaintenanceAnnounced(t *testing.T) {
	f := newFixture(t)
	f.boot = &bootcheck.Result{Outcome: bootcheck.Primary, Hardware: "a", PreviousHardware: "a", HomeHardware: "a"}
	now := time.Now()
	f.self.ConfigHead, f.self.InventoryTaken = "aaaa", now
	f.peer = &peer.NodeStatus{Name: "node-s", Role: "secondary", Hardware: "b", ConfigApplied: "aaaa", InventoryTaken: now}
	s := f.swaps(now, now)
	s.Begin()
	if s.Maintenance() != nil || s.Quiet("node-s", nil) != "" {
		t.Fatal("maintenance without a plan")
	}
	if _, err := s.Plan(context.Background(), false, false); err != nil {
		t.Fatal(err)
	}
	if s.Maintenance() != nil {
		t.Fatal("an unplanned plan announced maintenance")
	}
	p, err := s.Plan(context.Background(), true, false)
	if err != nil {
		t.Fatal(err)
	}
	m := s.Maintenance()
	if m == nil || m.Plan != p.ID || !strings.Contains(s.Quiet("node-s", nil), p.ID) {
		t.Fatalf("planned: %+v, quiet %q", m, s.Quiet("node-s", nil))
	}
	// A restart before the swap takes it up again.
	s2 := f.swaps(now, now)
	s2.Begin()
	if m := s2.Maintenance(); m == nil || m.Plan != p.ID {
		t.Fatalf("after a restart: %+v", m)
	}
	// The peer's announcement holds the alerts of a node without a plan
	// of its own; an expired one does not.
	fresh := newFixture(t)
	fresh.boot = f.boot
	lone := fresh.swaps(now, now)
	if q := lone.Quiet("node-p", &peer.Maintenance{Plan: "plan-x", Until: time.Now().Add(time.Minute)}); !strings.Contains(q, "plan-x announced by node-p") {
		t.Fatalf("peer's maintenance: %q", q)
	}
	if q := lone.Quiet("node-p", &peer.Maintenance{Plan: "plan-x", Until: time.Now().Add(-time.Minute)}); q != "" {
		t.Fatalf("an expired announcement holds alerts: %q", q)
	}
	// The swap's record, complete, ends it.
	b, _ := json.Marshal(failover.Record{ID: "failover-x", Kind: failover.KindPlanned, PlanID: p.ID, Complete: true})
	if err := f.st.PutFailoverDoc("record", "failover-x", b); err != nil {
		t.Fatal(err)
	}
	s2.refreshMaintenance(time.Now())
	if m := s2.Maintenance(); m != nil {
		t.Fatalf("after the record completed: %+v", m)
	}
}

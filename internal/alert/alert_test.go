package alert

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/verifier"
)

// t0 is a fixed instant the tests count from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// step is one observation, a minute after the one before; want is the kind
// of notice it must raise ("" for none).
type step struct {
	ok   bool
	want Kind
}

func kinds(ns []Notice) []Kind {
	out := []Kind{}
	for _, n := range ns {
		out = append(out, n.Kind)
	}
	return out
}

// run feeds the steps to t for node-s/mail and checks each one's notices.
func run(t *testing.T, tr *Tracker, start time.Time, steps []step) []Notice {
	t.Helper()
	var all []Notice
	for i, s := range steps {
		ns := tr.ObservePhase("node-s", "mail", s.ok, "imap-fetch", fmt.Sprintf("failure %d", i), start.Add(time.Duration(i)*time.Minute))
		want := []Kind{}
		if s.want != "" {
			want = []Kind{s.want}
		}
		if got := kinds(ns); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (ok=%v): notices %v, want %v", i, s.ok, got, want)
		}
		all = append(all, ns...)
	}
	return all
}

const (
	F = false
	K = true
)

func TestHysteresis(t *testing.T) {
	cases := []struct {
		name   string
		policy Policy
		steps  []step
	}{
		{"fires after exactly 2", Policy{FailAfter: 2, ResolveAfter: 2}, []step{{F, ""}, {F, Firing}, {F, ""}, {F, ""}}},
		{"fires after exactly 3", Policy{FailAfter: 3, ResolveAfter: 1}, []step{{F, ""}, {F, ""}, {F, Firing}, {K, Resolved}}},
		{"1 fires at once", Policy{FailAfter: 1, ResolveAfter: 1}, []step{{F, Firing}, {K, Resolved}, {F, Firing}}},
		{"resolves after exactly 2", Policy{FailAfter: 2, ResolveAfter: 2}, []step{{F, ""}, {F, Firing}, {K, ""}, {K, Resolved}, {K, ""}}},
		{"resolves after exactly 3", Policy{FailAfter: 2, ResolveAfter: 3}, []step{{F, ""}, {F, Firing}, {K, ""}, {K, ""}, {K, Resolved}}},
		{"flapping never fires", Policy{FailAfter: 2, ResolveAfter: 2}, []step{{F, ""}, {K, ""}, {F, ""}, {K, ""}, {F, ""}, {K, ""}, {F, ""}}},
		{"flapping while firing does not resolve", Policy{FailAfter: 2, ResolveAfter: 2}, []step{{F, ""}, {F, Firing}, {K, ""}, {F, ""}, {K, ""}, {F, ""}, {K, ""}, {K, Resolved}}},
		{"fires again after resolving", Policy{FailAfter: 2, ResolveAfter: 1}, []step{{F, ""}, {F, Firing}, {K, Resolved}, {F, ""}, {F, Firing}}},
		{"zero policy means 2 and 2", Policy{}, []step{{F, ""}, {F, Firing}, {K, ""}, {K, Resolved}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run(t, NewTracker(c.policy), t0, c.steps)
		})
	}
}

func TestNoticeContents(t *testing.T) {
	tr := NewTracker(Policy{FailAfter: 3, ResolveAfter: 2})
	tr.ObservePhase("node-s", "mail", false, "smtp-send", "connection refused", t0)
	tr.ObservePhase("node-s", "mail", false, "imap-fetch", "timeout", t0.Add(time.Minute))
	// Another probe and another node keep states of their own.
	if ns := tr.Observe("node-p", "mail", false, "x", t0); len(ns) != 0 {
		t.Fatalf("node-p: %v", ns)
	}
	if ns := tr.Observe("node-s", "web", false, "x", t0); len(ns) != 0 {
		t.Fatalf("web: %v", ns)
	}
	ns := tr.ObservePhase("node-s", "mail", false, "imap-fetch", "canary not visible after 30s", t0.Add(2*time.Minute))
	if len(ns) != 1 {
		t.Fatalf("third failure raised %v", ns)
	}
	want := Notice{Kind: Firing, Node: "node-s", Probe: "mail", Phase: "imap-fetch", Message: "canary not visible after 30s",
		Since: t0, At: t0.Add(2 * time.Minute), Failures: 3}
	if ns[0] != want {
		t.Errorf("firing notice\n got %+v\nwant %+v", ns[0], want)
	}
	if got, w := ns[0].Text(), `node-s mail: phase "imap-fetch": canary not visible after 30s`; got != w {
		t.Errorf("Text() = %q, want %q", got, w)
	}
	if f := tr.Firing(); len(f) != 1 || f[0].Probe != "mail" || f[0].Node != "node-s" {
		t.Errorf("Firing() = %v", f)
	}
	tr.Observe("node-s", "mail", true, "", t0.Add(3*time.Minute))
	ns = tr.Observe("node-s", "mail", true, "", t0.Add(4*time.Minute))
	if len(ns) != 1 || ns[0].Kind != Resolved || ns[0].Failures != 3 || !ns[0].Since.Equal(t0) || ns[0].Text() != "node-s mail: works again" {
		t.Errorf("resolved notice %+v", ns)
	}
	if f := tr.Firing(); len(f) != 0 {
		t.Errorf("Firing() after resolve = %v", f)
	}
	if got := (Notice{Kind: Firing, Node: "n", Probe: "p", Message: "unknown probe kind"}).Text(); got != "n p: unknown probe kind" {
		t.Errorf("Text without a phase = %q", got)
	}
}

func TestReminder(t *testing.T) {
	tr := NewTracker(Policy{FailAfter: 2, ResolveAfter: 1, Reminder: time.Hour})
	tick := 10 * time.Minute
	var got []string
	for i := 0; i <= 14; i++ {
		at := t0.Add(time.Duration(i) * tick)
		for _, n := range tr.Observe("node-s", "web", false, "503", at) {
			got = append(got, fmt.Sprintf("%s@%s/%d", n.Kind, at.Sub(t0), n.Failures))
		}
	}
	// Fires at the second failure (10m); reminders an hour after the last
	// notice: 1h10m, 2h10m.
	want := []string{"firing@10m0s/2", "reminder@1h10m0s/8", "reminder@2h10m0s/14"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("notices %v, want %v", got, want)
	}

	tr = NewTracker(Policy{FailAfter: 1, ResolveAfter: 1, Reminder: 0})
	n := 0
	for i := 0; i < 100; i++ {
		n += len(tr.Observe("node-s", "web", false, "503", t0.Add(time.Duration(i)*time.Hour)))
	}
	if n != 1 {
		t.Errorf("with no reminders %d notices in 100 hours, want the firing one only", n)
	}
}

// The state goes through Marshal and Unmarshal as across an agent restart.
func TestStateSurvivesRestart(t *testing.T) {
	p := Policy{FailAfter: 3, ResolveAfter: 2, Reminder: time.Hour}
	restart := func(t *testing.T, tr *Tracker) *Tracker {
		t.Helper()
		b, err := tr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		fresh := NewTracker(p)
		if err := fresh.Unmarshal(b); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		return fresh
	}

	t.Run("failures before the threshold count on", func(t *testing.T) {
		tr := NewTracker(p)
		run(t, tr, t0, []step{{F, ""}, {F, ""}})
		tr = restart(t, tr)
		ns := run(t, tr, t0.Add(2*time.Minute), []step{{F, Firing}})
		if !ns[0].Since.Equal(t0) || ns[0].Failures != 3 {
			t.Errorf("after restart: since %v, failures %d; want %v, 3", ns[0].Since, ns[0].Failures, t0)
		}
	})
	t.Run("a firing alert neither fires again nor is forgotten", func(t *testing.T) {
		tr := NewTracker(p)
		run(t, tr, t0, []step{{F, ""}, {F, ""}, {F, Firing}})
		tr = restart(t, tr)
		run(t, tr, t0.Add(3*time.Minute), []step{{F, ""}, {K, ""}})
		tr = restart(t, tr)
		ns := run(t, tr, t0.Add(5*time.Minute), []step{{K, Resolved}})
		if ns[0].Failures != 4 || !ns[0].Since.Equal(t0) {
			t.Errorf("resolved after restarts: %+v", ns[0])
		}
	})
	t.Run("the reminder clock survives", func(t *testing.T) {
		tr := NewTracker(p)
		run(t, tr, t0, []step{{F, ""}, {F, ""}, {F, Firing}})
		tr = restart(t, tr)
		if ns := tr.Observe("node-s", "mail", false, "x", t0.Add(61*time.Minute)); len(ns) != 0 {
			t.Errorf("reminder 59m after firing: %v", ns)
		}
		if ns := tr.Observe("node-s", "mail", false, "x", t0.Add(62*time.Minute)); len(ns) != 1 || ns[0].Kind != Reminder {
			t.Errorf("no reminder an hour after firing: %v", ns)
		}
	})
	t.Run("empty input is an empty state", func(t *testing.T) {
		tr := NewTracker(p)
		run(t, tr, t0, []step{{F, ""}, {F, ""}})
		if err := tr.Unmarshal(nil); err != nil {
			t.Fatal(err)
		}
		run(t, tr, t0, []step{{F, ""}, {F, ""}, {F, Firing}})
	})
	t.Run("bad input is refused and changes nothing", func(t *testing.T) {
		tr := NewTracker(p)
		run(t, tr, t0, []step{{F, ""}, {F, ""}})
		for _, bad := range []string{`{`, `{"version":2,"probes":[]}`, `{"version":1,"probes":[{"probe":"mail"}]}`, `{"version":1,"probes":[null]}`} {
			if err := tr.Unmarshal([]byte(bad)); !errors.Is(err, ErrState) {
				t.Errorf("Unmarshal(%s) = %v, want ErrState", bad, err)
			}
		}
		run(t, tr, t0.Add(2*time.Minute), []step{{F, Firing}})
	})
}

func TestMarshalIsStable(t *testing.T) {
	tr := NewTracker(DefaultPolicy())
	for _, node := range []string{"node-s", "node-p"} {
		for _, probe := range []string{"web", "mail", "dns"} {
			tr.Observe(node, probe, false, "x", t0)
		}
	}
	a, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tr.Marshal()
	if string(a) != string(b) {
		t.Errorf("two Marshal calls differ:\n%s\n%s", a, b)
	}
	if i, j := strings.Index(string(a), `"node-p"`), strings.Index(string(a), `"node-s"`); i < 0 || j < i {
		t.Errorf("state not sorted by node: %s", a)
	}
}

func TestObserveResult(t *testing.T) {
	tr := NewTracker(Policy{FailAfter: 1, ResolveAfter: 1})
	r := verifier.Result{
		Name: "mail", Kind: "mail", Message: "imap-fetch: canary not visible after 30s",
		Phases: []verifier.Phase{
			{Name: "smtp-send", Duration: time.Second},
			{Name: "imap-fetch", Duration: 30 * time.Second, Error: "canary not visible after 30s"},
		},
		Started: t0, Duration: 31 * time.Second,
	}
	ns := tr.ObserveResult("node-s", r)
	if len(ns) != 1 {
		t.Fatalf("ObserveResult raised %v", ns)
	}
	if got, want := ns[0].Text(), `node-s mail: phase "imap-fetch": canary not visible after 30s`; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	if !ns[0].At.Equal(t0.Add(31*time.Second)) || ns[0].Phase != "imap-fetch" {
		t.Errorf("notice %+v", ns[0])
	}
	// No phase failed (an unknown kind): the result's message is used.
	r2 := verifier.Result{Name: "odd", Kind: "nope", Message: `unknown probe kind "nope"`, Started: t0}
	if ns := tr.ObserveResult("node-s", r2); len(ns) != 1 || ns[0].Phase != "" || ns[0].Text() != `node-s odd: unknown probe kind "nope"` {
		t.Errorf("ObserveResult without phases: %+v", ns)
	}
	r.OK, r.Phases, r.Message = true, nil, ""
	if ns := tr.ObserveResult("node-s", r); len(ns) != 1 || ns[0].Kind != Resolved {
		t.Errorf("ok result: %+v", ns)
	}
}

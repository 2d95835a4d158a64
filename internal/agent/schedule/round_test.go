package schedule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/verifier"
)

func TestStoredResultKeepsValues(t *testing.T) {
	r := verifier.Result{Name: "mail", Kind: "mail", Started: time.Now().UTC(), Duration: 80 * time.Millisecond,
		Phases:  []verifier.Phase{{Name: "canary visible", Duration: 50 * time.Millisecond, Error: "IMAP login ok, canary not visible after 8.9s"}},
		Message: "canary visible: IMAP login ok, canary not visible after 8.9s",
		Values:  map[string]string{"latency_ms": "87", "tls_days_left": "200"}}
	sr := storedResult("node-p", r)
	if sr.Values["latency_ms"] != "87" || sr.Values["tls_days_left"] != "200" || len(sr.Values) != 2 {
		t.Errorf("values %v", sr.Values)
	}
	if sr.FailedPhase != "canary visible" || sr.Message != "IMAP login ok, canary not visible after 8.9s" {
		t.Errorf("failed phase %q, message %q", sr.FailedPhase, sr.Message)
	}
	r.Values = nil
	if sr := storedResult("node-p", r); sr.Values != nil {
		t.Errorf("no values stored as %#v, want nil", sr.Values)
	}

	// Bounds: a peer (or a probe) cannot fill the store with values.
	big := map[string]string{"": "x", strings.Repeat("k", maxValueKey+1): "x"}
	for i := 0; i < maxValues+10; i++ {
		big[fmt.Sprintf("v%03d", i)] = strings.Repeat("é", maxValueBytes)
	}
	b := boundValues(big)
	if len(b) != maxValues || b["v000"] == "" || b[""] != "" || b[strings.Repeat("k", maxValueKey+1)] != "" {
		t.Errorf("bounded to %d values: %v", len(b), b["v000"])
	}
	for k, v := range b {
		if len(v) > maxValueBytes || !strings.HasPrefix(strings.Repeat("é", maxValueBytes), v) {
			t.Errorf("%s: %d bytes, cut badly", k, len(v))
		}
	}
	if boundValues(map[string]string{}) != nil || boundValues(nil) != nil {
		t.Error("empty values not nil")
	}
}

// A red during the sync's reload is run again once the unit settled: a
// transient failure turns green, a reload that broke the service stays red;
// a red no reload explains is not run again.
func TestReprobeAfterReload(t *testing.T) {
	specs := []verifier.Spec{{Name: "mail", Kind: "mail"}, {Name: "web", Kind: "http"}, {Name: "db", Kind: "postgres"}}
	first := []verifier.Result{
		{Name: "mail", OK: false, Message: "imap login: unexpected EOF"},
		{Name: "web", OK: false, Message: "connection refused"},
		{Name: "db", OK: true},
	}
	disturbed := func(r verifier.Result) []string {
		if r.Name == "mail" {
			return []string{"dovecot.service"}
		}
		return nil
	}
	for _, tc := range []struct {
		name     string
		secondOK bool
	}{{"transient", true}, {"really broken", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var settled []string
			var ran []string
			run := func(_ context.Context, s []verifier.Spec) ([]verifier.Result, map[string]string) {
				var out []verifier.Result
				for _, x := range s {
					ran = append(ran, x.Name)
					out = append(out, verifier.Result{Name: x.Name, OK: tc.secondOK, Message: "second run"})
				}
				return out, map[string]string{"mail": "log of the second run\n"}
			}
			settle := func(_ context.Context, units []string) error {
				settled = units
				return errors.New("no system bus")
			}
			logs := map[string]string{"mail": "log of the first run\n"}
			out, logs := reprobe(context.Background(), specs, first, logs, disturbed, settle, run)
			if !slices.Equal(ran, []string{"mail"}) || !slices.Equal(settled, []string{"dovecot.service"}) {
				t.Fatalf("ran %v after settling %v; want mail after dovecot.service", ran, settled)
			}
			if out[0].OK != tc.secondOK || out[0].Message != "second run" {
				t.Errorf("mail: %+v", out[0])
			}
			if why := out[0].Values["reprobed"]; !strings.Contains(why, "reload of dovecot.service") || !strings.Contains(why, "unexpected EOF") || !strings.Contains(why, "no system bus") {
				t.Errorf("reprobed value: %q", why)
			}
			if out[1].OK || out[1].Message != "connection refused" || !out[2].OK {
				t.Errorf("the other probes changed: %+v", out[1:])
			}
			if !strings.Contains(logs["mail"], "first run") || !strings.Contains(logs["mail"], "second run") {
				t.Errorf("log: %q", logs["mail"])
			}
			if first[0].Message != "imap login: unexpected EOF" {
				t.Errorf("the caller's results were changed")
			}
		})
	}
}

// TestRoundCutShort: a round whose context ends before its probes answer
// (the agent stopping) keeps nothing: no result stored, no red probe, no
// failure counted. Before, the stop made each probe still running red
// with "no answer within" its deadline (chaos seed 43 step 18).
func TestRoundCutShort(t *testing.T) {
	b := newTestBed(t, "node-s", "node-p", "mail", "web")
	ctx, cancel := context.WithCancel(context.Background())
	bed := b.s.runProbes
	b.s.runProbes = func(ctx context.Context, specs []verifier.Spec) ([]verifier.Result, map[string]string) {
		cancel() // the stop arrives while the probes run
		var out []verifier.Result
		for _, sp := range specs {
			out = append(out, verifier.Result{Name: sp.Name, Kind: sp.Kind, Started: time.Now().UTC(), Message: "no answer within 1s"})
		}
		return out, map[string]string{}
	}
	b.s.runRound(ctx, "pw", time.Second)
	if len(b.events) != 0 {
		t.Errorf("events of a round cut short: %q", b.events)
	}
	for _, p := range []string{"mail", "web"} {
		if rs, err := b.st.Results("node-s", p, 0); err != nil || len(rs) != 0 {
			t.Errorf("%s: %d results stored of a round cut short (%v)", p, len(rs), err)
		}
		if b.s.fails[p] != 0 {
			t.Errorf("%s: %d failures counted", p, b.s.fails[p])
		}
	}
	// The next whole round is kept as usual.
	b.s.runProbes = bed
	b.s.runRound(context.Background(), "pw", time.Second)
	if rs, err := b.st.Results("node-s", "mail", 0); err != nil || len(rs) != 1 {
		t.Errorf("the next round: %d results, %v", len(rs), err)
	}
}

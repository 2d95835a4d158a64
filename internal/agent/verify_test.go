package agent

import (
	"context"
	"fmt"
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

// A result's values reach the store of this node and, with the hello,
// the peer's; `sentry verify --node N --last` and --debug read them there.
func TestResultValuesReachThePeer(t *testing.T) {
	ctx := context.Background()
	p, s := startNode(t, "node-p"), startNode(t, "node-s")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatalf("join: %v\nprimary logs:\n%s", err, p.logs)
	}
	r := verifier.Result{Name: "mail", Kind: "mail", OK: true, Started: time.Now().UTC(), Duration: 120 * time.Millisecond,
		Phases: []verifier.Phase{{Name: "smtp submit", Duration: 40 * time.Millisecond}, {Name: "canary visible", Duration: 80 * time.Millisecond}},
		Values: map[string]string{"latency_ms": "87"}}
	s.a.mu.Lock()
	s.a.verify.last = map[string]verifier.Result{"mail": r}
	s.a.mu.Unlock()
	if err := s.a.store.PutResult(storedResult("node-s", r)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{s, p} {
		waitFor(t, n.a.nodeName()+" has node-s's result with its values", func() bool {
			rs, err := n.c.Results(ctx, "node-s", "", 0)
			return err == nil && len(rs) == 1 && rs[0].Values["latency_ms"] == "87" && len(rs[0].Phases) == 2
		})
	}
	d, err := s.c.Debug(ctx, "mail")
	if err != nil || d.Result.Values["latency_ms"] != "87" {
		t.Errorf("debug %+v, %v", d, err)
	}
}

package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/readiness"
)

// TestReadyPair: on a paired couple, the verdict is gathered from both
// nodes (the peer answers, S applied P's head, P's head time crosses, the
// facts and modules cross in the hello), each change is an event, and
// with the peer gone the verdict says so with the peer's age.
func TestReadyPair(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, "node-p")
	s := startNode(t, "node-s", WithReloader(&flakyReloader{}))
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatalf("join: %v\nprimary logs:\n%s", err, p.logs)
	}
	os.WriteFile(filepath.Join(p.dir, "etc", "nginx", "ready.conf"), []byte("# ready\n"), 0o644)
	finding := func(r *readiness.Result, check string) readiness.Finding {
		for _, f := range r.Findings {
			if f.Check == check {
				return f
			}
		}
		t.Fatalf("no finding %s in %+v", check, r)
		return readiness.Finding{}
	}
	for _, n := range []*testNode{p, s} {
		waitLong(t, "the peer answers and S applied P's head", func() bool {
			n.a.verdict.Kick()
			r, err := n.c.Ready(ctx)
			return err == nil && finding(r, "peer").State == readiness.Pass && finding(r, "sync.applied").State == readiness.Pass &&
				finding(r, "stamps").State == readiness.Pass && finding(r, "sync.failed").State == readiness.Pass
		})
	}
	ps := s.a.lnk().Peer()
	if ps == nil || ps.ConfigHeadAt.IsZero() || ps.Facts == nil || ps.Facts.At.IsZero() || ps.Facts.Loader == nil && ps.Facts.LoaderErr == "" {
		t.Fatalf("the primary's status as the secondary has it: %+v", ps)
	}
	// The clock offset is measured: the clock check is not unknown.
	waitLong(t, "P's clock check to pass", func() bool {
		r, err := p.c.Ready(ctx)
		return err == nil && finding(r, "clock").State == readiness.Pass
	})

	s.stop()
	waitLong(t, "the peer check fails on P", func() bool {
		r, err := p.c.Ready(ctx)
		if err != nil {
			return false
		}
		f := finding(r, "peer")
		return r.Verdict == readiness.NotReady && f.State == readiness.Fail && f.Blocking() &&
			strings.HasPrefix(f.Reason, "the peer has not answered for ")
	})
	evs, err := p.c.Events(ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, e := range evs {
		if e.Kind == "ready-changed" {
			changes = append(changes, e.Message)
		}
	}
	// The peer's loss is a recorded change. Not necessarily the last one:
	// under load, a hello S sent while stopping (most likely) can arrive after P
	// found it gone, with a status S's stopping sync made (seen once under
	// -race with the whole suite: "NOT READY: sync.drift" after it).
	lost := false
	for _, c := range changes {
		lost = lost || strings.HasPrefix(c, "NOT READY: peer: the peer has not answered for ")
	}
	if !lost {
		t.Errorf("no ready-changed event for the peer's loss: %q", changes)
	}
	for i := 1; i < len(changes); i++ {
		if changes[i] == changes[i-1] && !strings.Contains(changes[i], "(and ") {
			t.Errorf("the same verdict recorded twice in a row: %q", changes[i])
		}
	}
}

package agent

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPeerKeptReportsWired: two agents paired in this process; the
// primary keeps a report, and the secondary lists it (the row naming the
// primary) and shows it, through the local API, the peer link's mutual
// TLS and the reports component's peer endpoint.
func TestPeerKeptReportsWired(t *testing.T) {
	ctx := context.Background()
	p, s := startNode(t, "node-p"), startNode(t, "node-s")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatalf("join: %v\nprimary logs:\n%s", err, p.logs)
	}
	waitFor(t, "the secondary hears the primary", func() bool {
		st, err := s.c.Status(ctx)
		return err == nil && len(st.Nodes) == 2 && st.Nodes[0].Name == "node-p" && st.Nodes[0].Role == "primary" && st.Nodes[0].Reachable
	})
	run, err := p.c.Reports().Run(ctx, "current", false)
	if err != nil || !run.Saved {
		t.Fatalf("the primary keeps the week's report: %+v %v", run, err)
	}
	l, err := s.c.Reports().ListWithPeer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.PeerError != "" || l.Peer != "node-p" || len(l.Reports) != 1 || l.Reports[0].Node != "node-p" || l.Reports[0].Week != run.Week {
		t.Fatalf("the list on the secondary: %+v\nsecondary logs:\n%s", l, s.logs)
	}
	txt, err := s.c.Reports().FromPeer(ctx, run.Week, "text")
	if err != nil || txt.Node != "node-p" || !strings.Contains(txt.Body, "weekly report "+run.Week) {
		t.Fatalf("the primary's report on the secondary: %+v %v", txt, err)
	}
	if _, err := p.c.Reports().FromPeer(ctx, run.Week, "text"); err == nil || !strings.Contains(err.Error(), "peer node-s keeps no report of week "+run.Week) {
		t.Errorf("the secondary keeps none: %v", err)
	}
	// The primary stopped: the secondary lists its own (none) and says why
	// not the primary's.
	p.stop()
	l, err = s.c.Reports().ListWithPeer(ctx)
	if err != nil || len(l.Reports) != 0 || !strings.HasPrefix(l.PeerError, "the kept reports of peer node-p: peer node-p at ") {
		t.Errorf("the primary stopped: %+v %v", l, err)
	}
}

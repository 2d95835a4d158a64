package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A pair of mixed protocols (an agent of the previous release speaks 2):
// in both directions the two say hello, and the configuration flows from
// the primary to the secondary, the fetch in the form the primary reads.
func TestMixedProtocolPair(t *testing.T) {
	for _, c := range []struct {
		name       string
		pOpt, sOpt []Option
	}{
		{"current pair", nil, nil},
		{"primary speaks 2", []Option{WithPeerProtocol(2)}, nil},
		{"secondary speaks 2", nil, []Option{WithPeerProtocol(2)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			p := startNode(t, "node-p", c.pOpt...)
			s := startNode(t, "node-s", append(c.sOpt, WithReloader(&flakyReloader{}))...)
			res, err := p.c.Init(ctx, "office", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
				t.Fatalf("join: %v\nprimary logs:\n%s", err, p.logs)
			}
			for _, n := range []*testNode{p, s} {
				waitFor(t, "both reachable", func() bool {
					st, err := n.c.Status(ctx)
					return err == nil && len(st.Nodes) == 2 && st.Nodes[0].Reachable && st.Nodes[1].Reachable
				})
			}
			waitLong(t, "the first apply", func() bool { return secondaryView(t, s).ConfigApplied != "" })
			first := secondaryView(t, s).ConfigApplied
			os.WriteFile(filepath.Join(p.dir, "etc", "nginx", "mixed.conf"), []byte("# mixed\n"), 0o644)
			waitLong(t, "the change applied on the secondary", func() bool {
				v := secondaryView(t, s)
				return v.ConfigApplied != "" && v.ConfigApplied != first && v.ConfigError == ""
			})
			if want := map[string]int{"primary speaks 2": 2, "secondary speaks 2": 3, "current pair": 3}[c.name]; s.a.lnk().PeerProtocol() != want {
				t.Errorf("the secondary saw protocol %d of the primary, want %d", s.a.lnk().PeerProtocol(), want)
			}
		})
	}
}

func waitLong(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

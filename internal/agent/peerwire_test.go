package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
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
			if want := map[string]int{"primary speaks 2": 2, "secondary speaks 2": 3, "current pair": 3}[c.name]; s.a.peerProtocol() != want {
				t.Errorf("the secondary saw protocol %d of the primary, want %d", s.a.peerProtocol(), want)
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

// A package file crosses in both forms: the message and its lead (a
// primary of protocol 3) and protocol 2's bare request and headers (one
// of 2, or not known yet); a protocol-3 request is answered with a lead.
func TestPeerDebBothForms(t *testing.T) {
	f := newFetchFixture(t)
	p := applyAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA)
	s := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	linkPeers(t, p, s)
	for _, proto := range []int{0, 2, 3} {
		s.lnk().SetPeer(&peer.NodeStatus{Name: "node-p", Protocol: proto})
		path, source, err := s.peerDeb(context.Background(), DebRequest{Name: "hello", Arch: "all", Version: "1.0"}, t.TempDir())
		if err != nil {
			t.Fatalf("protocol %d: %v", proto, err)
		}
		if sha256File(t, path) != sha256File(t, f.signed) || source != "the peer: hello_1.0_all.deb" {
			t.Errorf("protocol %d: got %s from %q", proto, path, source)
		}
	}
	// What goes over the wire for a peer of protocol 3.
	body, _ := peer.Encode(peer.TypeDebRequest, "node-s", peer.DebRequest{Name: "hello", Arch: "all", Version: "1.0"})
	resp, err := s.peerClient().Post(context.Background(), "/v1/parity/deb", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lead, _, _ := bytes.Cut(b, []byte("\n"))
	env, err := peer.Decode(lead)
	if err != nil || resp.Header.Get("Content-Type") != peer.StreamContentType {
		t.Fatalf("answer to a deb-request: %s %v (%v)", resp.Header.Get("Content-Type"), err, resp.Status)
	}
	if d, err := env.Deb(); err != nil || d.SHA256 != sha256File(t, f.signed) || d.Size != int64(len(b)-len(lead)-1) {
		t.Errorf("lead %+v %v, %d bytes after it", d, err, len(b)-len(lead)-1)
	}
	// A bad message is refused before the handler.
	bad, _ := json.Marshal(map[string]any{"v": 3, "type": "deb-request", "from": "node-s", "body": map[string]string{"name": "../x", "arch": "all", "version": "1"}})
	resp, err = s.peerClient().Post(context.Background(), "/v1/parity/deb", "application/json", bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad deb-request: %s", resp.Status)
	}
}

package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent/link"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
)

// The refused joins a flood leaves uncounted in events are summed up: one
// event names how many, from where and why.
func TestJoinRefusalsSummedUp(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, "node-p")
	if _, err := p.c.Init(ctx, "office", time.Hour); err != nil {
		t.Fatal(err)
	}
	body := badJoin(t)
	cl := &http.Client{Timeout: 5 * time.Second, Transport: insecureTransport()}
	for i := 0; i < 50; i++ {
		resp, err := cl.Post("https://"+p.listen+"/v1/join", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	evs := eventsOfKind(t, p.a, "join-refused")
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Message, "refused a join from 127.0.0.1:") || !strings.HasSuffix(evs[0].Message, ": join token unknown") {
		t.Fatalf("events after 50 refused joins: %+v, want the first one alone", evs)
	}
	// The rest, at the end of the period (here: now).
	p.a.lnk().FlushRefusals()
	evs = eventsOfKind(t, p.a, "join-refused")
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	want := "49 joins refused from 127.0.0.1 (49) since "
	if e := evs[1]; !strings.HasPrefix(e.Message, want) || !strings.Contains(e.Message, "too many join attempts (40)") ||
		!strings.Contains(e.Message, "join token unknown (9)") || e.Fields["joins"] != "49" {
		t.Errorf("summary %q %v, want %q... with the reasons counted", e.Message, e.Fields, want)
	}
	// Past its limit a source gets 429 and a Retry-After.
	resp, err := cl.Post("https://"+p.listen+"/v1/join", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the limit: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
}

// Requests without the peer's certificate (a node whose certificate is
// refused says hello every few seconds) do not use up the joins of their
// address: the operator's join from there still passes.
func TestRefusedHellosLeaveJoinsAlone(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, "node-p")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: insecureTransport()}
	for i := 0; i < 3*link.JoinBurst; i++ {
		resp, err := cl.Post("https://"+p.listen+"/v1/hello", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a hello without certificate: %s", resp.Status)
		}
	}
	if n := strings.Count(p.logs.String(), "refused peer request"); n != link.JoinBurst {
		t.Errorf("%d refusals logged of %d, want %d (the rest counted)", n, 3*link.JoinBurst, link.JoinBurst)
	}
	s := startNode(t, "node-s")
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatalf("join after refused hellos from its address: %v", err)
	}
}

// A .deb request while one is served is refused, not queued.
func TestPeerDebsOneAtATime(t *testing.T) {
	p := applyAgent(t, "node-p", stamp.RoleSecondary, "node-s", machineA)
	s := applyAgent(t, "node-s", stamp.RolePrimary, "node-p", machineB)
	linkPeers(t, p, s)
	release := p.lnk().HoldDebs()
	body, _ := json.Marshal(DebRequest{Name: "hello", Arch: "all", Version: "1.0"})
	resp, err := s.peerPost(context.Background(), "/v1/parity/deb", "application/json", body)
	release()
	if err != nil {
		t.Fatal(err)
	}
	env, _ := peer.Read(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || env == nil || !strings.Contains(string(env.Body), "one at a time") {
		t.Fatalf("a request while one is served: %s %+v", resp.Status, env)
	}
}

// The peer's generation: the window above the newest known, both ways.
func TestCheckPeerGeneration(t *testing.T) {
	a := applyAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA)
	a.stamp = &stamp.Stamp{ClusterID: "c1", DiskSet: "d1", Role: stamp.RolePrimary, Generation: 3, OtherGeneration: 5, HomeHardware: machineA}
	for gen, ok := range map[uint64]bool{0: true, 1: true, 5: true, 21: true, 22: false, stamp.MaxGeneration + 1: false} {
		err := a.lnk().CheckPeerGeneration(&peer.NodeStatus{Name: "node-s", Generation: gen})
		if (err == nil) != ok || (err != nil && !errors.Is(err, peer.ErrGeneration)) {
			t.Errorf("generation %d: %v, want ok %v", gen, err, ok)
		}
	}
	if evs := eventsOfKind(t, a, "peer-generation-refused"); len(evs) != 2 || evs[0].Node != "node-s" || evs[0].Fields["known"] != "5" {
		t.Errorf("events %+v", evs)
	}
}

// A join whose node claims a generation out of the window is refused
// before its token is spent.
func TestJoinGenerationRefusedBeforeToken(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, "node-p")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := ParseToken(res.Token)
	b := badJoin(t)
	env, _ := peer.Decode(b)
	req, _ := env.JoinRequest()
	req.Secret, req.Node.Generation = tok.Secret, 1<<63
	body, _ := peer.Encode(peer.TypeJoinRequest, "node-x", req)
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: insecureTransport()}).Post("https://"+p.listen+"/v1/join", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a join at generation 2^63: %s", resp.Status)
	}
	s := startNode(t, "node-s")
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatalf("the token after the refused join: %v", err)
	}
}

func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
}

package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent/link"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
)

// Regression tests of issue 20: findings 3 (generations), 4 (join flood),
// 10 (the peer's word about itself) and the low "a join token spent
// before its certificate request is checked".

// pairedNodes starts a primary and a secondary and pairs them.
func pairedNodes(t *testing.T) (p, s *testNode, res *InitResult) {
	t.Helper()
	ctx := context.Background()
	p, s = startNode(t, "node-p"), startNode(t, "node-s")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatalf("join: %v\nprimary logs:\n%s", err, p.logs)
	}
	return p, s, res
}

// postAs posts body to path on to's peer API with from's certificate, as
// from's agent would, and returns the status code and the answer.
func postAs(t *testing.T, from, to *testNode, path string, body []byte) (int, string) {
	t.Helper()
	from.a.mu.Lock()
	tlsCfg := from.a.node.ClientTLS(to.a.nodeName())
	from.a.mu.Unlock()
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post("https://"+to.listen+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// helloFrom is a hello as s would send it, changed by f.
func helloFrom(t *testing.T, s *testNode, clusterID string, f func(*peer.NodeStatus)) []byte {
	t.Helper()
	h := peer.NodeStatus{Name: s.a.nodeName(), Role: stamp.RoleSecondary, ClusterID: clusterID, Generation: 1,
		Protocol: peer.ProtocolVersion, Time: time.Now().UTC()}
	if f != nil {
		f(&h)
	}
	b, err := peer.Encode(peer.TypeHello, h.Name, h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventsOfKind(t *testing.T, a *Agent, kind string) []store.Event {
	t.Helper()
	evs, err := a.store.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Finding 3: one hello with generation >= 2^63 was copied into the
// receiver's disk stamp, which TOML then could not read (safe mode at the
// next boot). A generation out of the window is refused, never stored,
// and said once per distinct value.
func TestHelloGenerationOutOfWindowRefused(t *testing.T) {
	p, s, res := pairedNodes(t)
	stampFile := filepath.Join(p.dir, "state", stamp.StampFile)
	for i, gen := range []uint64{1 << 63, 1 << 63, 1<<64 - 1, 1 << 63, 1 + 16 + 1} {
		code, body := postAs(t, s, p, "/v1/hello", helloFrom(t, s, res.ClusterID, func(h *peer.NodeStatus) { h.Generation = gen }))
		st, err := stamp.ReadStamp(stampFile)
		if err != nil {
			t.Fatalf("hello %d (generation %d): the primary's stamp is unreadable after it: %v", i, gen, err)
		}
		if st.OtherGeneration > 1 {
			t.Fatalf("hello %d: generation %d stored in the stamp as the other's", i, st.OtherGeneration)
		}
		if code == http.StatusOK {
			t.Fatalf("hello %d with generation %d answered %d: %s", i, gen, code, body)
		}
		if !strings.Contains(body, "generation") {
			t.Errorf("hello %d: the refusal does not say why: %s", i, body)
		}
	}
	// Three distinct values: three events, not one per hello.
	if evs := eventsOfKind(t, p.a, "peer-generation-refused"); len(evs) != 3 {
		t.Errorf("%d peer-generation-refused events, want 3 (one per distinct value): %+v", len(evs), evs)
	}
	// Within the window: taken and stored.
	if code, body := postAs(t, s, p, "/v1/hello", helloFrom(t, s, res.ClusterID, func(h *peer.NodeStatus) { h.Generation = 2 })); code != http.StatusOK {
		t.Fatalf("a hello with generation 2: %d %s", code, body)
	}
	if st, err := stamp.ReadStamp(stampFile); err != nil || st.OtherGeneration != 2 {
		t.Fatalf("after generation 2: %+v %v", st, err)
	}
}

// badJoin is a well-formed join request with a secret no token has.
func badJoin(t *testing.T) []byte {
	t.Helper()
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "node-x")
	b, err := peer.Encode(peer.TypeJoinRequest, "node-x", peer.JoinRequest{Secret: strings.Repeat("A", 43), CSR: string(csr), ListenPort: 7443,
		Node: peer.NodeStatus{Name: "node-x", Time: time.Now().UTC()}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Finding 4: every refused join was an fsynced event written under the
// agent's lock. 2,000 refused joins now leave a handful of events, and
// the status answers meanwhile.
func TestJoinFloodCostsNoDiskWrite(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, "node-p")
	if _, err := p.c.Init(ctx, "office", time.Hour); err != nil {
		t.Fatal(err)
	}
	body := badJoin(t)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var slowest atomic.Int64
	stop := make(chan struct{})
	var statusDone sync.WaitGroup
	statusDone.Add(1)
	go func() {
		defer statusDone.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			if _, err := p.c.Status(ctx); err != nil {
				t.Errorf("status during the flood: %v", err)
				return
			}
			if d := int64(time.Since(start)); d > slowest.Load() {
				slowest.Store(d)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	const attempts, workers = 2000, 16
	codes := make([]map[int]int, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		codes[w] = map[int]int{}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < attempts/workers; i++ {
				resp, err := cl.Post("https://"+p.listen+"/v1/join", "application/json", bytes.NewReader(body))
				if err != nil {
					codes[w][-1]++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[w][resp.StatusCode]++
			}
		}(w)
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	statusDone.Wait()
	total := map[int]int{}
	for _, c := range codes {
		for k, v := range c {
			total[k] += v
		}
	}
	if total[-1] > 0 || total[http.StatusOK] > 0 {
		t.Fatalf("answers %v", total)
	}
	evs := eventsOfKind(t, p.a, "join-refused")
	t.Logf("%d joins in %v: answers %v; %d join-refused events; slowest status %v", attempts, took, total, len(evs), time.Duration(slowest.Load()))
	if len(evs) > 3 {
		t.Errorf("%d join-refused events stored for %d refused joins, want at most 3", len(evs), attempts)
	}
	if d := time.Duration(slowest.Load()); d > 2*time.Second {
		t.Errorf("the status took %v during the flood", d)
	}
}

// Low: the token was marked used before the certificate request was
// checked, so a join with a bad request spent it.
func TestJoinBadCSRKeepsToken(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, "node-p")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := ParseToken(res.Token)
	key, _ := pki.NewKey()
	otherCSR, _ := pki.NewCSR(key, "node-other") // for another name than the join's
	for _, csr := range []string{string(otherCSR), "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"} {
		body, _ := peer.Encode(peer.TypeJoinRequest, "node-s", peer.JoinRequest{Secret: tok.Secret, CSR: csr, ListenPort: 7443,
			Node: peer.NodeStatus{Name: "node-s", Time: time.Now().UTC()}})
		nocert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := nocert.Post("https://"+p.listen+"/v1/join", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "certificate request") {
			t.Errorf("a join with a bad certificate request: %d %s", resp.StatusCode, b)
		}
	}
	s := startNode(t, "node-s")
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatalf("the token after joins refused for their certificate request: %v", err)
	}
}

// Finding 10: 100 hellos with new probe names grew the store without end.
// The peer's distinct probe names are capped, and names are checked.
func TestPeerProbeNamesCapped(t *testing.T) {
	p, s, res := pairedNodes(t)
	for round := 0; round < 5; round++ {
		body := helloFrom(t, s, res.ClusterID, func(h *peer.NodeStatus) {
			for i := 0; i < 64; i++ {
				h.Results = append(h.Results, store.StoredResult{Node: h.Name, Probe: fmt.Sprintf("junk-%d-%d", round, i), Kind: "tcp",
					Start: time.Now().UTC(), OK: true})
			}
		})
		if code, b := postAs(t, s, p, "/v1/hello", body); code != http.StatusOK {
			t.Fatalf("round %d: %d %s", round, code, b)
		}
	}
	got, err := p.a.store.LatestResults("node-s")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 64 {
		t.Errorf("%d probes of node-s stored after 5 hellos of 64 new names each, want at most 64", len(got))
	}
	// Names and counts out of bounds are refused whole.
	for what, f := range map[string]func(h *peer.NodeStatus){
		"65 results": func(h *peer.NodeStatus) {
			for i := 0; i < 65; i++ {
				h.Results = append(h.Results, store.StoredResult{Node: h.Name, Probe: fmt.Sprintf("p%d", i), Start: time.Now().UTC()})
			}
		},
		"a name with a line break": func(h *peer.NodeStatus) {
			h.Results = []store.StoredResult{{Node: h.Name, Probe: "web\nFIRING", Start: time.Now().UTC()}}
		},
		"a name with a path": func(h *peer.NodeStatus) {
			h.Results = []store.StoredResult{{Node: h.Name, Probe: "../../etc", Start: time.Now().UTC()}}
		},
	} {
		if code, _ := postAs(t, s, p, "/v1/hello", helloFrom(t, s, res.ClusterID, f)); code != http.StatusBadRequest {
			t.Errorf("a hello with %s: %d, want 400", what, code)
		}
	}
}

// Finding 10: the peer could ask for any number of verification runs.
func TestPeerVerifyRunsLimited(t *testing.T) {
	p := applyAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA)
	s := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	linkPeers(t, p, s)
	body, _ := peer.Encode(peer.TypeVerifyRequest, "node-s", peer.VerifyRequest{Service: "web"})
	refused := 0
	var msg string
	for i := 0; i < 20; i++ {
		_, err := peer.Call(context.Background(), s.node.ClientTLS("node-p"), s.cluster.PeerAddress, "/v1/verify/run", body)
		if err != nil && strings.Contains(err.Error(), "verification runs") {
			refused++
			msg = err.Error()
		}
	}
	if refused == 0 || refused > 20-link.VerifyRunsPerMinute {
		t.Fatalf("%d of 20 verification runs asked at once refused, want %d", refused, 20-link.VerifyRunsPerMinute)
	}
	t.Log(msg)
}

// Finding 10: the peer could make the primary run any number of apt-get
// downloads.
func TestPeerDebFetchesLimited(t *testing.T) {
	f := newFetchFixture(t)
	p := applyAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA)
	s := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	linkPeers(t, p, s)
	const asks = link.DebFetchesPerHour + 5
	codes := map[int]int{}
	var last string
	for i := 0; i < asks; i++ {
		body, _ := json.Marshal(DebRequest{Name: "hello", Arch: "all", Version: fmt.Sprintf("3.%d", i)})
		resp, err := s.peerPost(context.Background(), "/v1/parity/deb", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			last = string(b)
		}
	}
	if runs := len(f.runs()); runs > link.DebFetchesPerHour {
		t.Errorf("%d apt-get runs for %d requests of the peer, want at most %d (answers %v)", runs, asks, link.DebFetchesPerHour, codes)
	}
	if codes[http.StatusTooManyRequests] != 5 || !strings.Contains(last, "package") {
		t.Errorf("answers %v, want 5 refused with 429; last refusal %s", codes, last)
	}
}

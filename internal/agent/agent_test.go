package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"github.com/sentryha/sentry/internal/agent/ready"
	"github.com/sentryha/sentry/internal/agentclient"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/modules"
)

// syncBuf is a log sink the test can read while the agent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type testNode struct {
	a      *Agent
	c      *agentclient.Client
	logs   *syncBuf
	dir    string
	listen string
	cancel context.CancelFunc
	done   chan error
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// nodeOptions keep a test agent's files in its folder: it tracks only
// dir/etc/nginx (its configuration says so), applies under dir/root as a
// secondary, and keeps the cluster's folder in the test run's own.
func nodeOptions(dir string) []Option {
	return []Option{WithClusterDir(testClusterDir), WithApplyRoot(filepath.Join(dir, "root")), WithModules(modules.OptionsAt(filepath.Join(dir, "root"))), WithAptTrust(testAptTrust),
		// The readiness facts from the test's folder: no arrays, no disks.
		WithReadyOptions(ready.Options{Mdstat: filepath.Join(dir, "mdstat"), Root: filepath.Join(dir, "root"),
			MountInfo: filepath.Join(dir, "mountinfo"), NetRoot: filepath.Join(dir, "root")})}
}

// startNode runs a real agent with its own state folder, socket and port.
func startNode(t testing.TB, name string, extra ...Option) *testNode {
	t.Helper()
	return startNodeConf(t, name, "", extra...)
}

// startNodeConf is startNode with more of sentry.toml (tables after the
// test's own).
func startNodeConf(t testing.TB, name, moreTOML string, extra ...Option) *testNode {
	t.Helper()
	dir := t.TempDir()
	listen := freePort(t)
	cfg := fmt.Sprintf(`[node]
name = %q
state_dir = %q
[agent]
listen = %q
socket = %q
shutdown_timeout = "2s"
[peer]
interval = "1s"
timeout = "2s"
[hardware]
identity = "mac"
nic_kinds = ["device", "veth", "ifb", "dummy", "bridge"]
[sync]
paths = [%q]
`, name, filepath.Join(dir, "state"), listen, filepath.Join(dir, "run", "agent.sock"), filepath.Join(dir, "etc", "nginx")) + moreTOML
	cfgPath := filepath.Join(dir, "sentry.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "etc", "nginx"), 0o755)
	os.MkdirAll(filepath.Join(dir, "root"), 0o755)
	a, err := New(cfgPath, "test-"+name, append(nodeOptions(dir), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	a.SetLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{a: a, c: agentclient.New(filepath.Join(dir, "run", "agent.sock")), logs: logs, dir: dir, listen: listen, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(n.stop)
	for i := 0; i < 100; i++ {
		if _, err := n.c.Status(context.Background()); err == nil {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("agent %s did not come up; logs:\n%s", name, logs)
	return nil
}

func (n *testNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if f() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestInitJoinStatus(t *testing.T) {
	ctx := context.Background()
	p, s := startNode(t, "node-p"), startNode(t, "node-s")

	st, err := p.c.Status(ctx)
	if err != nil || st.Initialized || !strings.Contains(st.Hint, "sentry init") {
		t.Fatalf("fresh status %+v, %v", st, err)
	}
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.c.Init(ctx, "again", time.Hour); err == nil || !strings.Contains(err.Error(), "already belongs") {
		t.Errorf("second init: %v", err)
	}
	jr, err := s.c.Join(ctx, res.Token, p.listen)
	if err != nil {
		t.Fatalf("join: %v\nprimary logs:\n%s", err, p.logs)
	}
	if jr.ClusterID != res.ClusterID || jr.Primary != "node-p" || jr.Node != "node-s" {
		t.Errorf("join result %+v", jr)
	}
	for _, n := range []*testNode{p, s} {
		n := n
		waitFor(t, "both nodes in status", func() bool {
			st, err := n.c.Status(ctx)
			if err != nil || len(st.Nodes) != 2 {
				return false
			}
			roles := map[string]string{}
			for _, v := range st.Nodes {
				if !v.Reachable || v.Generation != 1 || v.AgentVersion != "test-"+v.Name || v.Hardware == "" || v.DiskSet == "" {
					return false
				}
				roles[v.Name] = v.Role
			}
			return roles["node-p"] == "primary" && roles["node-s"] == "secondary"
		})
	}
	ps, _ := stamp.ReadStamp(filepath.Join(p.dir, "state", stamp.StampFile))
	ss, _ := stamp.ReadStamp(filepath.Join(s.dir, "state", stamp.StampFile))
	if ps.Role != "primary" || ss.Role != "secondary" || ps.ClusterID != ss.ClusterID || ps.DiskSet == ss.DiskSet {
		t.Errorf("stamps: %+v / %+v", ps, ss)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "state", "pki", pki.CAKeyFile)); err == nil {
		t.Error("the secondary got the CA key")
	}
	pk, _ := os.ReadFile(filepath.Join(p.dir, "state", "pki", pki.ClusterKeyFile))
	sk, err := os.ReadFile(filepath.Join(s.dir, "state", "pki", pki.ClusterKeyFile))
	if err != nil || len(pk) == 0 || string(pk) != string(sk) {
		t.Errorf("the cluster key did not reach the secondary: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(s.dir, "state", "pki", pki.ClusterKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cluster key file mode: %v %v", fi.Mode(), err)
	}
	for _, f := range []string{pki.NodeKeyFile, pki.CAKeyFile} {
		fi, err := os.Stat(filepath.Join(p.dir, "state", "pki", f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}

	// The status survives a restart of the primary's agent (store + files).
	p.stop()
	p2 := startNodeAt(t, p)
	waitFor(t, "restarted primary sees the secondary", func() bool {
		st, err := p2.c.Status(ctx)
		return err == nil && len(st.Nodes) == 2 && st.Nodes[1].Reachable
	})

	evs, err := p2.c.Events(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	// init, token and join in that order; the events of the parity, the
	// configuration sync and the verdict (ready-changed) come at any time,
	// between them too.
	var kinds []string
	want := []string{"init", "token", "join"}
	next := 0
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
		if next < len(want) && e.Kind == want[next] {
			next++
		}
	}
	if next < len(want) {
		t.Errorf("events %v, want init, token, join in that order", kinds)
	}
}

// startNodeAt restarts an agent on the same folder and port.
func startNodeAt(t *testing.T, old *testNode) *testNode {
	t.Helper()
	a, err := New(filepath.Join(old.dir, "sentry.toml"), old.a.version, nodeOptions(old.dir)...)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	a.SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{a: a, c: old.c, logs: logs, dir: old.dir, listen: old.listen, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(n.stop)
	waitFor(t, "restarted agent", func() bool { _, err := n.c.Status(context.Background()); return err == nil })
	return n
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, "node-p")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := ParseToken(res.Token)

	// A client with a certificate of another cluster's CA: the handshake fails.
	other, _ := pki.NewCA("other", "other", time.Now())
	key, _ := pki.NewKey()
	certPEM, _ := other.SignKey(key, "node-x", time.Now())
	keyPEM, _ := pki.KeyPEM(key)
	pair, _ := tls.X509KeyPair(certPEM, keyPEM)
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
		// Sent whatever CAs the server names (Go would otherwise hold back a
		// certificate the server's CA list does not match).
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}}}
	body, _ := peer.Encode(peer.TypeHello, "node-x", peer.NodeStatus{Name: "node-x", ClusterID: res.ClusterID})
	resp, err := cl.Post("https://"+p.listen+"/v1/hello", "application/json", bytes.NewReader(body))
	if err == nil {
		resp.Body.Close()
		t.Errorf("a client of another CA got an answer: %s", resp.Status)
	}
	waitFor(t, "handshake refusal logged with the peer address", func() bool {
		l := p.logs.String()
		return strings.Contains(l, "refused peer connection: TLS handshake failed") && strings.Contains(l, "peer=127.0.0.1:")
	})

	// No certificate at all: the handshake passes, the request is refused.
	nocert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err = nocert.Post("https://"+p.listen+"/v1/hello", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no certificate: %s, want 401", resp.Status)
	}
	if l := p.logs.String(); !strings.Contains(l, "refused peer request") || !strings.Contains(l, "no client certificate of this cluster") {
		t.Errorf("no-certificate refusal not logged:\n%s", l)
	}

	// Oversized and malformed join messages are refused, the agent lives on.
	for _, junk := range [][]byte{bytes.Repeat([]byte("x"), peer.MaxMessageSize+10), []byte(`{"v":1,"type":"join-request"`), []byte(`{"v":9}`)} {
		resp, err := nocert.Post("https://"+p.listen+"/v1/join", "application/json", bytes.NewReader(junk))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("junk of %d bytes: %s", len(junk), resp.Status)
		}
	}

	// The token works once; a second node using it is refused.
	s := startNode(t, "node-s")
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatal(err)
	}
	x := startNode(t, "node-x")
	_, err = x.c.Join(ctx, res.Token, p.listen)
	if err == nil || !strings.Contains(err.Error(), "join token already used") {
		t.Errorf("reused token: %v", err)
	}
	// An expired token (made with a 1s lifetime), refused by the primary
	// even when the joining side's clock would let it through.
	short, err := p.c.Token(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	y := startNode(t, "node-y")
	_, err = y.c.Join(ctx, short.Token, p.listen)
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	st, _ := ParseToken(short.Token)
	st.Expires = time.Now().Add(time.Hour).Unix() // a forged expiry: the primary checks its own record
	z := startNode(t, "node-z")
	_, err = z.c.Join(ctx, st.String(), p.listen)
	if err == nil || !strings.Contains(err.Error(), "join token expired") {
		t.Errorf("forged expiry: %v", err)
	}
	// A token for another CA: the joining side does not trust the primary.
	tok.CAFingerprint = strings.Repeat("0", 64)
	w := startNode(t, "node-w")
	_, err = w.c.Join(ctx, tok.String(), p.listen)
	if err == nil || !strings.Contains(err.Error(), "does not lead to the CA named in the join token") {
		t.Errorf("wrong CA pin: %v", err)
	}
	// Each refusal is one log line naming the reason and the peer's address.
	for _, reason := range []string{"join token already used", "join token expired"} {
		found := false
		for _, line := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(line, "refused join") && strings.Contains(line, "reason=\""+reason+"\"") && strings.Contains(line, "peer=127.0.0.1:") {
				found = true
			}
		}
		if !found {
			t.Errorf("no log line of a refused join with reason %q and the peer's address", reason)
		}
	}
	// The agent is still serving.
	if _, err := p.c.Status(ctx); err != nil {
		t.Errorf("agent down after refusals: %v", err)
	}
}

func TestTokenParse(t *testing.T) {
	tok := Token{ClusterID: "c", Primary: "node-p", CAFingerprint: strings.Repeat("a", 64), Secret: "0123456789abcdefghij", Expires: 1}
	got, err := ParseToken(tok.String())
	if err != nil || got != tok {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{"", "hello", "sentry1-!!!", "sentry1-e30"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

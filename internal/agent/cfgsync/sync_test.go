package cfgsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer"
)

// events records what a node's sync reports.
type events struct {
	mu  sync.Mutex
	all []string // kind: message
}

func (e *events) add(kind, node, msg string, _ map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, kind+": "+msg)
}

func (e *events) find(kind string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.all {
		if strings.HasPrefix(x, kind+": ") {
			return x
		}
	}
	return ""
}

// httpPeer posts to a test server: the peer link, without its TLS.
type httpPeer struct{ url string }

// FetchConfig asks in protocol 2's form (the agent's peer.Client speaks
// both; this is the server's side under test).
func (p httpPeer) FetchConfig(ctx context.Context, have string) (string, io.ReadCloser, error) {
	body, _ := json.Marshal(map[string]string{"have": have})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+FetchPath, bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	head := resp.Header.Get(peer.HeaderConfigHead)
	switch resp.StatusCode {
	case http.StatusNoContent:
		resp.Body.Close()
		return head, nil, nil
	case http.StatusOK:
		return head, resp.Body, nil
	}
	defer resp.Body.Close()
	if env, err := peer.Read(resp.Body); err == nil && env.Type == peer.TypeError {
		eb, _ := env.Error()
		return "", nil, fmt.Errorf("primary refused: %s", eb.Message)
	}
	return "", nil, fmt.Errorf("primary answered %s", resp.Status)
}

type testNode struct {
	s      *Sync
	ev     *events
	reload *recordReloader
}

// recordReloader records the reloads; the first fail of them fail with err.
type recordReloader struct {
	mu    sync.Mutex
	units [][]string
	fail  int
	err   error
}

func (r *recordReloader) Reload(_ context.Context, units []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.units = append(r.units, units)
	if len(r.units) <= r.fail {
		return r.err
	}
	return nil
}

func (r *recordReloader) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.units) }

func newTestNode(t *testing.T, name string, roots []string, p Peer, applyRoot string, backoff ...time.Duration) *testNode {
	t.Helper()
	return newTestNodeAt(t, name, t.TempDir(), roots, p, applyRoot, backoff...)
}

// newTestNodeAt is newTestNode with its state in stateDir (a node started
// again on the state another left).
func newTestNodeAt(t *testing.T, name, stateDir string, roots []string, p Peer, applyRoot string, backoff ...time.Duration) *testNode {
	t.Helper()
	cfg := config.Default()
	cfg.Node.Name, cfg.Node.StateDir = name, stateDir
	cfg.Sync.Debounce.Duration = 20 * time.Millisecond
	n := &testNode{ev: &events{}, reload: &recordReloader{}}
	n.s = New(Deps{
		Conf:  func() *config.Config { return &cfg },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Event: n.ev.add,
		Policy: func() (*synchronizer.Policy, []synchronizer.RootUnit) {
			return &synchronizer.Policy{Roots: append([]string{}, roots...)}, []synchronizer.RootUnit{{Root: roots[0], Unit: "web.service"}}
		},
		Peer: p,
		Refuse: func(w http.ResponseWriter, r *http.Request, code int, err error) {
			b, _ := peer.Encode(peer.TypeError, name, peer.ErrorBody{Message: err.Error()})
			w.WriteHeader(code)
			w.Write(b)
		},
		Reloader:     n.reload,
		ApplyRoot:    applyRoot,
		RetryBackoff: backoff,
	})
	t.Cleanup(func() { n.s.Stop(); n.s.Wait() })
	return n
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if ok() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A primary's commit reaches the secondary through the fetch handler and
// the Peer interface: applied under the apply root, its units reloaded and
// noted in the reload log, the status filled; a local edit there is drift;
// a rollback on the primary is a new commit.
func TestPrimaryToSecondary(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc/web")
	os.MkdirAll(etc, 0o755)
	conf := filepath.Join(etc, "web.conf")
	os.WriteFile(conf, []byte("listen 80;\n"), 0o644)

	p := newTestNode(t, "node-p", []string{etc}, nil, "")
	if err := p.s.Start(stamp.RolePrimary, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.s.Start(stamp.RolePrimary, nil); err != nil || !p.s.Running() {
		t.Fatalf("a second start: %v", err)
	}
	var head string
	waitFor(t, "the first commit", func() bool {
		var st peer.NodeStatus
		p.s.FillStatus(&st)
		head = st.ConfigHead
		return head != ""
	})
	if e := p.ev.find("config-commit"); !strings.Contains(e, "configuration commit "+head[:12]) {
		t.Errorf("commit event: %q", e)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+FetchPath, p.s.HandleFetch)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	applyRoot := t.TempDir()
	s := newTestNode(t, "node-s", []string{etc}, httpPeer{srv.URL}, applyRoot)
	if err := s.s.Start(stamp.RoleSecondary, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.s.SyncNow(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != head || !res.Changed {
		t.Fatalf("sync: %+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(applyRoot, conf)); string(b) != "listen 80;\n" {
		t.Errorf("applied file: %q", b)
	}
	if e := s.ev.find("config-applied"); !strings.Contains(e, "configuration "+head[:12]+" applied") || !strings.Contains(e, "reloaded web.service") {
		t.Errorf("applied event: %q", e)
	}
	now := time.Now()
	if got := s.s.Reloads().Disturbed(now, now, []string{"web.service"}); len(got) != 1 {
		t.Errorf("the reload log lacks the apply's reload: %v", got)
	}
	var st peer.NodeStatus
	s.s.FillStatus(&st)
	if st.ConfigHead != head || st.ConfigApplied != head || st.ConfigFailed != "" {
		t.Errorf("secondary status: %+v", st)
	}

	// A hello from the secondary: the primary notes its failure once.
	p.s.NotePeer(&peer.NodeStatus{Name: "node-s", ConfigFailed: head, ConfigError: "nginx refused"})
	if e := p.ev.find("peer-config-failed"); !strings.Contains(e, "node-s could not apply configuration "+head[:12]+": nginx refused") {
		t.Errorf("peer failure event: %q", e)
	}

	// A local edit on the secondary.
	os.WriteFile(filepath.Join(applyRoot, conf), []byte("listen 81;\npassword = hunter2\n"), 0o644)
	s.s.CheckDrift()
	items, err := s.s.Drift()
	if err != nil || len(items) != 1 {
		t.Fatalf("drift %+v %v", items, err)
	}
	if e := s.ev.find("config-drift-found"); !strings.Contains(e, "differs from the primary's configuration") {
		t.Errorf("drift event: %q", e)
	}
	if _, err := p.s.Drift(); err == nil {
		t.Error("drift on the primary")
	}

	// Changed on the primary, then rolled back as a new commit.
	os.WriteFile(conf, []byte("listen 8080;\n"), 0o644)
	waitFor(t, "the second commit", func() bool {
		var st peer.NodeStatus
		p.s.FillStatus(&st)
		return st.ConfigHead != head
	})
	rb, err := p.s.Rollback(head)
	// The primary's own reload goes to systemd, absent here: the rollback
	// is committed all the same.
	if rb == nil || rb.Restored != head || rb.Commit == "" {
		t.Fatalf("rollback: %+v %v", rb, err)
	}
	if b, _ := os.ReadFile(conf); string(b) != "listen 80;\n" {
		t.Errorf("rolled back file: %q", b)
	}
	if _, err := s.s.Rollback(head); err == nil {
		t.Error("rollback on the secondary")
	}
}

// The fetch handler refuses a bad request, and any fetch on a node that is
// not the primary.
func TestFetchRefusals(t *testing.T) {
	n := newTestNode(t, "node-s", []string{t.TempDir()}, nil, "")
	for _, c := range []struct {
		body string
		code int
	}{{"not json", http.StatusBadRequest}, {`{"have":""}`, http.StatusConflict}} {
		w := httptest.NewRecorder()
		n.s.HandleFetch(w, httptest.NewRequest(http.MethodPost, FetchPath, strings.NewReader(c.body)))
		if w.Code != c.code {
			t.Errorf("%q: %d, want %d", c.body, w.Code, c.code)
		}
	}
	// The secondary's fetcher reports the refusal's message.
	srv := httptest.NewServer(http.HandlerFunc(n.s.HandleFetch))
	defer srv.Close()
	s := newTestNode(t, "node-q", []string{t.TempDir()}, httpPeer{srv.URL}, t.TempDir())
	if _, _, err := s.s.fetcher()(context.Background(), [20]byte{}); err == nil || err.Error() != "primary refused: this node is not the primary" {
		t.Errorf("fetch from a node that is not the primary: %v", err)
	}
}

// A commit rolled back for a reason that may clear by itself is tried
// again by the secondary's loop (the status says when), and applies once
// the cause is gone.
func TestTransientFailureRetried(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc/web")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(filepath.Join(etc, "web.conf"), []byte("listen 80;\n"), 0o644)
	p := newTestNode(t, "node-p", []string{etc}, nil, "")
	if err := p.s.Start(stamp.RolePrimary, nil); err != nil {
		t.Fatal(err)
	}
	var head string
	waitFor(t, "the first commit", func() bool {
		var st peer.NodeStatus
		p.s.FillStatus(&st)
		head = st.ConfigHead
		return head != ""
	})
	srv := httptest.NewServer(http.HandlerFunc(p.s.HandleFetch))
	defer srv.Close()
	s := newTestNode(t, "node-s", []string{etc}, httpPeer{srv.URL}, t.TempDir(), 200*time.Millisecond, 200*time.Millisecond)
	// The apply's reload and its rollback's fail; the retry's goes through.
	s.reload.fail, s.reload.err = 2, &synchronizer.TransientError{Err: errors.New("web.service still reloading 20s after the reload")}
	if err := s.s.Start(stamp.RoleSecondary, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.s.SyncNow(context.Background(), false)
	if err != nil || res.Failed != head || !res.Transient {
		t.Fatalf("first sync: %+v %v", res, err)
	}
	var st peer.NodeStatus
	s.s.FillStatus(&st)
	if st.ConfigFailed != head || !strings.HasPrefix(st.ConfigRetry, "try 2 of 3 at ") {
		t.Errorf("status after the failure: %+v", st)
	}
	if e := s.ev.find("config-apply-failed"); !strings.Contains(e, "still reloading") || !strings.Contains(e, "trying again at") || !strings.Contains(e, "(try 2 of 3)") {
		t.Errorf("the failure event does not say it is retried: %q", e)
	}
	waitFor(t, "the retry", func() bool {
		var st peer.NodeStatus
		s.s.FillStatus(&st)
		return st.ConfigApplied == head && st.ConfigFailed == "" && st.ConfigRetry == ""
	})
	if n := s.reload.count(); n != 3 {
		t.Errorf("%d reloads, want 3", n)
	}
}

// A policy the modules changed restarts the sync, once; the same policy
// does not; nor does a restart the agent refuses (it stops).
func TestRestartIfPolicyChanged(t *testing.T) {
	root := t.TempDir()
	cfg := config.Default()
	cfg.Node.Name, cfg.Node.StateDir = "node-p", t.TempDir()
	ev := &events{}
	var mu sync.Mutex
	roots := []string{filepath.Join(root, "a")}
	allow := true
	var s *Sync
	s = New(Deps{
		Conf:  func() *config.Config { return &cfg },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Event: ev.add,
		Policy: func() (*synchronizer.Policy, []synchronizer.RootUnit) {
			mu.Lock()
			defer mu.Unlock()
			return &synchronizer.Policy{Roots: append([]string{}, roots...)}, nil
		},
		StartAgain: func() (bool, error) {
			mu.Lock()
			ok := allow
			mu.Unlock()
			if !ok || s.Running() {
				return false, nil
			}
			return true, s.Start(stamp.RolePrimary, nil)
		},
	})
	defer func() { s.Stop(); s.Wait() }()
	if err := s.Start(stamp.RolePrimary, nil); err != nil {
		t.Fatal(err)
	}
	s.RestartIfPolicyChanged()
	if e := ev.find("sync-policy"); e != "" {
		t.Fatalf("restarted with the same policy: %q", e)
	}
	mu.Lock()
	roots = append(roots, filepath.Join(root, "b"))
	mu.Unlock()
	s.RestartIfPolicyChanged()
	if e := ev.find("sync-policy"); !strings.Contains(e, "sync restarted with them") || !s.Running() {
		t.Fatalf("not restarted: %q, running %v", e, s.Running())
	}
	mu.Lock()
	roots, allow = roots[:1], false
	mu.Unlock()
	s.RestartIfPolicyChanged()
	if s.Running() {
		t.Error("restarted while the agent refused it")
	}
}

// A secondary that starts on a damaged mirror repairs it and fetches what
// it dropped at once: neither the primary's hello (its head is the one S
// applied) nor anything else would ask before the minute's tick.
func TestRepairAtStartFetchesAtOnce(t *testing.T) {
	etc := filepath.Join(t.TempDir(), "etc/web")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(filepath.Join(etc, "web.conf"), []byte("listen 80;\n"), 0o644)
	p := newTestNode(t, "node-p", []string{etc}, nil, "")
	if err := p.s.Start(stamp.RolePrimary, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first commit", func() bool {
		var st peer.NodeStatus
		p.s.FillStatus(&st)
		return st.ConfigHead != ""
	})
	var mu sync.Mutex
	count := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+FetchPath, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		mu.Unlock()
		p.s.HandleFetch(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	fetched := func() int { mu.Lock(); defer mu.Unlock(); return count }

	state, applyRoot := t.TempDir(), t.TempDir()
	s1 := newTestNodeAt(t, "node-s", state, []string{etc}, httpPeer{srv.URL}, applyRoot)
	if err := s1.s.Start(stamp.RoleSecondary, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.s.SyncNow(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	s1.s.Stop()
	s1.s.Wait()
	// Every loose object of the mirror garbled in its middle.
	damaged := 0
	filepath.Walk(filepath.Join(state, "config.git", "objects"), func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && len(fi.Name()) == 38 && fi.Size() > 8 {
			b, _ := os.ReadFile(path)
			for i := len(b) / 2; i < len(b); i++ {
				b[i] ^= 0x5a
			}
			os.WriteFile(path, b, 0o444)
			damaged++
		}
		return nil
	})
	if damaged == 0 {
		t.Fatal("the mirror holds no loose object to damage")
	}
	before := fetched()
	s2 := newTestNodeAt(t, "node-s", state, []string{etc}, httpPeer{srv.URL}, applyRoot)
	if err := s2.s.Start(stamp.RoleSecondary, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the repair's event", func() bool { return s2.ev.find("config-repaired") != "" })
	waitFor(t, "a fetch after the repair", func() bool { return fetched() > before })
	waitFor(t, "the mirror whole again", func() bool {
		s2.s.mu.Lock()
		sec := s2.s.secondary
		s2.s.mu.Unlock()
		return sec != nil && sec.Check() == nil
	})
}

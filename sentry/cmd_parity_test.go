package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// fakeAgent answers the local API on the fixture's socket with the
// handlers given, and records the bodies of the requests.
type fakeAgent struct {
	mu       sync.Mutex
	requests []string // "METHOD PATH BODY"
}

func startFakeAgent(t *testing.T, f *cliFixture, handlers map[string]http.HandlerFunc) *fakeAgent {
	t.Helper()
	fa := &fakeAgent{}
	mux := http.NewServeMux()
	for pattern, h := range handlers {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fa.mu.Lock()
			fa.requests = append(fa.requests, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
			fa.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			h(w, r)
		})
	}
	ln, err := net.Listen("unix", f.path("$DIR/run/agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fa
}

// take returns the requests recorded since the last call.
func (fa *fakeAgent) take() []string {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	r := fa.requests
	fa.requests = nil
	return r
}

func answer(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(v) }
}

// TestParityApplyDryRun: --dry-run is the one way to a dry run; --yes only
// skips the question; on a terminal the actions are shown and asked for.
func TestParityApplyDryRun(t *testing.T) {
	f := newCLIFixture(t)
	fa := startFakeAgent(t, f, map[string]http.HandlerFunc{
		"POST /v1/parity/apply": func(w http.ResponseWriter, r *http.Request) {
			var req parity.ApplyRequest
			json.NewDecoder(r.Body).Decode(&req)
			json.NewEncoder(w).Encode(parity.ApplyResult{DryRun: !req.Yes, Node: "node-s", DiskSet: "S",
				Actions: []parity.ApplyAction{{Action: "install", Target: "hello:all=1.0"}}})
		},
	})
	for _, c := range []struct {
		args     []string
		terminal string // typed on a terminal; "" for no terminal
		code     int
		yes      []string // the "yes" field of each request, in order
		out      string
	}{
		{[]string{"--dry-run"}, "", 0, []string{"false"}, "dry run on node-s (disk set S): nothing is changed; run without --dry-run to apply"},
		{[]string{"--dry-run", "--yes"}, "", 0, []string{"false"}, "dry run on node-s"},
		{[]string{"--yes"}, "", 0, []string{"true"}, "done install hello:all=1.0"},
		{[]string{}, "", 2, nil, ""},
		{[]string{}, "no\n", 1, []string{"false"}, ""},
		{[]string{}, "yes\n", 0, []string{"false", "true"}, "done install hello:all=1.0"},
		{[]string{"--json"}, "yes\n", 0, []string{"false", "true"}, `"dry_run": false`},
	} {
		var r cliResult
		args := append([]string{"parity", "apply"}, c.args...)
		if c.terminal != "" {
			r = f.run(openTerminal(t, c.terminal), args...)
		} else {
			r = f.run(strings.NewReader(""), args...)
		}
		var yes []string
		for _, req := range fa.take() {
			var ar parity.ApplyRequest
			if err := json.Unmarshal([]byte(strings.TrimPrefix(req, "POST /v1/parity/apply ")), &ar); err != nil {
				t.Fatalf("request %q: %v", req, err)
			}
			yes = append(yes, map[bool]string{true: "true", false: "false"}[ar.Yes])
		}
		if r.code != c.code || strings.Join(yes, ",") != strings.Join(c.yes, ",") || !strings.Contains(r.stdout, c.out) {
			t.Errorf("parity apply %v (terminal %q): exit %d, requests yes=%v; want %d, %v, stdout with %q\nstdout:\n%s\nstderr:\n%s",
				c.args, c.terminal, r.code, yes, c.code, c.yes, c.out, r.stdout, r.stderr)
		}
		if c.terminal != "" && !strings.Contains(r.stderr, "On node-s (disk set S):\n  install hello:all=1.0\nTake these 1 action(s) on node-s (disk set S)? Type 'yes': ") {
			t.Errorf("parity apply %v: the actions and the question are not on stderr:\n%s", c.args, r.stderr)
		}
	}
}

// TestNotInStep: drift, compat and config drift exit 1 when the nodes are
// not in step, with --json too (the result is printed either way); sync
// exits 1 when a commit failed to apply, with --json too.
func TestNotInStep(t *testing.T) {
	f := newCLIFixture(t)
	var mu sync.Mutex
	report := parity.Report{Node: "node-p", Role: "primary", Drift: inventory.DriftReport{State: inventory.StateInStep}}
	var drift []synchronizer.DriftItem
	synced := synchronizer.SyncResult{Applied: "abc"}
	startFakeAgent(t, f, map[string]http.HandlerFunc{
		"GET /v1/parity":       func(w http.ResponseWriter, r *http.Request) { mu.Lock(); defer mu.Unlock(); answer(report)(w, r) },
		"GET /v1/config/drift": func(w http.ResponseWriter, r *http.Request) { mu.Lock(); defer mu.Unlock(); answer(drift)(w, r) },
		"POST /v1/sync":        func(w http.ResponseWriter, r *http.Request) { mu.Lock(); defer mu.Unlock(); answer(synced)(w, r) },
	})
	yes := &inventory.CompatReport{DiskSet: "node-p", Boots: "yes"}
	no := &inventory.CompatReport{DiskSet: "node-s", Boots: "no", Because: []string{"no driver for 8086:10d3"}}
	for _, c := range []struct {
		set  func()
		args string
		code int
	}{
		{func() {}, "drift", 0},
		{func() {}, "drift --json", 0},
		{func() { report.Drift.State = inventory.StateDrifted }, "drift", 1},
		{func() {}, "drift --json", 1},
		{func() { report.Drift.State = inventory.StateUnknown }, "drift", 1},
		{func() { report.CompatPonB, report.CompatSonA = yes, yes }, "compat", 0},
		{func() {}, "compat --json", 0},
		{func() { report.CompatSonA = no }, "compat", 1},
		{func() {}, "compat --json", 1},
		{func() { report.CompatSonA = nil }, "compat", 1},
		{func() { report.CompatPonB = nil }, "compat --json", 1},
		{func() {}, "config drift", 0},
		{func() { drift = []synchronizer.DriftItem{{Path: "/etc/nginx/nginx.conf", What: "modified"}} }, "config drift", 1},
		{func() {}, "config drift --json", 1},
		{func() {}, "sync", 0},
		{func() { synced.Failed, synced.Error = "def", "nginx: reload failed" }, "sync", 1},
		{func() {}, "sync --json", 1},
	} {
		mu.Lock()
		c.set()
		mu.Unlock()
		r := f.run(strings.NewReader(""), strings.Fields(c.args)...)
		if r.code != c.code || r.stderr != "" || r.stdout == "" {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", c.args, r.code, c.code, r.stdout, r.stderr)
		}
		if strings.HasSuffix(c.args, "--json") && !json.Valid([]byte(r.stdout)) {
			t.Errorf("%s: not JSON:\n%s", c.args, r.stdout)
		}
	}
}

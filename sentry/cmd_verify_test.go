package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent/schedule"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/verifier"
)

func TestVerifyTablesShowValues(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rs := []store.StoredResult{
		{Node: "node-s", Probe: "mail", Kind: "mail", Start: now.Add(-time.Minute), DurationMS: 120, OK: true,
			Phases: []store.PhaseTiming{{Name: "smtp submit", MS: 40, OK: true}}, Values: map[string]string{"latency_ms": "87"}},
		{Node: "node-s", Probe: "web", Kind: "http", Start: now.Add(-time.Minute), DurationMS: 9, OK: false,
			Message: "status 404, want 200", FailedPhase: "check answer", Values: map[string]string{"tls_days_left": "12"}},
		{Node: "node-s", Probe: "disk /", Kind: "disk", Start: now.Add(-time.Minute), DurationMS: 1, OK: true,
			Values: map[string]string{"free_percent": "41.5", "zz_other": "1"}},
		// Stored by an older sentry: no values.
		{Node: "node-s", Probe: "raid", Kind: "raid", Start: now.Add(-time.Minute), DurationMS: 1, OK: true},
	}
	var out bytes.Buffer
	if err := printStoredResults(&out, rs, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, want := range []string{
		"submit to visible 87 ms",
		"phase check answer: status 404, want 200",
		"41.5% free, zz_other=1",
	} {
		if !strings.HasSuffix(lines[i+1], want) {
			t.Errorf("row %d: %q, want it to end in %q", i+1, lines[i+1], want)
		}
	}
	if !strings.HasSuffix(lines[4], "1ms") {
		t.Errorf("a result without values: %q", lines[4])
	}

	out.Reset()
	printDebug(&out, &schedule.ProbeDebug{Result: verifier.Result{Name: "web", Kind: "http", OK: true, Started: now,
		Phases: []verifier.Phase{{Name: "request", Duration: time.Millisecond}},
		Values: map[string]string{"tls_days_left": "12", "a": "b"}}, Log: "level=DEBUG msg=x\n"})
	if !strings.Contains(out.String(), "  request ") || !strings.Contains(out.String(), "  a = b\n  tls_days_left = 12\n\nprobe log:\nlevel=DEBUG") {
		t.Errorf("debug:\n%s", out.String())
	}
}

// `sentry verify --kind` prints the values by key, and --json carries them.
func TestVerifyKindValues(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		root := newRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"verify", "--kind", "disk", "--param", "path=" + dir, "--param", "min_free_percent=0"}, args...))
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	if out := run(); !strings.Contains(out, "disk OK") || !strings.Contains(out, "  free_percent = ") {
		t.Errorf("text:\n%s", out)
	}
	var r verifier.Result
	if err := json.Unmarshal([]byte(run("--json")), &r); err != nil || r.Values["free_percent"] == "" {
		t.Errorf("json: %+v, %v", r, err)
	}
}

// `sentry verify` asks the agent to run the probe set with the schedule's
// settings (no deadline sent unless --timeout is given, which makes the
// run ad hoc and says so) and prints the table; a failed probe exits 1.
func TestVerifyAsksTheAgent(t *testing.T) {
	f := newCLIFixture(t)
	ln, err := net.Listen("unix", f.path("$DIR/run/agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	var got []schedule.RunRequest
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/verify/now", func(w http.ResponseWriter, r *http.Request) {
		var req schedule.RunRequest
		json.NewDecoder(r.Body).Decode(&req)
		got = append(got, req)
		run := schedule.Run{AdHoc: req.TimeoutMS != 0, Results: []verifier.Result{
			{Name: "mail", Kind: "mail", OK: true, Duration: 87 * time.Millisecond, Values: map[string]string{"latency_ms": "87"}},
			{Name: "web", Kind: "http", OK: req.Service == "mail", Message: "check answer: status 404, want 200"},
		}}
		json.NewEncoder(w).Encode(run)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	r := f.run(nil, "verify")
	if r.code != 1 || !strings.Contains(r.stdout, "submit to visible 87 ms") || !strings.Contains(r.stdout, "FAILED  0s    check answer: status 404, want 200") ||
		strings.Contains(r.stdout, "ad hoc") || r.stderr != "" {
		t.Errorf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = f.run(nil, "verify", "--service", "mail", "--json")
	var rs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rs); r.code != 0 || err != nil || len(rs) != 2 || rs[0]["name"] != "mail" || rs[0]["ad_hoc"] != nil {
		t.Errorf("verify --json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	r = f.run(nil, "verify", "--service", "mail", "--timeout", "5s", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &rs); r.code != 0 || err != nil || len(rs) != 2 || rs[0]["ad_hoc"] != true {
		t.Errorf("verify --timeout 5s --json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	r = f.run(nil, "verify", "--service", "mail", "--timeout", "5s")
	if !strings.HasSuffix(r.stdout, adHocNote+"\n") {
		t.Errorf("an ad hoc run not marked:\n%s", r.stdout)
	}
	want := []schedule.RunRequest{{}, {Service: "mail"}, {Service: "mail", TimeoutMS: 5000}, {Service: "mail", TimeoutMS: 5000}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests %+v, want %+v", got, want)
	}
}

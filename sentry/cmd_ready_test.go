package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agentclient"
	"github.com/sentryha/sentry/internal/readiness"
)

// TestReadyExitCodes runs `sentry ready` against a fake agent on a unix
// socket: exit 0 READY, 1 NOT READY, 5 UNKNOWN; blocking reasons first,
// then warnings, each with evidence and fix.
func TestReadyExitCodes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var res readiness.Result
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ready", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(res) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	c := agentclient.New(sock)
	ctx := context.Background()

	now := time.Now()
	contact := now.Add(-10 * time.Minute)
	peerIn := func(contact time.Time) *readiness.Input {
		return &readiness.Input{Now: now, Self: "node-p", PeerContact: contact, PeerReachable: false, PeerError: "connection refused"}
	}
	for _, tc := range []struct {
		name  string
		res   readiness.Result
		code  int
		wants []string
	}{
		{"ready", readiness.Result{Verdict: readiness.Ready, At: now, Findings: []readiness.Finding{
			{Check: "peer", State: readiness.Pass, Severity: readiness.Block, Reason: "the peer answers"},
			{Check: "disks", State: readiness.NA, Severity: readiness.Warn, Reason: "no SMART"}}}, 0,
			[]string{"READY (judged 0s ago)\n", "1 passed, 1 not applicable"}},
		// The peer gone: the verdict says so, with its age.
		{"peer gone", readiness.Default().Evaluate(peerIn(contact)), 1,
			[]string{"NOT READY", "Blocking:\n  peer             fail    the peer has not answered for 10m: connection refused\n",
				"last contact = measured 10m ago (10m old)", "fix: sentry status"}},
		{"unknown", readiness.Result{Verdict: readiness.Unknown, At: now, Findings: []readiness.Finding{
			{Check: "verify.green", State: readiness.Stale, Severity: readiness.Block, Blocks: true, Reason: "results too old", Fix: "sentry verify --last"},
			{Check: "disks", State: readiness.Fail, Severity: readiness.Warn, Reason: "SMART says FAILED", Evidence: []readiness.Evidence{{Node: "node-s", What: "sda", Value: "FAILED"}}}}}, 5,
			[]string{"UNKNOWN", "Blocking:\n  verify.green     unknown results too old\n", "\nWarnings:\n  disks            fail    SMART says FAILED\n", "node-s: sda = FAILED"}},
	} {
		res = tc.res
		var out bytes.Buffer
		err := runReady(ctx, c, &out, false)
		code := 0
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", tc.name, code, tc.code, out.String())
		}
		for _, w := range tc.wants {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: no %q in\n%s", tc.name, w, out.String())
			}
		}
		if b := strings.Index(out.String(), "Blocking:"); b >= 0 {
			if w := strings.Index(out.String(), "Warnings:"); w >= 0 && w < b {
				t.Errorf("%s: warnings before blocking reasons\n%s", tc.name, out.String())
			}
		}
		// --json: the same exit code, the result and each check's meaning.
		out.Reset()
		err = runReady(ctx, c, &out, true)
		if code := exitOf(err); code != tc.code {
			t.Errorf("%s --json: exit %d, want %d", tc.name, code, tc.code)
		}
		var got struct {
			Verdict string            `json:"verdict"`
			Checks  map[string]string `json:"checks"`
		}
		if json.Unmarshal(out.Bytes(), &got) != nil || got.Verdict != string(tc.res.Verdict) || got.Checks["raid"] == "" {
			t.Errorf("%s --json:\n%s", tc.name, out.String())
		}
	}
}

func exitOf(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return -1
	}
	return 0
}

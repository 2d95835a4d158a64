package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/sentryha/sentry/internal/agentclient"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/synchronizer"
)

// TestConfigHistoryCommands runs config log, show and diff against the
// agent's history routes on a unix socket, over a real repository with a
// per-node overlay file.
func TestConfigHistoryCommands(t *testing.T) {
	root := t.TempDir()
	ovDisk := filepath.Join(root, "etc/sentry/nodes") // the overlay folder on disk (Policy.OverlayDir)
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	ov := filepath.Join(ovDisk, "node-s", conf)
	ovRepo := filepath.Join(synchronizer.OverlayDir, "node-s", conf) // its path in the repository
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.MkdirAll(filepath.Dir(ov), 0o755)
	os.WriteFile(conf, []byte("worker_processes auto;\n"), 0o644)
	dir := filepath.Join(t.TempDir(), "config.git")
	r, err := synchronizer.OpenRepo(dir, "node-p", &synchronizer.Policy{Roots: []string{filepath.Join(root, "etc/nginx"), ovDisk}, OverlayDir: ovDisk})
	if err != nil {
		t.Fatal(err)
	}
	r.ScanAll()
	if _, err := r.Commit("first", time.Now()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(ov, []byte("worker_processes 1;\n"), 0o644)
	r.ScanAll()
	c2, err := r.Commit("node-s own", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	second := c2.Hash.String()

	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&cfgsync.History{Dir: dir}).Routes(mux, func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(v)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	c := agentclient.New(sock)
	ctx := context.Background()

	var out, errOut bytes.Buffer
	if err := runConfigLog(ctx, c, &out, 20, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], second[:12]+"  ") || !strings.Contains(lines[0], "  node-s own: 1 path(s)") || !strings.Contains(lines[1], "  first: ") {
		t.Errorf("config log:\n%s", out.String())
	}
	out.Reset()
	if err := runConfigLog(ctx, c, &out, 1, true); err != nil {
		t.Fatal(err)
	}
	var log []map[string]any
	if json.Unmarshal(out.Bytes(), &log) != nil || len(log) != 1 || log[0]["commit"] != second || !strings.HasPrefix(log[0]["subject"].(string), "node-s own") {
		t.Errorf("config log --json:\n%s", out.String())
	}

	out.Reset()
	if err := runConfigShow(ctx, c, &out, &errOut, "HEAD", conf, "", false); err != nil {
		t.Fatal(err)
	}
	if out.String() != "worker_processes auto;\n" || !strings.Contains(errOut.String(), "note: node-s gets its own version of "+conf+" ("+ovRepo+"; --node node-s shows it)") {
		t.Errorf("config show: stdout %q stderr %q", out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if err := runConfigShow(ctx, c, &out, &errOut, "HEAD", conf, "node-s", false); err != nil {
		t.Fatal(err)
	}
	if out.String() != "worker_processes 1;\n" || errOut.String() != "overlay file: "+ovRepo+" replaces "+conf+" on node-s\n" {
		t.Errorf("config show --node node-s: stdout %q stderr %q", out.String(), errOut.String())
	}
	out.Reset()
	if err := runConfigShow(ctx, c, &out, &errOut, "HEAD", "/etc/hosts", "", true); err == nil || err.Error() != "/etc/hosts is not a tracked file in "+second[:12] {
		t.Errorf("config show of an untracked file: %v", err)
	}

	out.Reset()
	if err := runConfigDiff(ctx, c, &out, "", false, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "commit "+second+"\nnode-s own") ||
		!strings.Contains(out.String(), "\noverlay file: nodes/node-s/files"+conf+" replaces "+conf+" on node-s\ndiff --git ") ||
		!strings.Contains(out.String(), "+worker_processes 1;") {
		t.Errorf("config diff:\n%s", out.String())
	}
	out.Reset()
	if err := runConfigDiff(ctx, c, &out, "HEAD", true, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), conf+" on node-s (- common, + node-s):\n") {
		t.Errorf("config diff --nodes:\n%s", out.String())
	}
	out.Reset()
	if err := runConfigDiff(ctx, c, &out, "HEAD~1", true, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "no per-node files in ") {
		t.Errorf("config diff --nodes HEAD~1:\n%s", out.String())
	}
	if got := describeRev(ctx, c, "HEAD~1"); !strings.Contains(got, ", first: ") {
		t.Errorf("describeRev: %q", got)
	}
}

package cfgsync

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/synchronizer"
)

// historyRepo makes a primary's repository in a temp dir: a first commit
// with a common nginx.conf, a second that changes it and adds node-s's own
// version. Its overlay folder on disk is under the temp root
// (Policy.OverlayDir); in the repository it is synchronizer.OverlayDir.
func historyRepo(t *testing.T) (h *History, conf string, first, second string) {
	t.Helper()
	root := t.TempDir()
	ovDisk := filepath.Join(root, "etc/sentry/nodes") // the overlay folder on disk (Policy.OverlayDir)
	conf = filepath.Join(root, "etc/nginx/nginx.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.MkdirAll(ovDisk, 0o755)
	os.WriteFile(conf, []byte("worker_processes auto;\n"), 0o644)
	pol := &synchronizer.Policy{Roots: []string{filepath.Join(root, "etc/nginx"), ovDisk}, OverlayDir: ovDisk}
	dir := filepath.Join(t.TempDir(), "config.git")
	r, err := synchronizer.OpenRepo(dir, "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	commit := func(why string) string {
		t.Helper()
		if err := r.ScanAll(); err != nil {
			t.Fatal(err)
		}
		c, err := r.Commit(why, time.Now())
		if err != nil || c == nil || c.Hash.IsZero() {
			t.Fatalf("commit %q: %+v %v", why, c, err)
		}
		return c.Hash.String()
	}
	first = commit("first")
	os.WriteFile(conf, []byte("worker_processes 4;\n"), 0o644)
	ov := filepath.Join(ovDisk, "node-s", conf)
	os.MkdirAll(filepath.Dir(ov), 0o755)
	os.WriteFile(ov, []byte("worker_processes 1; # node-s only\n"), 0o644)
	second = commit("second\n\nwith node-s's own nginx.conf")
	return &History{Dir: dir}, conf, first, second
}

func TestHistoryLog(t *testing.T) {
	h, _, first, second := historyRepo(t)
	log, err := h.Log("", 20)
	if err != nil || len(log) != 2 || log[0].Commit != second || log[1].Commit != first || log[0].Subject != "second" {
		t.Fatalf("log %+v %v", log, err)
	}
	if log, err := h.Log("", 1); err != nil || len(log) != 1 {
		t.Fatalf("log -n 1: %+v %v", log, err)
	}
	if log, err := h.Log(first, 5); err != nil || len(log) != 1 || log[0].Commit != first {
		t.Fatalf("log from %s: %+v %v", first, log, err)
	}
	if _, err := (&History{Dir: filepath.Join(t.TempDir(), "none.git")}).Log("", 1); err == nil || !strings.Contains(err.Error(), "repository does not exist") {
		t.Errorf("no repository: %v", err)
	}
}

func TestHistoryShowOverlays(t *testing.T) {
	h, conf, first, second := historyRepo(t)
	ov := synchronizer.OverlayDir + "/node-s" + conf
	for _, c := range []struct {
		name, rev, path, node string
		want                  ShowResult
	}{
		{"common file, with the nodes that replace it", "HEAD", conf, "",
			ShowResult{Commit: second, Path: conf, Content: "worker_processes 4;\n", Overlays: []Overlay{{Node: "node-s", File: ov}}}},
		{"as node-s gets it", "", conf, "node-s",
			ShowResult{Commit: second, Path: conf, Content: "worker_processes 1; # node-s only\n", Node: "node-s", Overlay: ov, AppliesTo: conf}},
		{"as node-p gets it", "", conf, "node-p",
			ShowResult{Commit: second, Path: conf, Content: "worker_processes 4;\n", Node: "node-p"}},
		{"the overlay file itself", "HEAD", ov, "",
			ShowResult{Commit: second, Path: ov, Content: "worker_processes 1; # node-s only\n", Node: "node-s", Overlay: ov, AppliesTo: conf}},
		{"an older commit", first, conf, "",
			ShowResult{Commit: first, Path: conf, Content: "worker_processes auto;\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := h.Show(c.rev, c.path, c.node)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(c.want)
			if string(g) != string(w) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
	if _, err := h.Show("HEAD", "/etc/hosts", ""); err == nil || err.Error() != "/etc/hosts is not a tracked file in "+second[:12] {
		t.Errorf("untracked: %v", err)
	}
	if _, err := h.Show("nosuch", conf, ""); err == nil || !strings.Contains(err.Error(), `revision "nosuch"`) {
		t.Errorf("bad rev: %v", err)
	}
}

func TestHistoryDiff(t *testing.T) {
	h, conf, first, second := historyRepo(t)
	d, err := h.Diff("")
	if err != nil {
		t.Fatal(err)
	}
	if d.Commit != second || !strings.Contains(d.Patch, "+worker_processes 4;") || !strings.Contains(d.Patch, "+worker_processes 1; # node-s only") {
		t.Fatalf("diff %+v", d)
	}
	var ovFile *DiffFile
	for i, f := range d.Files {
		if f.Node != "" {
			ovFile = &d.Files[i]
		}
	}
	if ovFile == nil || ovFile.Node != "node-s" || ovFile.AppliesTo != conf || ovFile.To != "nodes/node-s/files"+conf {
		t.Errorf("overlay file in the diff: %+v", d.Files)
	}
	if d, err := h.Diff(first); err != nil || d.Commit != first || !strings.Contains(d.Patch, "+worker_processes auto;") {
		t.Errorf("diff of the first commit: %+v %v", d, err)
	}
	c, ds, err := h.NodeDiffs("HEAD")
	if err != nil || c != second || len(ds) != 1 || ds[0].Node != "node-s" || ds[0].Path != conf {
		t.Errorf("node diffs %s %+v %v", c, ds, err)
	}
	if _, ds, err := h.NodeDiffs(first); err != nil || len(ds) != 0 {
		t.Errorf("node diffs of the first commit %+v %v", ds, err)
	}
}

func TestHistoryRoutes(t *testing.T) {
	h, conf, _, second := historyRepo(t)
	mux := http.NewServeMux()
	h.Routes(mux, func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(v)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string, v any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
	var log []LogEntry
	if code := get("/v1/config/log?n=1", &log); code != 200 || len(log) != 1 || log[0].Commit != second {
		t.Errorf("log: %d %+v", code, log)
	}
	var show ShowResult
	if code := get("/v1/config/show?rev=HEAD&node=node-s&path="+conf, &show); code != 200 || show.Node != "node-s" {
		t.Errorf("show: %d %+v", code, show)
	}
	var diff DiffResult
	if code := get("/v1/config/diff", &diff); code != 200 || diff.Commit != second {
		t.Errorf("diff: %d %+v", code, diff)
	}
	var nd NodeDiffsResult
	if code := get("/v1/config/diff?nodes=true&rev=HEAD", &nd); code != 200 || len(nd.Nodes) != 1 {
		t.Errorf("diff --nodes: %d %+v", code, nd)
	}
	if code := get("/v1/config/show?rev=nosuch&path="+conf, &show); code != 500 {
		t.Errorf("bad rev: %d", code)
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/lab"
)

// webNginx2 is version 1.1.0 of the built-in web-nginx: another canary
// page, one more probe (of that page, by host name), one more tracked path.
const webNginx2 = `# Version 1.1.0 of web-nginx: also fetch the canary page by name.
schema = 2
name = "web-nginx"
version = "1.1.0"
kind = "web"
description = "nginx web server, canary also fetched by host name"
packages = ["nginx"]
tracked = ["/etc/nginx", "/etc/sentry-web-extra"]

[[units]]
name = "nginx.service"
action = "reload"
order = 10

[canary]
page = "/var/www/html/sentry-canary-1.1.html"
marker = "sentry-canary-1.1-ok"

[[probes]]
name = "web"
kind = "http"
params = { url = "http://127.0.0.1/sentry-canary.html", marker = "sentry-canary-ok" }

[[probes]]
name = "web by name"
kind = "http"
params = { url = "http://localhost/sentry-canary-1.1.html", marker = "sentry-canary-1.1-ok" }

[[probes]]
name = "unit nginx"
kind = "systemd"
params = { unit = "nginx.service" }
`

type peerView struct {
	Name          string `json:"name"`
	Reachable     bool   `json:"reachable"`
	AgentVersion  string `json:"agent_version"`
	Verify        string `json:"verify"`
	Error         string `json:"error"`
	ConfigApplied string `json:"config_applied"`
	// What S holds back of P's modules until approved there.
	BoundaryPending []string `json:"boundary_pending"`
}

// statusNodes is set's `sentry status --json`, by node name.
func statusNodes(t *testing.T, set string) map[string]peerView {
	t.Helper()
	var st struct {
		Nodes []peerView `json:"nodes"`
	}
	out := sentry(t, "lab", "exec", set, "--", "sentry", "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	m := map[string]peerView{}
	for _, n := range st.Nodes {
		m[n.Name] = n
	}
	return m
}

// TestModules: the built-in modules drive the lab's probes; version 1.1.0
// of a module installed and selected on P runs on both nodes, and a
// rollback brings 1.0.0 back on both; then a pair of mixed versions (S
// running the previous release, peer protocol 2) exchanges status,
// results, inventories and the configuration.
func TestModules(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })
	sentry(t, "lab", "pair")
	sentry(t, "lab", "exec", "P", "--", "sentry", "verifier", "setup")
	bothGreen := func(n string) func() bool {
		return func() bool {
			st := statusNodes(t, "P")
			return strings.HasPrefix(st["node-p"].Verify, n+"/"+n+" green") && strings.HasPrefix(st["node-s"].Verify, n+"/"+n+" green")
		}
	}
	waitUntil(t, "both nodes 15/15 green with the built-in modules", 90*time.Second, bothGreen("15"))

	var list []struct {
		Name     string `json:"name"`
		Selected string `json:"selected"`
		Origin   string `json:"origin"`
	}
	out := sentry(t, "lab", "exec", "P", "--", "sentry", "modules", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("modules list --json: %v\n%s", err, out)
	}
	if len(list) != 8 {
		t.Fatalf("%d built-in modules listed, want 8:\n%s", len(list), out)
	}

	// Version 1.1.0, installed on P: selected, synced, run on both.
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", "mkdir -p /etc/sentry-web-extra && echo '# extra, tracked by web-nginx 1.1.0' > /etc/sentry-web-extra/site.conf")
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", "cat > /root/web-nginx-1.1.0.toml <<'EOF'\n"+webNginx2+"EOF")
	inst := sentry(t, "lab", "exec", "P", "--", "sentry", "modules", "install", "/root/web-nginx-1.1.0.toml")
	if !strings.Contains(inst, "web-nginx: 1.1.0") {
		t.Fatalf("install did not select 1.1.0:\n%s", inst)
	}
	// Its canary page: made by the setup on P, and by S's agent when the
	// declaration reaches it.
	sentry(t, "lab", "exec", "P", "--", "sentry", "verifier", "setup")
	waitFileOn(t, "S", "/var/www/html/sentry-canary-1.1.html", "sentry-canary-1.1-ok", 60*time.Second)
	waitUntil(t, "both nodes 16/16 green with web-nginx 1.1.0", 90*time.Second, bothGreen("16"))
	// 1.1.0 also tracks /etc/sentry-web-extra: P's sync follows without an
	// agent restart. S holds the new path back (a primary must not widen
	// what the secondary writes) until the operator approves it on S; then
	// a file there (made on P before the install) reaches S.
	waitEvent(t, "P", "sync-policy", "sync restarted", 30*time.Second)
	waitEvent(t, "S", "boundary-pending", "/etc/sentry-web-extra", 30*time.Second)
	waitUntil(t, "S's pending path in P's status", 30*time.Second, func() bool {
		return contains(statusNodes(t, "P")["node-s"].BoundaryPending, "/etc/sentry-web-extra")
	})
	time.Sleep(2 * time.Second) // a sync or two later
	if _, err := sentryErr("lab", "exec", "S", "--", "test", "-e", "/etc/sentry-web-extra/site.conf"); err == nil {
		t.Fatal("the path web-nginx 1.1.0 added reached S before approval")
	}
	approved := sentry(t, "lab", "exec", "S", "--", "sentry", "modules", "approve", "--yes")
	if !strings.Contains(approved, "under /etc/sentry-web-extra") {
		t.Fatalf("modules approve on S:\n%s", approved)
	}
	waitEvent(t, "S", "sync-policy", "sync restarted", 30*time.Second)
	waitFileOn(t, "S", "/etc/sentry-web-extra/site.conf", "# extra, tracked by web-nginx 1.1.0", 30*time.Second)
	if p := statusNodes(t, "S")["node-s"].BoundaryPending; len(p) != 0 {
		t.Errorf("still pending on S after approval: %v", p)
	}
	if r := nodeResults(t, "P", "node-s")["web by name"]; !r.OK || len(r.Phases) == 0 {
		t.Fatalf("S's new probe as P sees it: %+v", r)
	}
	// Roll back: 1.0.0 again, pinned, on both nodes.
	sentry(t, "lab", "exec", "P", "--", "sentry", "modules", "rollback", "--yes", "web-nginx")
	waitUntil(t, "both nodes back to 15/15 green", 90*time.Second, bothGreen("15"))
	sl := sentry(t, "lab", "exec", "S", "--", "sentry", "modules", "show", "web-nginx")
	if !strings.Contains(sl, "1.0.0") || !strings.Contains(sl, "pinned") {
		t.Fatalf("S after the rollback:\n%s", sl)
	}

	// A mixed pair: S runs the previous release (peer protocol 2), built
	// from its commit.
	old := previousReleaseBin(t)
	installAgent(t, "S", old)
	checkMixedPair(t, "S", "first mixed pair")

	// The other way round: the secondary updated first (the current
	// build), the primary still on the previous release. The newer S
	// must not make the older P malfunction.
	installAgent(t, "S", sentryBin)
	installAgent(t, "P", old)
	checkMixedPair(t, "P", "older primary")
}

// checkMixedPair restarts both agents, set older running the previous
// release, and checks that the pair works: each sees the other (the older
// by its version), fresh results cross both ways, the newer one has the
// older's inventory (protocol 2 has it), the configuration still flows
// from P to S (the fetch in protocol 2's form when P is the older), both
// stay green and no module set is refused. marker is written into a
// synced file.
func checkMixedPair(t *testing.T, older, marker string) {
	t.Helper()
	newer := map[string]string{"P": "S", "S": "P"}[older]
	node := map[string]string{"P": "node-p", "S": "node-s"}
	for _, set := range []string{"P", "S"} {
		sentry(t, "lab", "exec", set, "--", "systemctl", "restart", "sentry-agent")
	}
	since := time.Now()
	waitUntil(t, "the previous release on "+older+" and the current "+newer+" see each other", 60*time.Second, func() bool {
		o := statusNodes(t, newer)[node[older]]
		n := statusNodes(t, older)[node[newer]]
		return o.Reachable && n.Reachable && o.Error == "" && o.AgentVersion == previousVersion && n.AgentVersion != previousVersion
	})
	for _, set := range []string{"P", "S"} {
		other := node[map[string]string{"P": "S", "S": "P"}[set]]
		waitUntil(t, fmt.Sprintf("fresh results of %s on %s (the previous release on %s)", other, set, older), 60*time.Second, func() bool {
			r := nodeResults(t, set, other)["mail"]
			return r.OK && r.Start.After(since)
		})
	}
	waitUntil(t, newer+" has the inventory of the previous release", 60*time.Second, func() bool {
		// Both inventories at hand: the drift is known (in step or not),
		// and no line says why the peer's is missing.
		js, _ := sentryErr("lab", "exec", newer, "--", "sentry", "drift", "--json")
		var d struct {
			State string `json:"state"`
		}
		text, _ := sentryErr("lab", "exec", newer, "--", "sentry", "drift")
		return json.Unmarshal([]byte(js), &d) == nil && d.State != "unknown" && d.State != "" && !strings.Contains("\n"+text, "\npeer: ")
	})
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", "echo '# "+marker+"' > /etc/nginx/conf.d/sentry-mixed.conf")
	waitFileOn(t, "S", "/etc/nginx/conf.d/sentry-mixed.conf", "# "+marker, 30*time.Second)
	waitUntil(t, "both green in the mixed pair (the previous release on "+older+")", 60*time.Second, func() bool {
		st := statusNodes(t, "P")
		return strings.HasPrefix(st["node-p"].Verify, "15/15 green") && strings.HasPrefix(st["node-s"].Verify, "15/15 green")
	})
	for _, set := range []string{"P", "S"} {
		if ev := sentry(t, "lab", "exec", set, "--", "sentry", "events", "-n", "500"); strings.Contains(ev, "modules-invalid") {
			t.Fatalf("a module set was refused on %s in the mixed pair:\n%s", set, ev)
		}
	}
}

// installAgent puts the sentry binary at path on disk set set, replacing
// the one the lab installed (temp file, rename: the running agent keeps its
// file until it restarts).
func installAgent(t *testing.T, set, path string) {
	t.Helper()
	// The package's binary, replaced under dpkg's feet: the rolling
	// upgrade (TestRollingUpgrade) is the test of upgrading by package.
	dst := filepath.Join(lab.DefaultStateDir, labName, "sets", set, "root", "usr/bin/sentry")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".new", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		t.Fatal(err)
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/lab"
)

// officeGet fetches a path from a node's web server, as a client in the
// office would.
func officeGet(host, path string) (int, string, error) {
	tr := &http.Transport{Dial: func(network, addr string) (net.Conn, error) { return officeDial(addr) }, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 3 * time.Second}).Get("http://" + host + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), nil
}

type event struct {
	Time    time.Time         `json:"time"`
	Kind    string            `json:"kind"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

func events(t *testing.T, set string) []event {
	t.Helper()
	var evs []event
	if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", set, "--", "sentry", "events", "-n", "500", "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

func waitEvent(t *testing.T, set, kind, contains string, timeout time.Duration) event {
	t.Helper()
	return waitEventAfter(t, set, kind, contains, time.Time{}, timeout)
}

// waitEventAfter is waitEvent for an event stamped after after (the nodes
// share the host's clock).
func waitEventAfter(t *testing.T, set, kind, contains string, after time.Time, timeout time.Duration) event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, e := range events(t, set) {
			if e.Kind == kind && strings.Contains(e.Message, contains) && e.Time.After(after) {
				return e
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no %s event containing %q on %s within %s", kind, contains, set, timeout)
	return event{}
}

// TestConfigSync: a change on P is committed, applied on S (same owner and
// mode), nginx on S reloaded and serving it; a broken config is rolled back
// on S; what must not cross does not; a rollback on P is followed by S.
func TestConfigSync(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })
	sentry(t, "lab", "pair")
	s := strings.Split(lab.Sets[1].Address, "/")[0]
	site := "/etc/nginx/sites-enabled/default"
	waitEvent(t, "S", "config-applied", "", 20*time.Second)
	var first []struct {
		Commit string `json:"commit"`
	}
	json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "config", "log", "--json")), &first)
	if len(first) == 0 {
		t.Fatal("no commit on P after pairing")
	}

	t.Run("edit on P is served by S", func(t *testing.T) {
		// Two figures: from the command (lab exec's own start included)
		// and from the change itself (the file's modification time on
		// P: the nodes share the host's clock).
		var lat, fromChange []time.Duration
		for i := 1; i <= 20; i++ {
			marker := fmt.Sprintf("marker-%d", i)
			var expr string
			if i == 1 {
				expr = `s|^\tserver_name _;|\tserver_name _;\n\tlocation = /sentry-marker { return 200 "marker-1\\n"; }|`
			} else {
				expr = fmt.Sprintf(`s|marker-%d|%s|`, i-1, marker)
			}
			start := time.Now()
			sentry(t, "lab", "exec", "P", "--", "sed", "-i", "--follow-symlinks", expr, site)
			served := false
			for time.Since(start) < 5*time.Second {
				if code, body, err := officeGet(s, "/sentry-marker"); err == nil && code == 200 && strings.TrimSpace(body) == marker {
					served = true
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !served {
				t.Fatalf("edit %d not served by S within 5 s", i)
			}
			at := time.Now()
			lat = append(lat, at.Sub(start))
			mt := strings.TrimSpace(sentry(t, "lab", "exec", "P", "--", "stat", "-L", "-c", "%.9Y", site))
			if sec, err := strconv.ParseFloat(mt, 64); err == nil {
				fromChange = append(fromChange, at.Sub(time.Unix(0, int64(sec*1e9))))
			} else {
				t.Fatalf("stat of %s on P: %q", site, mt)
			}
		}
		for _, l := range [][]time.Duration{lat, fromChange} {
			sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		}
		figure(t, "change on P to served by S, 20 edits: median %s, min %s, max %s (from the sed command, lab exec included)",
			lat[10].Round(time.Millisecond), lat[0].Round(time.Millisecond), lat[19].Round(time.Millisecond))
		figure(t, "change on P to served by S, 20 edits: median %s, min %s, max %s (from the file's change on P)",
			fromChange[10].Round(time.Millisecond), fromChange[0].Round(time.Millisecond), fromChange[19].Round(time.Millisecond))
		// Same owner, group and mode on both.
		stat := func(set string) string {
			return strings.TrimSpace(sentry(t, "lab", "exec", set, "--", "stat", "-L", "-c", "%U %G %a %s", site))
		}
		if p, q := stat("P"), stat("S"); p != q {
			t.Errorf("P has %q, S has %q", p, q)
		}
		if out := sentry(t, "lab", "exec", "P", "--", "sentry", "config", "show", "HEAD:/etc/nginx/sites-available/default"); !strings.Contains(out, "marker-20") {
			t.Errorf("config show lacks the marker:\n%.300s", out)
		}
		if out := sentry(t, "lab", "exec", "P", "--", "sentry", "config", "diff"); !strings.Contains(out, "+\tlocation = /sentry-marker { return 200 \"marker-20") {
			t.Errorf("config diff lacks the change:\n%.600s", out)
		}
	})

	t.Run("broken config rolls back on S", func(t *testing.T) {
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", "echo 'this is not nginx syntax' > /etc/nginx/conf.d/broken.conf")
		waitEvent(t, "S", "config-apply-failed", "nginx.service refused its new configuration", 15*time.Second)
		waitEvent(t, "P", "peer-config-failed", "node-s could not apply", 15*time.Second)
		if code, body, err := officeGet(s, "/sentry-marker"); err != nil || code != 200 || !strings.Contains(body, "marker-20") {
			t.Errorf("S stopped serving after the broken config: %d %q %v", code, body, err)
		}
		if _, err := sentryErr("lab", "exec", "S", "--", "test", "-e", "/etc/nginx/conf.d/broken.conf"); err == nil {
			t.Error("the broken file stayed on S")
		}
		var st struct {
			Nodes []struct {
				Name         string `json:"name"`
				ConfigFailed string `json:"config_failed"`
				ConfigError  string `json:"config_error"`
			} `json:"nodes"`
		}
		json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "status", "--json")), &st)
		reported := false
		for _, n := range st.Nodes {
			if n.Name == "node-s" && n.ConfigFailed != "" && strings.Contains(n.ConfigError, "nginx") {
				reported = true
			}
		}
		if !reported {
			t.Errorf("P's status does not show S's failed apply: %+v", st)
		}
		// Fixed on P: S applies again.
		sentry(t, "lab", "exec", "P", "--", "rm", "/etc/nginx/conf.d/broken.conf")
		waitEvent(t, "S", "config-applied", "reloaded nginx.service", 15*time.Second)
	})

	t.Run("what must not cross does not", func(t *testing.T) {
		d := "/etc/nginx/conf.d/"
		script := `set -e
printf '#!/bin/sh\necho pwned\n' > ` + d + `hook.conf
printf 'x\n' > ` + d + `suid.conf; chmod 4644 ` + d + `suid.conf
ln -s /etc/shadow ` + d + `shadow.conf
ln -s ../../../../etc/passwd ` + d + `dotdot.conf
mkfifo ` + d + `fifo.conf
printf -- '-----BEGIN PRIVATE KEY-----\nMIIE\n' > ` + d + `tls.conf
printf 'include /etc/nginx/conf.d/ok.inc;\n' > ` + d + `canary.conf
printf '' > ` + d + `ok.inc
`
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", script)
		waitEvent(t, "S", "config-applied", "", 15*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := sentryErr("lab", "exec", "S", "--", "test", "-e", d+"canary.conf"); err == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if _, err := sentryErr("lab", "exec", "S", "--", "test", "-e", d+"canary.conf"); err != nil {
			t.Fatal("the harmless file of the same change never reached S")
		}
		want := map[string]string{"hook.conf": "script", "suid.conf": "setuid", "shadow.conf": "outside the tracked paths",
			"dotdot.conf": "outside the tracked paths", "fifo.conf": "fifo", "tls.conf": "private key"}
		evs := events(t, "P")
		for name, reason := range want {
			if _, err := sentryErr("lab", "exec", "S", "--", "test", "-e", d+name); err == nil {
				t.Errorf("%s reached S", name)
			}
			found := false
			for _, e := range evs {
				if e.Kind == "config-refused" && e.Fields["path"] == d+name && strings.Contains(e.Fields["reason"], reason) {
					found = true
				}
			}
			if !found {
				t.Errorf("P reports no refusal of %s for %q", d+name, reason)
			}
		}
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", "rm -f "+d+"hook.conf "+d+"suid.conf "+d+"shadow.conf "+d+"dotdot.conf "+d+"fifo.conf "+d+"tls.conf")
	})

	t.Run("a local edit on S is drift until the next apply", func(t *testing.T) {
		waitInStep(t)
		sentry(t, "lab", "exec", "S", "--", "sh", "-c", "echo '# edited on S by hand' >> /etc/nginx/nginx.conf")
		var items []struct {
			Path string `json:"path"`
			What string `json:"what"`
			Diff string `json:"diff"`
		}
		if err := json.Unmarshal([]byte(sentryState(t, "lab", "exec", "S", "--", "sentry", "config", "drift", "--json")), &items); err != nil {
			t.Fatal(err)
		}
		if len(items) != 1 || items[0].Path != "/etc/nginx/nginx.conf" || items[0].What != "content" || !strings.Contains(items[0].Diff, "+# edited on S by hand") {
			t.Fatalf("drift %+v", items)
		}
		waitEvent(t, "S", "config-drift-found", "/etc/nginx/nginx.conf", 5*time.Second)
		// Not overwritten by itself...
		time.Sleep(2 * time.Second)
		if out := sentry(t, "lab", "exec", "S", "--", "tail", "-1", "/etc/nginx/nginx.conf"); !strings.Contains(out, "edited on S") {
			t.Error("the local edit vanished without an apply")
		}
		// ...but by sync --force.
		sentry(t, "lab", "exec", "S", "--", "sentry", "sync", "--force")
		if out := sentry(t, "lab", "exec", "S", "--", "sentry", "config", "drift"); !strings.Contains(out, "no drift") {
			t.Errorf("drift after sync --force:\n%s", out)
		}
	})

	t.Run("per-node overlay", func(t *testing.T) {
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", `set -e
printf '# common to both nodes\n' > /etc/nginx/conf.d/who.inc
mkdir -p /etc/sentry/nodes/node-s/etc/nginx/conf.d
printf '# node-s only\n' > /etc/sentry/nodes/node-s/etc/nginx/conf.d/who.inc`)
		waitFileOn(t, "S", "/etc/nginx/conf.d/who.inc", "node-s only", 15*time.Second)
		if p := sentry(t, "lab", "exec", "P", "--", "cat", "/etc/nginx/conf.d/who.inc"); !strings.Contains(p, "common") {
			t.Errorf("P has %q", p)
		}
		if _, err := sentryErr("lab", "exec", "S", "--", "test", "-e", "/etc/sentry/nodes"); err == nil {
			t.Error("the overlay folder itself was copied to S")
		}
		out := sentry(t, "lab", "exec", "P", "--", "sentry", "config", "diff", "--nodes")
		if !strings.Contains(out, "/etc/nginx/conf.d/who.inc on node-s") || !strings.Contains(out, "-# common to both nodes") || !strings.Contains(out, "+# node-s only") {
			t.Errorf("config diff --nodes:\n%s", out)
		}
	})

	t.Run("secrets cross encrypted when the operator opts in", func(t *testing.T) {
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", "printf '[sync]\nencrypt_secrets = true\n' >> /etc/sentry/sentry.toml && systemctl restart sentry-agent")
		waitAgentOn(t, "P", 0)
		secret := "-----BEGIN PRIVATE KEY-----\nTOPSECRET-e2e\n-----END PRIVATE KEY-----"
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", "umask 077; printf '%s\n' '"+secret+"' > /etc/postfix/relay.key")
		waitFileOn(t, "S", "/etc/postfix/relay.key", "TOPSECRET-e2e", 20*time.Second)
		if m := strings.TrimSpace(sentry(t, "lab", "exec", "S", "--", "stat", "-c", "%a %U", "/etc/postfix/relay.key")); m != "600 root" {
			t.Errorf("S's copy is %s", m)
		}
		l := lab.New(lab.Options{Name: labName})
		repo := filepath.Join(l.SetRoot("P"), "var/lib/sentry/config.git")
		out, err := exec.Command("sh", "-c", "git --git-dir "+repo+" log -p --all | grep -c TOPSECRET; git --git-dir "+repo+" show main:files/etc/postfix/relay.key | head -c 21").CombinedOutput()
		if !strings.HasPrefix(string(out), "0\n") || !strings.Contains(string(out), "age-encryption.org/v1") || err != nil {
			t.Errorf("the repository holds the secret in plaintext or not as age: %q %v", out, err)
		}
		sentry(t, "lab", "exec", "P", "--", "rm", "/etc/postfix/relay.key")
	})

	t.Run("rollback on P is followed by S", func(t *testing.T) {
		sentry(t, "lab", "exec", "P", "--", "sentry", "config", "rollback", "--yes", first[len(first)-1].Commit)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if code, _, err := officeGet(s, "/sentry-marker"); err == nil && code == 404 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, body, _ := officeGet(s, "/sentry-marker"); code != 404 {
			t.Errorf("after rollback S still serves the marker: %d %q", code, body)
		}
		if out := sentry(t, "lab", "exec", "P", "--", "sentry", "config", "log", "-n", "1"); !strings.Contains(out, "rollback to "+first[len(first)-1].Commit[:12]) {
			t.Errorf("no rollback commit on P:\n%s", out)
		}
		// debian.cnf was refused at that commit (a secret, before encryption
		// was on) and tracked since: the rollback must not delete it.
		for _, set := range []string{"P", "S"} {
			if _, err := sentryErr("lab", "exec", set, "--", "test", "-s", "/etc/mysql/debian.cnf"); err != nil {
				t.Errorf("%s lost /etc/mysql/debian.cnf in the rollback", set)
			}
		}
	})

	t.Run("a secondary offline catches up with what it missed", func(t *testing.T) {
		sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "sentry-agent")
		var have []struct {
			Commit string `json:"commit"`
		}
		json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "config", "log", "-n", "1", "--json")), &have)
		for i := 0; i < 50; i++ {
			sentry(t, "lab", "exec", "P", "--", "sh", "-c", fmt.Sprintf("echo '# edit %d' >> /etc/nginx/conf.d/offline.conf", i))
			time.Sleep(1200 * time.Millisecond) // past the debounce: one commit each
		}
		var head []struct {
			Commit string `json:"commit"`
		}
		json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "config", "log", "-n", "60", "--json")), &head)
		n := 0
		for _, c := range head {
			if c.Commit == have[0].Commit {
				break
			}
			n++
		}
		if n < 40 {
			t.Fatalf("only %d commits made while S was off", n)
		}
		sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "sentry-agent")
		e := waitEvent(t, "S", "config-applied", head[0].Commit[:12], 30*time.Second)
		var ours int64
		fmt.Sscan(e.Fields["pack_bytes"], &ours)
		// What git itself would send for the same history: a pack of the
		// objects in have..head, made by git from P's repository.
		l := lab.New(lab.Options{Name: labName})
		repo := filepath.Join(l.SetRoot("P"), "var/lib/sentry/config.git")
		cmd := exec.Command("sh", "-c", fmt.Sprintf("git --git-dir %s rev-list --objects %s ^%s | git --git-dir %s pack-objects --stdout --delta-base-offset | wc -c",
			repo, head[0].Commit, have[0].Commit, repo))
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		var gitBytes int64
		fmt.Sscan(strings.TrimSpace(string(out)), &gitBytes)
		ratio := float64(ours) / float64(gitBytes)
		figure(t, "%d commits caught up: sentry sent %d bytes, git's pack for the same history %d bytes: %.2fx", n, ours, gitBytes, ratio)
		if ratio > 1.2 {
			t.Errorf("catch-up sent %.2fx what git would", ratio)
		}
	})
}

// TestConfigKill9 kills either agent with SIGKILL in the middle of a commit
// or an apply, 20 times: the repositories stay consistent (git fsck) and
// every tracked file on S is the old or the new version, never a part.
func TestConfigKill9(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })
	sentry(t, "lab", "pair")
	waitEvent(t, "S", "config-applied", "", 20*time.Second)
	l := lab.New(lab.Options{Name: labName})
	fsck := func(set string) {
		t.Helper()
		repo := filepath.Join(l.SetRoot(set), "var/lib/sentry/config.git")
		if out, err := exec.Command("git", "--git-dir", repo, "fsck", "--strict", "--no-dangling").CombinedOutput(); err != nil {
			t.Fatalf("git fsck of %s's repository: %v\n%s", set, err, out)
		}
	}
	// 100 files of about 20 KB, all saying which version they are.
	bulk := func(v int) string {
		return fmt.Sprintf(`mkdir -p /etc/nginx/bulk && for i in $(seq 1 100); do head -c 20000 /dev/zero | tr '\0' 'v' | sed "s/^/version %d /" > /etc/nginx/bulk/f$i.conf.tmp && mv /etc/nginx/bulk/f$i.conf.tmp /etc/nginx/bulk/f$i.conf; done`, v)
	}
	checkBulk := func(set string, allowed ...int) {
		t.Helper()
		out := sentry(t, "lab", "exec", set, "--", "sh", "-c", "for f in /etc/nginx/bulk/*.conf; do printf '%s %s %s\\n' $f $(wc -c < $f) \"$(head -c 12 $f)\"; done")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 4 {
				t.Fatalf("%s: %q", set, line)
			}
			ok := false
			for _, v := range allowed {
				want := fmt.Sprintf("version %d ", v)
				if f[1] == fmt.Sprint(20000+len(want)) && strings.HasPrefix(strings.Join(f[2:], " ")+" ", want) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: %s is neither version %v, whole: %s", set, f[0], allowed, line)
			}
		}
	}
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", bulk(0))
	waitEvent(t, "S", "config-applied", "reloaded nginx.service", 20*time.Second)
	checkBulk("S", 0)
	for round := 1; round <= 20; round++ {
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", bulk(round))
		victim := "S"
		if round%2 == 1 {
			victim = "P" // P is committing (its debounce ends about 1 s after the writes)
			time.Sleep(time.Duration(900+rand.IntN(400)) * time.Millisecond)
		} else {
			// S applies right after P's commit reaches it.
			time.Sleep(time.Duration(1000+rand.IntN(500)) * time.Millisecond)
		}
		sentry(t, "lab", "exec", victim, "--", "systemctl", "kill", "-s", "SIGKILL", "sentry-agent")
		checkBulk("S", round-1, round, round-2)
		fsck(victim)
		waitAgentOn(t, victim, round)
		sentry(t, "lab", "exec", victim, "--", "systemctl", "reset-failed", "sentry-agent")
		// Whatever was cut short, both end at this round's version.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			out, _ := sentryErr("lab", "exec", "S", "--", "sh", "-c", fmt.Sprintf("grep -L '^version %d ' /etc/nginx/bulk/*.conf | wc -l", round))
			if strings.TrimSpace(out) == "0" {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		checkBulk("S", round)
	}
	fsck("P")
	fsck("S")
	if out, _ := sentryErr("lab", "exec", "S", "--", "sh", "-c", "ls -a /etc/nginx/bulk | grep -c sentry-stage"); strings.TrimSpace(out) != "0" {
		t.Errorf("staging folders left on S: %s", out)
	}
}

func waitAgentOn(t *testing.T, set string, round int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := sentryErr("lab", "exec", set, "--", "sentry", "status"); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("round %d: the agent on %s did not come back", round, set)
}

// waitInStep waits until S has applied P's newest commit and P is quiet.
func waitInStep(t *testing.T) {
	t.Helper()
	type st struct {
		Nodes []struct {
			Role          string `json:"role"`
			ConfigHead    string `json:"config_head"`
			ConfigApplied string `json:"config_applied"`
		} `json:"nodes"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(1500 * time.Millisecond) // past P's debounce
		var p, s st
		json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "status", "--json")), &p)
		json.Unmarshal([]byte(sentry(t, "lab", "exec", "S", "--", "sentry", "status", "--json")), &s)
		head, applied := "", ""
		for _, n := range p.Nodes {
			if n.Role == "primary" {
				head = n.ConfigHead
			}
		}
		for _, n := range s.Nodes {
			if n.Role == "secondary" {
				applied = n.ConfigApplied
			}
		}
		if head != "" && head == applied {
			return
		}
	}
	t.Fatal("S did not catch up with P")
}

// waitFileOn waits until the file at path on node set holds want.
func waitFileOn(t *testing.T, set, path, want string, timeout time.Duration) {
	t.Helper()
	got := ""
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if got, _ = sentryErr("lab", "exec", set, "--", "cat", path); strings.Contains(got, want) {
			return
		}
	}
	t.Fatalf("%s on %s does not hold %q after %s: %q", path, set, want, timeout, got)
}

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/lab"
)

// previousReleaseDeb is the Debian package of the previous release: its
// binary (previousReleaseBin) packaged by today's cmd/sentry-deb with its
// version, 0.1.0 (the release had no packaging of its own; its units are
// the ones its binary prints, running /usr/bin/sentry).
func previousReleaseDeb(t *testing.T) string {
	t.Helper()
	bin := previousReleaseBin(t)
	dir := t.TempDir()
	build := exec.Command("go", "run", "../cmd/sentry-deb", "build", "-repo", "..", "-binary", bin, "-version", previousVersion, "-out", dir)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("packaging sentry %s: %v\n%s", previousVersion, err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "sentry_"+previousVersion+"_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("sentry-deb build left %v", debs)
	}
	return debs[0]
}

var fortyHex = regexp.MustCompile(`\b[0-9a-f]{40}\b`)

// TestRollingUpgrade: both nodes installed from the previous release's
// package, paired, green, a change synced; then S upgraded with today's
// package (dpkg -i, as an operator or unattended-upgrades does it), then P.
// During each upgrade the other node's status answers every time; after
// each, the configuration still flows from P to S and both verifiers are
// green; nothing in the configuration repository or the store is lost;
// the events record both versions.
func TestRollingUpgrade(t *testing.T) {
	requireLab(t)
	oldDeb := previousReleaseDeb(t)
	// The previous release's `bootcheck install` writes its units into
	// /etc/systemd/system running /usr/local/bin/sentry, shadowing the
	// package's (the defect this release fixes): the lab leaves that
	// step out, and the upgraded nodes take it (below).
	labOld := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(labBin, append([]string{"--name", labName, "--sentry", oldDeb, "--no-bootcheck-install"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("sentry-lab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	timed(t, "lab up with sentry "+previousVersion, func() { labOld("up") })
	t.Cleanup(func() { labDown(t) })
	for _, set := range []string{"P", "S"} {
		if v := sentry(t, "lab", "exec", set, "--", "dpkg-query", "-W", "-f", "${Version}", "sentry"); v != previousVersion {
			t.Fatalf("%s has sentry %q installed, want %s", set, v, previousVersion)
		}
	}
	// Pairing as 0.1.0 takes it: its join has the token as an argument.
	var ir struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "init", "--cluster", "office", "--json")), &ir); err != nil || ir.Token == "" {
		t.Fatalf("sentry init on P: %v", err)
	}
	primary := strings.Split(lab.Sets[0].Address, "/")[0] + ":7443"
	sentry(t, "lab", "exec", "S", "--", "sentry", "join", ir.Token, primary)
	sentry(t, "lab", "exec", "P", "--", "sentry", "verifier", "setup")
	node := map[string]string{"P": "node-p", "S": "node-s"}
	other := map[string]string{"P": "S", "S": "P"}
	versions := func() (string, string) {
		st := statusNodes(t, "P")
		return st["node-p"].AgentVersion, st["node-s"].AgentVersion
	}
	green := func(what string) {
		t.Helper()
		waitUntil(t, what+": both nodes 15/15 green", 120*time.Second, func() bool {
			st := statusNodes(t, "P")
			return strings.HasPrefix(st["node-p"].Verify, "15/15 green") && strings.HasPrefix(st["node-s"].Verify, "15/15 green")
		})
	}
	synced := func(marker string) {
		t.Helper()
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", "echo '# "+marker+"' > /etc/nginx/conf.d/sentry-upgrade.conf")
		waitFileOn(t, "S", "/etc/nginx/conf.d/sentry-upgrade.conf", "# "+marker, 30*time.Second)
	}
	green("the previous release")
	synced("synced by " + previousVersion)

	// What must survive: every commit of P's configuration repository,
	// and every event each node's store holds.
	commits := fortyHex.FindAllString(sentry(t, "lab", "exec", "P", "--", "sentry", "config", "log", "-n", "1000", "--json"), -1)
	if len(commits) == 0 {
		t.Fatal("no commit in P's configuration log")
	}
	stored := map[string][]event{}
	for _, set := range []string{"P", "S"} {
		stored[set] = events(t, set)
		if len(stored[set]) == 0 {
			t.Fatalf("no event on %s before the upgrade", set)
		}
	}

	// upgrade installs today's package on set while the other node's
	// status is asked every 200 ms, and waits for set's agent to answer
	// as the new version.
	upgrade := func(set string) {
		t.Helper()
		name := filepath.Base(sentryDeb)
		b, err := os.ReadFile(sentryDeb)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(lab.DefaultStateDir, labName, "sets", set, "root", "root", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var asked, failed int
		var firstErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				asked++
				if _, err := sentryErr("lab", "exec", other[set], "--", "sentry", "status", "--json"); err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				}
			}
		}()
		start := time.Now()
		out, err := sentryErr("lab", "exec", set, "--", "env", "DEBIAN_FRONTEND=noninteractive",
			"dpkg", "--force-confdef", "--force-confold", "-i", "/root/"+name)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("dpkg -i on %s: %v", set, err)
		}
		t.Logf("dpkg -i %s on %s:\n%s", name, set, out)
		dpkg := time.Since(start)
		var back time.Duration
		waitUntil(t, set+"'s agent answering as "+sentryVersion, 60*time.Second, func() bool {
			out, err := sentryErr("lab", "exec", set, "--", "sentry", "status", "--json")
			if err != nil {
				return false
			}
			var st struct {
				Nodes []peerView `json:"nodes"`
			}
			if json.Unmarshal([]byte(out), &st) != nil {
				return false
			}
			for _, n := range st.Nodes {
				if n.Name == node[set] && n.AgentVersion == sentryVersion {
					back = time.Since(start)
					return true
				}
			}
			return false
		})
		close(stop)
		wg.Wait()
		if failed > 0 || asked == 0 {
			t.Errorf("during the upgrade of %s, %s's status failed %d of %d times: %v", set, other[set], failed, asked, firstErr)
		}
		if v := sentry(t, "lab", "exec", set, "--", "dpkg-query", "-W", "-f", "${Version}", "sentry"); v != sentryVersion {
			t.Errorf("%s has sentry %q installed after the upgrade, want %s", set, v, sentryVersion)
		}
		figure(t, "upgrade of %s from %s: dpkg -i took %s, its agent answered as the new version %s after dpkg started; %s's status answered %d of %d times meanwhile",
			set, previousVersion, dpkg.Round(10*time.Millisecond), back.Round(10*time.Millisecond), other[set], asked-failed, asked)
	}

	upgrade("S")
	waitUntil(t, "P (still "+previousVersion+") sees S's new version", 60*time.Second, func() bool {
		p, s := versions()
		return p == previousVersion && s == sentryVersion
	})
	synced("synced by " + previousVersion + " to " + sentryVersion)
	green("S upgraded")

	upgrade("P")
	waitUntil(t, "both nodes on "+sentryVersion, 60*time.Second, func() bool {
		p, s := versions()
		return p == sentryVersion && s == sentryVersion
	})
	synced("synced by " + sentryVersion)
	green("both upgraded")
	// The verdict is the new release's: both nodes judge (the lab is
	// built with a driver gap, so it is not READY; it must be judged).
	for _, set := range []string{"P", "S"} {
		if r, code := readyOn(t, set); r.Verdict == "" || (code == 0) != (r.Verdict == readiness.Ready) {
			t.Errorf("%s after the upgrade: verdict %q (exit %d)", set, r.Verdict, code)
		}
	}

	// Nothing lost.
	after := sentry(t, "lab", "exec", "P", "--", "sentry", "config", "log", "-n", "1000", "--json")
	for _, c := range commits {
		if !strings.Contains(after, c) {
			t.Errorf("commit %s of P's configuration is gone after the upgrade", c)
		}
	}
	for _, set := range []string{"P", "S"} {
		now := map[string]bool{}
		var evs []event
		if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", set, "--", "sentry", "events", "-n", "2000", "--json")), &evs); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			now[e.Time.Format(time.RFC3339Nano)+" "+e.Kind+" "+e.Message] = true
		}
		lost := 0
		for _, e := range stored[set] {
			if !now[e.Time.Format(time.RFC3339Nano)+" "+e.Kind+" "+e.Message] {
				lost++
				if lost <= 3 {
					t.Errorf("%s lost the event %s %s %q in the upgrade", set, e.Time.Format(time.RFC3339), e.Kind, e.Message)
				}
			}
		}
		figure(t, "%s's store: %d events before the upgrade, %d lost, %d now", set, len(stored[set]), lost, len(evs))
	}

	// Both versions in the events: each node's start of the new release
	// (the old one did not record its version), and S saw P move from the
	// old to the new.
	for _, set := range []string{"P", "S"} {
		waitEvent(t, set, "agent-started", "sentry "+sentryVersion+" started", 10*time.Second)
	}
	e := waitEvent(t, "S", "peer-version", "peer node-p now runs sentry "+sentryVersion+" (it ran "+previousVersion+")", 10*time.Second)
	t.Logf("S's event: %s %s", e.Kind, e.Message)

	// The operator's step after the upgrade: `bootcheck install` of this
	// release writes the role services' drop-ins and no unit copy that
	// would shadow the package's.
	for _, set := range []string{"P", "S"} {
		out := sentry(t, "lab", "exec", set, "--", "sentry", "bootcheck", "install", "--json")
		var res struct {
			Wrote []string `json:"wrote"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		for _, w := range res.Wrote {
			if !strings.HasSuffix(w, ".d/50-sentry-role.conf") {
				t.Errorf("%s: bootcheck install wrote %s", set, w)
			}
		}
		if len(res.Wrote) == 0 {
			t.Errorf("%s: bootcheck install wrote no drop-in", set)
		}
		if out := sentry(t, "lab", "exec", set, "--", "sh", "-c", "ls /etc/systemd/system/sentry-*.service /etc/systemd/system/sentry-*.target 2>/dev/null || true"); out != "" {
			t.Errorf("%s: unit copies in /etc/systemd/system shadow the package's:\n%s", set, out)
		}
	}

	// The upgraded pair, watched by a real Prometheus in the office.
	t.Run("prometheus in the office", prometheusInOffice)
	// Its backups tested (a restic repository on P, damaged and repaired).
	t.Run("restore test", restoreTestInLab)
	// And its weekly report, mailed, with those restore tests.
	t.Run("weekly report by mail", reportByMail)
}

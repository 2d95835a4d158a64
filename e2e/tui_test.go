package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/readiness"
)

// tmuxTUI is `sentry tui` running on a lab node in a tmux session of this
// test's own tmux server (its own socket): the operator's terminal.
type tmuxTUI struct {
	t    *testing.T
	sock string
	pid  int // the pane's process (sentry-lab exec), recorded
}

// startTUI opens `sentry tui` on set in a 120x40 tmux pane.
func startTUI(t *testing.T, set string) *tmuxTUI {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("the TUI test needs tmux (make deps installs it): %v", err)
	}
	x := &tmuxTUI{t: t, sock: fmt.Sprintf("sentry-e2e-%d", os.Getpid())}
	cmd := strings.Join([]string{labBin, "--name", labName, "--sentry", sentryDeb, "exec", set, "--", "sentry", "tui"}, " ")
	x.tmux("new-session", "-d", "-s", "tui", "-x", "120", "-y", "40", cmd)
	pid, err := strconv.Atoi(strings.TrimSpace(x.tmux("display-message", "-p", "-t", "tui", "#{pane_pid}")))
	if err != nil {
		t.Fatalf("tmux pane pid: %v", err)
	}
	x.pid = pid
	t.Cleanup(x.stop)
	return x
}

func (x *tmuxTUI) tmux(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.sock}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stop quits the UI with q, and ends this test's tmux server (only ours:
// its own socket).
func (x *tmuxTUI) stop() {
	exec.Command("tmux", "-L", x.sock, "send-keys", "-t", "tui", "q").Run()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && exec.Command("kill", "-0", strconv.Itoa(x.pid)).Run() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	exec.Command("tmux", "-L", x.sock, "kill-server").Run()
}

// keys types keys into the pane (tmux key names: "2", "Down", "R", "y").
func (x *tmuxTUI) keys(k ...string) {
	x.t.Helper()
	x.tmux(append([]string{"send-keys", "-t", "tui"}, k...)...)
}

// screen is the pane as shown, with its colours (SGR sequences) when
// colour is true.
func (x *tmuxTUI) screen(colour bool) string {
	x.t.Helper()
	args := []string{"capture-pane", "-p", "-t", "tui"}
	if colour {
		args = append(args, "-e")
	}
	return x.tmux(args...)
}

// waitScreen waits until ok holds for the pane (with colours), and
// returns it and how long that took; it fails with the last screen.
func (x *tmuxTUI) waitScreen(what string, limit time.Duration, ok func(s string) bool) (string, time.Duration) {
	x.t.Helper()
	start := time.Now()
	var s string
	for time.Since(start) < limit {
		if s = x.screen(true); ok(s) {
			return s, time.Since(start)
		}
		time.Sleep(500 * time.Millisecond)
	}
	x.t.Fatalf("waited %s for the TUI to show %s; the pane:\n%s", limit, what, sgr.ReplaceAllString(s, ""))
	return "", 0
}

var sgr = regexp.MustCompile("\x1b\\[[0-9;:]*m")

// redFail: the row of service on its screen line shows FAIL in red in
// the node's column (the last FAIL of the row is the second node's when
// both fail; here only S's does).
func redFail(screen, service string) bool {
	for _, l := range strings.Split(screen, "\n") {
		plain := sgr.ReplaceAllString(l, "")
		f := strings.Fields(strings.TrimPrefix(plain, ">"))
		if len(f) < 2 || f[0] != service || !strings.Contains(plain, "FAIL") {
			continue
		}
		// Red is SGR 31 (or bright 91): the FAIL cell's colour.
		return regexp.MustCompile("\x1b\\[(?:[0-9;]*;)?(?:31|91)m[^\x1b]*FAIL").MatchString(l)
	}
	return false
}

// tuiOnP: the operator's screen on P follows a fault on S within two
// verifier rounds (web on S red on the Services screen, NOT READY with
// its reason on the Overview), and READY again after; a rollback asked
// for and confirmed in the Sync screen rolls the configuration back on P
// and S.
func tuiOnP(t *testing.T) {
	ui := startTUI(t, "P")
	s, d := ui.waitScreen("the overview with READY", 30*time.Second, func(s string) bool {
		return strings.Contains(sgr.ReplaceAllString(s, ""), "VERDICT  READY")
	})
	figure(t, "sentry tui on P (tmux, 120x40): first screen with the verdict after %.1f s", d.Seconds())
	if !strings.Contains(sgr.ReplaceAllString(s, ""), "peer node-s reachable") {
		t.Errorf("the overview does not show the peer reachable:\n%s", sgr.ReplaceAllString(s, ""))
	}

	// nginx stopped on S: two verifier rounds are 30 s (15 s each) and
	// the jitter.
	sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "nginx")
	stopped := time.Now()
	_, d = ui.waitScreen("NOT READY with the verifier's reason", 40*time.Second, func(s string) bool {
		p := sgr.ReplaceAllString(s, "")
		return strings.Contains(p, "VERDICT  NOT READY") && strings.Contains(p, "web on node-s")
	})
	figure(t, "sentry tui on P: NOT READY with \"web on node-s\" on the overview %.1f s after nginx stopped on S", d.Seconds())
	ui.keys("2")
	ui.waitScreen("web on node-s red on the Services screen", 40*time.Second, func(s string) bool { return redFail(s, "web") })
	figure(t, "sentry tui on P: web on node-s red on the Services screen %.1f s after nginx stopped", time.Since(stopped).Seconds())
	sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "nginx")
	ui.keys("1")
	_, d = ui.waitScreen("READY again", 40*time.Second, func(s string) bool {
		return strings.Contains(sgr.ReplaceAllString(s, ""), "VERDICT  READY")
	})
	figure(t, "sentry tui on P: READY again %.1f s after nginx started on S", d.Seconds())
	ui.keys("2")
	ui.waitScreen("web green again", 10*time.Second, func(s string) bool { return !redFail(s, "web") })
	bothReady(t)

	// A rollback from the Sync screen: a change on P reaches S, then the
	// commit before it is restored, on P and (applied) on S.
	const f = "/etc/nginx/conf.d/sentry-tui-e2e.conf"
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", "echo '# made by the TUI test; the rollback removes it' > "+f)
	waitFileOn(t, "S", f, "the rollback removes it", 60*time.Second)
	ui.keys("3")
	ui.waitScreen("the new commit at the head of the log", 30*time.Second, func(s string) bool {
		return regexp.MustCompile(`(?m)^> [0-9a-f]{12} .*\[head`).MatchString(sgr.ReplaceAllString(s, ""))
	})
	ui.keys("Down", "R")
	ui.waitScreen("the rollback's question", 10*time.Second, func(s string) bool {
		return strings.Contains(sgr.ReplaceAllString(s, ""), "as a new commit the secondary applies? [y/N]")
	})
	ui.keys("y")
	for _, set := range []string{"P", "S"} {
		waitUntil(t, "the rollback on "+set+": "+f+" gone", 60*time.Second, func() bool {
			_, err := sentryErr("lab", "exec", set, "--", "test", "-e", f)
			return err != nil
		})
	}
	figure(t, "sentry tui on P: a rollback confirmed in the Sync screen removed %s on P and S", f)
	ui.waitScreen("P and S in step after the rollback", 60*time.Second, func(s string) bool {
		p := sgr.ReplaceAllString(s, "")
		return strings.Contains(p, "head (primary)") && !strings.Contains(p, "NOT in step")
	})
	for _, set := range []string{"P", "S"} {
		waitVerdict(t, set, readiness.Ready, nil, 2*time.Minute)
	}
}

// readOnlyView: a member of group sentry (the package made the group)
// reads the state through the agent's read-only socket, and is refused
// (exit 4, naming sudo) what acts; a user outside the group gets nothing.
func readOnlyView(t *testing.T) {
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", "getent group sentry >/dev/null && (id alice >/dev/null 2>&1 || useradd -m -G sentry alice) && (id bob >/dev/null 2>&1 || useradd -m bob)")
	as := func(user string, args ...string) (string, error) {
		return sentryErr(append([]string{"lab", "exec", "P", "--", "runuser", "-u", user, "--", "sentry"}, args...)...)
	}
	for _, args := range [][]string{{"status", "--json"}, {"events", "-n", "3"}, {"report", "list"}, {"config", "log"}} {
		if out, err := as("alice", args...); err != nil {
			t.Errorf("alice (group sentry): sentry %s: %v", strings.Join(args, " "), err)
		} else if args[0] == "status" && !strings.Contains(out, `"node-s"`) {
			t.Errorf("alice's status does not show node-s:\n%s", out)
		}
	}
	if _, err := as("alice", "ready"); err != nil && !strings.Contains(err.Error(), "exit status 1\n") {
		t.Errorf("alice: sentry ready: %v", err)
	}
	_, err := as("alice", "config", "rollback", "--yes", "HEAD")
	if err == nil || !strings.Contains(err.Error(), "exit status 4\n") || !strings.Contains(err.Error(), "sudo sentry") {
		t.Errorf("alice: sentry config rollback: %v, want exit 4 naming sudo", err)
	}
	_, err = as("bob", "status")
	if err == nil || !strings.Contains(err.Error(), "exit status 4\n") {
		t.Errorf("bob (no group): sentry status: %v, want exit 4", err)
	}
	mode := sentry(t, "lab", "exec", "P", "--", "stat", "-c", "%a %G", "/run/sentry/agent.sock", "/run/sentry/agent-read.sock")
	if mode != "600 root\n660 sentry\n" {
		t.Errorf("the sockets' modes and groups:\n%s", mode)
	}
	figure(t, "read-only view: a member of group sentry reads status, events, reports and the log; a rollback is refused (exit 4); a user outside the group gets nothing")
}

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/readiness"
)

// readyOn is set's verdict (sentry ready --json) and the exit code.
func readyOn(t *testing.T, set string) (readiness.Result, int) {
	t.Helper()
	out, err := sentryErr("lab", "exec", set, "--", "sentry", "ready", "--json")
	code := 0
	if err != nil {
		switch {
		case strings.Contains(err.Error(), "exit status 1\n"):
			code = 1
		case strings.Contains(err.Error(), "exit status 5\n"):
			code = 5
		default:
			t.Fatalf("sentry ready on %s: %v", set, err)
		}
	}
	var r readiness.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("sentry ready --json on %s: %v\n%s", set, err, out)
	}
	return r, code
}

func blocking(r readiness.Result) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Blocking() {
			out = append(out, f.Check)
		}
	}
	return out
}

// waitVerdict waits until set's verdict is want with exactly the blocking
// checks named (none for READY), and returns how long it took.
func waitVerdict(t *testing.T, set string, want readiness.Verdict, checks []string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last readiness.Result
	for time.Since(start) < limit {
		r, code := readyOn(t, set)
		last = r
		wantCode := map[readiness.Verdict]int{readiness.Ready: 0, readiness.NotReady: 1, readiness.Unknown: 5}[want]
		if r.Verdict == want && code == wantCode && strings.Join(blocking(r), ",") == strings.Join(checks, ",") {
			return time.Since(start)
		}
		time.Sleep(2 * time.Second)
	}
	var lines []string
	for _, f := range last.Findings {
		if f.State != readiness.Pass && f.State != readiness.NA {
			lines = append(lines, fmt.Sprintf("%s %s blocks=%v: %s", f.Check, f.State, f.Blocking(), f.Reason))
		}
	}
	t.Fatalf("%s's verdict is %s (blocking %v) after %s, want %s blocking %v:\n%s", set, last.Verdict, blocking(last), limit, want, checks, strings.Join(lines, "\n"))
	return 0
}

// TestReadiness: a paired, set-up lab is NOT READY for the driver gap it
// is built with (packages and boot.compat block), and READY on both nodes
// after the parity apply (the checks of what the lab has not, RAID,
// SMART, boot loaders, backups, are n/a); a
// service stopped on S makes both nodes NOT READY with the verifier's check
// blocking, within two rounds, and READY again after it starts; S's agent
// stopped makes P NOT READY with the peer check, and READY after.
func TestReadiness(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { sentryErr("lab", "down") })
	sentry(t, "lab", "pair")
	sentry(t, "lab", "exec", "P", "--", "sentry", "verifier", "setup")
	waitUntil(t, "both nodes green in P's store", 90*time.Second, func() bool { return allGreen(t, "P", "node-p") && allGreen(t, "P", "node-s") })
	// The lab's machine B has a NIC whose driver P's disk set lacks (the
	// demo's driver gap): the verdict says so, on both nodes.
	for _, set := range []string{"P", "S"} {
		d := waitVerdict(t, set, readiness.NotReady, []string{"packages", "boot.compat"}, 3*time.Minute)
		figure(t, "%s NOT READY (packages, boot.compat: the driver gap) %.0f s after both nodes were green", set, d.Seconds())
	}
	if r, _ := readyOn(t, "P"); !strings.Contains(r.Findings[1].Reason, "8086:10d3") {
		t.Errorf("boot.compat does not name the device: %q", r.Findings[1].Reason)
	}
	sentry(t, "lab", "exec", "P", "--", "sentry", "parity", "apply", "--yes")
	for _, set := range []string{"P", "S"} {
		d := waitVerdict(t, set, readiness.Ready, nil, 3*time.Minute)
		figure(t, "%s READY %.0f s after the parity apply", set, d.Seconds())
	}
	r, _ := readyOn(t, "P")
	if r.Peer == nil || r.Peer.Node != "node-s" {
		t.Errorf("P's verdict does not carry S's own: %+v", r.Peer)
	}
	// The lab came up NOT READY for two rounds and more: the verdict went
	// through the alert path (fired), and resolves once READY.
	if !hasEvent(t, "P", "alert-firing", "node-p readiness: NOT READY: ") {
		t.Error("no readiness alert fired on P while the lab was NOT READY")
	}
	waitUntil(t, "P's readiness alert resolved", 90*time.Second, func() bool { return hasEvent(t, "P", "alert-resolved", "node-p readiness: READY again") })
	for _, name := range []string{"raid", "disks", "boot.loader", "backup"} {
		for _, f := range r.Findings {
			if f.Check == name && f.State != readiness.NA {
				t.Errorf("%s in the lab: %s (%s), want n/a", name, f.State, f.Reason)
			}
		}
	}

	// A service stopped on S: both nodes see it (two rounds of 15 s, and
	// the jitter).
	sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "nginx")
	for _, set := range []string{"P", "S"} {
		d := waitVerdict(t, set, readiness.NotReady, []string{"verify.green"}, 40*time.Second)
		figure(t, "nginx stopped on S: %s NOT READY after %.0f s", set, d.Seconds())
	}
	if !hasEvent(t, "P", "ready-changed", "NOT READY: verify.green") {
		t.Error("no ready-changed event on P for the stopped nginx")
	}
	// The alert follows the hysteresis: two rounds NOT READY.
	start := time.Now()
	waitUntil(t, "a readiness alert on P for the stopped nginx", 90*time.Second, func() bool {
		return hasEvent(t, "P", "alert-firing", "node-p readiness: NOT READY: verify.green")
	})
	figure(t, "nginx stopped on S: P's readiness alert fired %.0f s after P's verdict flipped", time.Since(start).Seconds())
	sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "nginx")
	d := waitVerdict(t, "P", readiness.Ready, nil, 40*time.Second)
	figure(t, "nginx started on S: P READY after %.0f s", d.Seconds())

	// S's agent stopped: P has its last word, then the peer check fails.
	stopped := time.Now()
	sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "sentry-agent")
	d = waitVerdict(t, "P", readiness.NotReady, []string{"peer"}, 3*time.Minute)
	figure(t, "S's agent stopped: P NOT READY (peer) after %.0f s", d.Seconds())
	if r, _ := readyOn(t, "P"); r.Peer == nil || r.Peer.Verdict != readiness.Ready || r.Peer.Heard.After(stopped.Add(time.Second)) {
		t.Errorf("with S gone, P does not show S's last verdict with its age: %+v", r.Peer)
	}
	sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "sentry-agent")
	d = waitVerdict(t, "P", readiness.Ready, nil, 2*time.Minute)
	figure(t, "S's agent started: P READY after %.0f s", d.Seconds())
}

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// eventsSince are set's events of kind stamped after t0 whose message
// holds contains.
func eventsSince(t *testing.T, set, kind, contains string, t0 time.Time) []event {
	t.Helper()
	var out []event
	for _, e := range events(t, set) {
		if e.Kind == kind && e.Time.After(t0) && strings.Contains(e.Message, contains) {
			out = append(out, e)
		}
	}
	return out
}

// shortRounds sets the verifier of both nodes to a round every 5 s (the
// shortest the configuration allows), so that probes meet the sync's
// reloads often.
func shortRounds(t *testing.T) {
	t.Helper()
	for _, set := range []string{"P", "S"} {
		sentry(t, "lab", "exec", set, "--", "sh", "-c",
			`sed -i 's/^interval = .*/interval = "5s"/; s/^jitter = .*/jitter = "1s"/; s/^timeout = .*/timeout = "4s"/' /etc/sentry/sentry.toml && systemctl restart sentry-agent`)
		waitAgentOn(t, set, 0)
	}
}

// TestDovecotReloads (issue 13, defects 1 and 5): twenty changes to
// dovecot's configuration on P are applied on S with no rollback and no red
// probe, though S's mail probe runs as soon as each change lands (and on
// the schedule every 5 s) across the reloads; a change
// dovecot refuses rolls back on S; a change it accepts that breaks mail
// turns the mail probe red.
func TestDovecotReloads(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })
	sentry(t, "lab", "pair")
	sentry(t, "lab", "exec", "P", "--", "sentry", "verifier", "setup")
	waitEvent(t, "S", "canary-setup", "as the primary declared", 60*time.Second)
	shortRounds(t)
	waitUntil(t, "S green", 60*time.Second, func() bool { return allGreen(t, "S", "node-s") })
	conf := "/etc/dovecot/conf.d/99-sentry-e2e.conf"

	t.Run("twenty accepted changes: no rollback, no red", func(t *testing.T) {
		t0 := time.Now()
		for i := 1; i <= 20; i++ {
			sentry(t, "lab", "exec", "P", "--", "sh", "-c", fmt.Sprintf("printf 'login_greeting = Sentry e2e %d\\n' > %s", i, conf))
			waitFileOn(t, "S", conf, fmt.Sprintf("Sentry e2e %d\n", i), 20*time.Second)
			// The file is there: the reload is under way or just done.
			// Through S's agent, which knows the sync's reloads.
			if out, err := sentryErr("lab", "exec", "S", "--", "sentry", "verify", "--node", "node-s", "--service", "mail"); err != nil {
				t.Errorf("change %d: mail on S right after the change landed: %v\n%s", i, err, out)
			}
		}
		time.Sleep(11 * time.Second) // two more rounds after the last reload
		applied := eventsSince(t, "S", "config-applied", "dovecot.service", t0)
		if len(applied) < 20 {
			t.Errorf("%d applies reloaded dovecot on S, want 20", len(applied))
		}
		for _, e := range eventsSince(t, "S", "config-apply-failed", "", t0) {
			t.Errorf("S rolled back: %s", e.Message)
		}
		for _, e := range eventsSince(t, "S", "probe-red", "", t0) {
			t.Errorf("a red probe on S during the reloads: %s", e.Message)
		}
		again := sentry(t, "lab", "exec", "S", "--", "sh", "-c", "journalctl -u sentry-agent --since=@"+fmt.Sprint(t0.Unix())+" -o cat | grep -c 'probe run again after the sync' || true")
		figure(t, "20 dovecot changes applied on S (%d reloads), a mail probe right after each, rounds every 5 s: %s probe run(s) disturbed by the sync's reload and run again",
			len(applied), strings.TrimSpace(again))
	})

	t.Run("a change dovecot refuses rolls back", func(t *testing.T) {
		t1 := time.Now()
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", "printf 'this is not dovecot syntax\\n' > "+conf)
		e := waitEventAfter(t, "S", "config-apply-failed", "dovecot.service refused its new configuration", t1, 20*time.Second)
		if !strings.Contains(e.Message, "99-sentry-e2e.conf line 1") || !strings.Contains(e.Message, "waits for a newer commit") {
			t.Errorf("the failure does not say where and what next: %s", e.Message)
		}
		if got, _ := sentryErr("lab", "exec", "S", "--", "cat", conf); !strings.Contains(got, "Sentry e2e 20") {
			t.Errorf("S's file after the rollback: %q", got)
		}
		if st := strings.TrimSpace(sentry(t, "lab", "exec", "S", "--", "sh", "-c", "systemctl is-active dovecot || true")); st != "active" {
			t.Errorf("dovecot on S is %s after the rollback", st)
		}
		var st struct {
			Nodes []struct {
				Name         string `json:"name"`
				ConfigFailed string `json:"config_failed"`
				ConfigError  string `json:"config_error"`
				ConfigRetry  string `json:"config_retry"`
			} `json:"nodes"`
		}
		waitUntil(t, "P's status shows S's failed apply", 20*time.Second, func() bool {
			st.Nodes = nil
			json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "status", "--json")), &st)
			for _, n := range st.Nodes {
				if n.Name == "node-s" && n.ConfigFailed != "" && strings.Contains(n.ConfigError, "refused its new configuration") {
					if n.ConfigRetry != "" {
						t.Errorf("a refused configuration is retried: %q", n.ConfigRetry)
					}
					return true
				}
			}
			return false
		})
		// Fixed on P: S applies it, and after a restart of S's agent
		// nobody reports the old failure (defect 3).
		t2 := time.Now()
		sentry(t, "lab", "exec", "P", "--", "sh", "-c", "printf 'login_greeting = Sentry e2e fixed\\n' > "+conf)
		waitEventAfter(t, "S", "config-applied", "dovecot.service", t2, 20*time.Second)
		sentry(t, "lab", "exec", "S", "--", "systemctl", "restart", "sentry-agent")
		waitAgentOn(t, "S", 0)
		var last string
		deadline := time.Now().Add(20 * time.Second)
		for {
			last = sentry(t, "lab", "exec", "P", "--", "sentry", "status", "--json")
			st.Nodes = nil // Unmarshal keeps the fields an element of a reused slice lacks
			json.Unmarshal([]byte(last), &st)
			clear := false
			for _, n := range st.Nodes {
				if n.Name == "node-s" {
					clear = n.ConfigFailed == "" && n.ConfigError == ""
				}
			}
			if clear {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("P's status still shows a failure on S 20 s after S applied a newer commit and restarted:\n%s\nS's own:\n%s",
					last, sentry(t, "lab", "exec", "S", "--", "sentry", "status", "--json"))
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	t.Run("a change dovecot accepts that breaks mail turns mail red", func(t *testing.T) {
		t3 := time.Now()
		sentry(t, "lab", "exec", "P", "--", "sh", "-c",
			"printf 'mail_location = mbox:/nonexistent-sentry:INBOX=/nonexistent-sentry/inbox/%%u\\n' > "+conf)
		waitFileOn(t, "S", conf, "nonexistent-sentry", 20*time.Second)
		red := waitEventAfter(t, "S", "probe-red", "mail on node-s fails", t3, 20*time.Second)
		figure(t, "a reload that broke mail on S: red after %s: %s", red.Time.Sub(t3).Round(100*time.Millisecond), red.Message)
		for _, e := range eventsSince(t, "S", "config-apply-failed", "", t3) {
			t.Errorf("dovecot accepted the change, but S rolled back: %s", e.Message)
		}
		t4 := time.Now()
		sentry(t, "lab", "exec", "P", "--", "rm", conf)
		waitEventAfter(t, "S", "probe-green", "mail on node-s works again", t4, 30*time.Second)
	})
}

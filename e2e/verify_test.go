package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestServiceProbes runs the mail, postgres and mysql round trips inside a
// lab node against Debian's real servers, with canary accounts made here by
// hand (`sentry verifier setup` will make them, issue 6), then breaks each
// service and expects the probe to fail at the right phase.
func TestServiceProbes(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })

	sentry(t, "lab", "exec", "S", "--", "runuser", "-u", "postgres", "--", "psql", "-Xq", "-v", "ON_ERROR_STOP=1",
		"-c", "CREATE ROLE sentry_canary LOGIN PASSWORD 'canary-pw'", "-c", "CREATE DATABASE sentry_canary OWNER postgres")
	sentry(t, "lab", "exec", "S", "--", "runuser", "-u", "postgres", "--", "psql", "-Xq", "-v", "ON_ERROR_STOP=1", "-d", "sentry_canary", "-c",
		"CREATE TABLE sentry_canary (token text PRIMARY KEY, created timestamptz NOT NULL); GRANT SELECT, INSERT, DELETE ON sentry_canary TO sentry_canary;")
	pg := []string{"lab", "exec", "S", "--", "sentry", "verify", "--kind", "postgres", "--timeout", "5s",
		"--param", "user=sentry_canary", "--param", "password=canary-pw", "--param", "database=sentry_canary"}
	out := sentry(t, pg...)
	for _, want := range []string{"postgres OK", "connect", "write row", "read row", "delete row"} {
		if !strings.Contains(out, want) {
			t.Errorf("postgres probe output lacks %q:\n%s", want, out)
		}
	}
	left := sentry(t, "lab", "exec", "S", "--", "runuser", "-u", "postgres", "--", "psql", "-XtAq", "-d", "sentry_canary", "-c", "SELECT count(*) FROM sentry_canary")
	if strings.TrimSpace(left) != "0" {
		t.Errorf("the postgres probe left %s rows", left)
	}
	// A statement stuck on the server (another session holds the table
	// locked): the server cancels it before the probe's deadline, and the
	// probe says so.
	serverSideTimeout(t, "postgres", pg, `runuser -u postgres -- psql -Xq -d sentry_canary -c "BEGIN; LOCK TABLE sentry_canary IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);"`,
		`runuser -u postgres -- psql -XtAq -d sentry_canary -c "SELECT count(*) FROM pg_locks WHERE relation = 'sentry_canary'::regclass AND mode = 'AccessExclusiveLock' AND granted"`,
		`runuser -u postgres -- psql -XtAq -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"`,
		"statement timeout")
	sentry(t, "lab", "exec", "S", "--", "runuser", "-u", "postgres", "--", "psql", "-Xq", "-d", "sentry_canary", "-c", "REVOKE INSERT ON sentry_canary FROM sentry_canary")
	out, err := sentryErr(pg...)
	if err == nil || !strings.Contains(out, "FAILED: write row:") || !strings.Contains(out, "permission denied") {
		t.Errorf("postgres probe without INSERT: %v\n%s", err, out)
	}

	sentry(t, "lab", "exec", "S", "--", "mariadb", "-e",
		"CREATE DATABASE sentry_canary; CREATE USER 'sentry_canary'@'127.0.0.1' IDENTIFIED BY 'canary-pw'; "+
			"CREATE TABLE sentry_canary.sentry_canary (token VARCHAR(64) PRIMARY KEY, created DATETIME NOT NULL); "+
			"GRANT SELECT, INSERT, DELETE ON sentry_canary.sentry_canary TO 'sentry_canary'@'127.0.0.1';")
	my := []string{"lab", "exec", "S", "--", "sentry", "verify", "--kind", "mysql", "--timeout", "5s",
		"--param", "user=sentry_canary", "--param", "password=canary-pw", "--param", "database=sentry_canary"}
	if out := sentry(t, my...); !strings.Contains(out, "mysql OK") || !strings.Contains(out, "delete row") {
		t.Errorf("mysql probe:\n%s", out)
	}
	if left := sentry(t, "lab", "exec", "S", "--", "mariadb", "-N", "-e", "SELECT count(*) FROM sentry_canary.sentry_canary"); strings.TrimSpace(left) != "0" {
		t.Errorf("the mysql probe left %s rows", left)
	}
	serverSideTimeout(t, "mysql", my, `mariadb -e "LOCK TABLES sentry_canary.sentry_canary WRITE; SELECT SLEEP(60);"`,
		`mariadb -N -e "SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(60)%'"`,
		`mariadb -N -e "SELECT id FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(60)%'" | while read id; do mariadb -e "KILL $id"; done`,
		"max_statement_time")
	sentry(t, "lab", "exec", "S", "--", "mariadb", "-e", "REVOKE INSERT ON sentry_canary.sentry_canary FROM 'sentry_canary'@'127.0.0.1'")
	out, err = sentryErr(my...)
	if err == nil || !strings.Contains(out, "FAILED: write row:") || !strings.Contains(out, "denied") {
		t.Errorf("mysql probe without INSERT: %v\n%s", err, out)
	}

	// Mail: postfix delivers to /var/mail/sentry-canary, dovecot serves it
	// over IMAP with STARTTLS; the certificate is pinned by fingerprint.
	sentry(t, "lab", "exec", "S", "--", "sh", "-c", "useradd -m sentry-canary && echo sentry-canary:canary-pw | chpasswd")
	fp := sentry(t, "lab", "exec", "S", "--", "openssl", "x509", "-in", "/etc/dovecot/private/dovecot.pem", "-noout", "-fingerprint", "-sha256")
	_, fp, _ = strings.Cut(strings.TrimSpace(fp), "=")
	mail := []string{"lab", "exec", "S", "--", "sentry", "verify", "--kind", "mail", "--timeout", "20s", "--param", "to=sentry-canary@localhost",
		"--param", "user=sentry-canary", "--param", "password=canary-pw", "--param", "tls_fingerprint=" + fp}
	for i := 0; i < 3; i++ {
		out := sentry(t, mail...)
		if !strings.Contains(out, "mail OK") || !strings.Contains(out, "latency_ms = ") || !strings.Contains(out, "canary visible") {
			t.Fatalf("mail probe:\n%s", out)
		}
		if i == 0 {
			t.Logf("mail round trip inside S:\n%s", out)
		}
	}
	if n := sentry(t, "lab", "exec", "S", "--", "sh", "-c", "grep -c '^Subject: sentry canary' /var/mail/sentry-canary || true"); strings.TrimSpace(n) != "0" {
		t.Errorf("%s canaries left in the mailbox", strings.TrimSpace(n))
	}
	// A wrong pin is refused.
	bad := append(append([]string{}, mail[:len(mail)-1]...), "tls_fingerprint="+strings.Repeat("00", 32))
	if out, err := sentryErr(bad...); err == nil || !strings.Contains(out, "is not the pinned") {
		t.Errorf("a wrong certificate pin passed: %v\n%s", err, out)
	}
	sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "dovecot")
	if out, err := sentryErr(mail...); err == nil || !strings.Contains(out, "FAILED: imap login:") {
		t.Errorf("mail probe with dovecot stopped: %v\n%s", err, out)
	}
	sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "dovecot")

	// SMB: a canary share on Samba, the canary user with an SMB password.
	sentry(t, "lab", "exec", "S", "--", "sh", "-c", `set -e
mkdir -p /srv/sentry-canary && chown sentry-canary /srv/sentry-canary
printf 'canary-pw\ncanary-pw\n' | smbpasswd -s -a sentry-canary >/dev/null
printf '\n[sentry-canary]\n   path = /srv/sentry-canary\n   read only = no\n   valid users = sentry-canary\n' >> /etc/samba/smb.conf
systemctl reload smbd`)
	smbArgs := []string{"lab", "exec", "S", "--", "sentry", "verify", "--kind", "smb", "--timeout", "10s",
		"--param", "share=sentry-canary", "--param", "user=sentry-canary", "--param", "password=canary-pw"}
	if out := sentry(t, smbArgs...); !strings.Contains(out, "smb OK") || !strings.Contains(out, "read file") {
		t.Fatalf("smb probe:\n%s", out)
	}
	if n := sentry(t, "lab", "exec", "S", "--", "sh", "-c", "ls -A /srv/sentry-canary | wc -l"); strings.TrimSpace(n) != "0" {
		t.Errorf("the smb probe left %s files", strings.TrimSpace(n))
	}
	sentry(t, "lab", "exec", "S", "--", "sh", "-c", "sed -i 's/read only = no/read only = yes/' /etc/samba/smb.conf && systemctl reload smbd")
	if out, err := sentryErr(smbArgs...); err == nil || !strings.Contains(out, "FAILED: write file:") {
		t.Errorf("smb probe on a read-only share: %v\n%s", err, out)
	}

	// SFTP: the canary user over OpenSSH, the host key pinned.
	hk := sentry(t, "lab", "exec", "S", "--", "ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub")
	hkFields := strings.Fields(hk)
	if len(hkFields) < 2 {
		t.Fatalf("ssh-keygen -lf: %q", hk)
	}
	sftpArgs := []string{"lab", "exec", "S", "--", "sentry", "verify", "--kind", "sftp", "--timeout", "10s",
		"--param", "user=sentry-canary", "--param", "password=canary-pw", "--param", "host_key=" + hkFields[1]}
	if out := sentry(t, sftpArgs...); !strings.Contains(out, "sftp OK") || !strings.Contains(out, "delete file") {
		t.Fatalf("sftp probe:\n%s", out)
	}
	if out, err := sentryErr(append(sftpArgs[:len(sftpArgs)-1], "host_key=SHA256:wrong")...); err == nil || !strings.Contains(out, "is not the pinned") {
		t.Errorf("sftp with a wrong host key pin: %v\n%s", err, out)
	}
}

type probeResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

func verifyAll(t *testing.T, set string) map[string]probeResult {
	t.Helper()
	out, _ := sentryErr("lab", "exec", set, "--", "sentry", "verify", "--json")
	var rs []probeResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("sentry verify --json on %s: %v\n%s", set, err, out)
	}
	m := map[string]probeResult{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

// TestVerifierCanaries: after pairing and `sentry verifier setup` on both
// nodes, every probe is green on both; breaking each service on S turns the
// matching probe red on S, naming the phase, while P stays green; 100
// rounds leave no canary behind.
func TestVerifierCanaries(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })
	sentry(t, "lab", "pair")
	for _, set := range []string{"P", "S"} {
		sentry(t, "lab", "exec", set, "--", "sentry", "verifier", "setup")
	}
	for _, set := range []string{"P", "S"} {
		rs := verifyAll(t, set)
		if len(rs) < 14 {
			t.Fatalf("%s ran %d probes", set, len(rs))
		}
		for name, r := range rs {
			if !r.OK {
				t.Errorf("%s: %s is red: %s", set, name, r.Message)
			}
		}
	}
	// The agents run the probes on their schedule (every 15 s in the lab)
	// and tell each other: P's status shows both nodes green.
	statusOf := func(set string) map[string]struct {
		Verify    string   `json:"verify"`
		VerifyRed []string `json:"verify_red"`
	} {
		var st struct {
			Nodes []struct {
				Name      string   `json:"name"`
				Verify    string   `json:"verify"`
				VerifyRed []string `json:"verify_red"`
			} `json:"nodes"`
		}
		json.Unmarshal([]byte(sentry(t, "lab", "exec", set, "--", "sentry", "status", "--json")), &st)
		m := map[string]struct {
			Verify    string   `json:"verify"`
			VerifyRed []string `json:"verify_red"`
		}{}
		for _, n := range st.Nodes {
			m[n.Name] = struct {
				Verify    string   `json:"verify"`
				VerifyRed []string `json:"verify_red"`
			}{n.Verify, n.VerifyRed}
		}
		return m
	}
	waitStatus := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if ok() {
				return
			}
			time.Sleep(time.Second)
		}
		t.Fatalf("waited 60 s for %s: %+v", what, statusOf("P"))
	}
	waitStatus("both nodes green in P's status", func() bool {
		st := statusOf("P")
		return strings.HasPrefix(st["node-p"].Verify, "15/15 green") && strings.HasPrefix(st["node-s"].Verify, "15/15 green")
	})
	sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "dovecot")
	redAt := time.Now()
	waitStatus("S's mail probe red in P's status", func() bool {
		red := strings.Join(statusOf("P")["node-s"].VerifyRed, "\n")
		return strings.Contains(red, "mail: imap login:") && strings.Contains(red, "unit dovecot: unit state: dovecot.service is inactive")
	})
	figure(t, "dovecot stopped on S: red in P's status after %s (interval 15 s + jitter 2 s + deadline 10 s + hello 10 s)", time.Since(redAt).Round(time.Second))
	if red := statusOf("P")["node-p"].VerifyRed; len(red) != 0 {
		t.Errorf("P went red too: %v", red)
	}
	waitEvent(t, "S", "probe-red", "mail on node-s fails: imap login", 5*time.Second)
	sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "dovecot")
	waitStatus("S green again", func() bool { return strings.HasPrefix(statusOf("S")["node-s"].Verify, "15/15 green") })

	for _, c := range []struct {
		probe, brk, fix, phase string
	}{
		{"mail", "systemctl stop dovecot", "systemctl start dovecot", "imap login: "},
		{"mail", "postconf -e defer_transports=local && postfix reload", "postconf -X defer_transports && postfix reload && postqueue -f", "canary visible: IMAP login ok, canary not visible after "},
		{"postgres", `runuser -u postgres -- psql -Xq -d sentry_canary -c "REVOKE INSERT ON sentry_canary FROM sentry_canary"`,
			`runuser -u postgres -- psql -Xq -d sentry_canary -c "GRANT INSERT ON sentry_canary TO sentry_canary"`, "write row: "},
		{"smb", "sed -i 's/read only = no/read only = yes/' /etc/samba/smb.conf && systemctl reload smbd",
			"sed -i 's/read only = yes/read only = no/' /etc/samba/smb.conf && systemctl reload smbd", "write file: "},
		{"web", "mv /var/www/html/sentry-canary.html /root/", "mv /root/sentry-canary.html /var/www/html/", "check answer: status 404"},
	} {
		sentry(t, "lab", "exec", "S", "--", "sh", "-c", c.brk)
		broke := time.Now()
		out, err := sentryErr("lab", "exec", "S", "--", "sentry", "verify", "--service", c.probe, "--json")
		var rs []probeResult
		json.Unmarshal([]byte(out), &rs)
		if err == nil || len(rs) == 0 || rs[0].OK || !strings.HasPrefix(rs[0].Message, c.phase) {
			t.Errorf("after %q: S's %s probe %+v, want red at %q", c.brk, c.probe, rs, c.phase)
		}
		if p := verifyAll(t, "P")[c.probe]; !p.OK {
			t.Errorf("after %q on S: P's %s probe is red too: %s", c.brk, c.probe, p.Message)
		}
		// The schedule catches it too: within one interval (15 s + 2 s
		// jitter in the lab) plus the probe's deadline (10 s).
		limit := 27 * time.Second
		var red storedResult
		waitUntil(t, fmt.Sprintf("S's scheduled %s probe red after %q", c.probe, c.brk), 45*time.Second, func() bool {
			red = nodeResults(t, "S", "node-s")[c.probe]
			return red.Start.After(broke) && !red.OK && strings.HasPrefix(c.phase, red.FailedPhase+":")
		})
		took := red.Start.Add(time.Duration(red.DurationMS) * time.Millisecond).Sub(broke)
		if took > limit+time.Second {
			t.Errorf("%s on S red in the schedule %s after the break, more than %s", c.probe, took.Round(time.Second), limit)
		}
		figure(t, "%s broken on S (%s): red in S's schedule after %s (limit %s)", c.probe, c.brk, took.Round(time.Second), limit)
		sentry(t, "lab", "exec", "S", "--", "sh", "-c", c.fix)
	}
	// 100 rounds of the round trips; then nothing of them is left. The
	// canary the postfix case deferred is delivered late, by design: it is
	// a failed run's leftover, which the mail probe sweeps only once it is
	// older than verifier.SweepAge. So the queue is flushed and the mailbox
	// emptied first, and afterwards it must be empty again.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if q := sentry(t, "lab", "exec", "S", "--", "postqueue", "-p"); strings.Contains(q, "Mail queue is empty") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	sentry(t, "lab", "exec", "S", "--", "doveadm", "expunge", "-u", "sentry-canary", "mailbox", "INBOX", "all")
	start := time.Now()
	for i := 0; i < 100; i++ {
		if _, err := sentryErr("lab", "exec", "S", "--", "sh", "-c",
			"sentry verify --service mail >/dev/null && sentry verify --service postgres >/dev/null && sentry verify --service mysql >/dev/null && sentry verify --service smb >/dev/null && sentry verify --service sftp >/dev/null"); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	figure(t, "100 rounds of mail, postgres, mysql, smb and sftp on S in %s", time.Since(start).Round(time.Second))
	// The agent's own scheduled round may have a canary in flight for a
	// moment: what is left must reach zero within a few seconds and stay.
	var left string
	empty := func() bool {
		left = sentry(t, "lab", "exec", "S", "--", "sh", "-c", `
printf 'mail %s\n' "$(grep -c '^Subject: sentry canary' /var/mail/sentry-canary || true)"
printf 'postgres %s\n' "$(runuser -u postgres -- psql -XtAq -d sentry_canary -c 'SELECT count(*) FROM sentry_canary')"
printf 'mysql %s\n' "$(mariadb -N -e 'SELECT count(*) FROM sentry_canary.sentry_canary')"
printf 'share %s\n' "$(ls -A /srv/sentry-canary | wc -l)"
printf 'home %s\n' "$(ls /home/sentry-canary | grep -c sentry-canary || true)"`)
		for _, line := range strings.Split(strings.TrimSpace(left), "\n") {
			if f := strings.Fields(line); len(f) != 2 || f[1] != "0" {
				return false
			}
		}
		return true
	}
	deadline = time.Now().Add(15 * time.Second)
	for !empty() {
		if time.Now().After(deadline) {
			t.Fatalf("canaries left after 100 rounds (mailbox, tables, share, home must be empty):\n%s", left)
		}
		time.Sleep(time.Second)
	}
}

// serverSideTimeout runs probe (its sentry verify arguments, with a 5 s
// timeout) on S while lock (a shell command, started in the background)
// holds the canary table, once held says "1"; the probe must fail at
// "write row" with the server's own timeout (want in its message) before
// its deadline. unlock ends the locking session.
func serverSideTimeout(t *testing.T, kind string, probe []string, lock, held, unlock, want string) {
	t.Helper()
	sentry(t, "lab", "exec", "S", "--", "sh", "-c", "setsid -f sh -c '"+strings.ReplaceAll(lock, "'", `'\''`)+"' >/dev/null 2>&1")
	defer sentry(t, "lab", "exec", "S", "--", "sh", "-c", unlock)
	waitUntil(t, kind+"'s canary table locked on S", 10*time.Second, func() bool {
		out, _ := sentryErr("lab", "exec", "S", "--", "sh", "-c", held)
		return strings.TrimSpace(out) == "1"
	})
	start := time.Now()
	out, err := sentryErr(probe...)
	took := time.Since(start)
	if err == nil || !strings.Contains(out, "FAILED: write row:") || !strings.Contains(out, want) {
		t.Errorf("%s probe on a locked table: %v\n%s", kind, err, out)
	}
	figure(t, "%s probe on a locked canary table: failed after %s (deadline 5 s): %s", kind, took.Round(100*time.Millisecond), strings.TrimSpace(lastLine(out)))
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

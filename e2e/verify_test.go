package e2e

import (
	"strings"
	"testing"
)

// TestDatabaseProbes runs the postgres and mysql round trips inside a lab
// node against Debian's real servers, with a canary user and table made
// here by hand (`sentry verifier setup` will make them, issue 6), then
// revokes the canary's INSERT and expects the probe to fail at "write row".
func TestDatabaseProbes(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { sentryErr("lab", "down") })

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
	sentry(t, "lab", "exec", "S", "--", "mariadb", "-e", "REVOKE INSERT ON sentry_canary.sentry_canary FROM 'sentry_canary'@'127.0.0.1'")
	out, err = sentryErr(my...)
	if err == nil || !strings.Contains(out, "FAILED: write row:") || !strings.Contains(out, "denied") {
		t.Errorf("mysql probe without INSERT: %v\n%s", err, out)
	}
}

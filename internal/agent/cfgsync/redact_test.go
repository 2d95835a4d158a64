package cfgsync

import (
	"strings"
	"testing"
)

func TestRedactSecrets(t *testing.T) {
	diff := " listen 80;\n-password = old-s3cret\n+password = new-s3cret\n+  db_passwd: hunter2\n+relay_token tok123\n+secret_key=abc\n worker_processes auto;\n+passenger_enabled on;\n"
	got := redactSecrets(diff)
	for _, leak := range []string{"old-s3cret", "new-s3cret", "hunter2", "tok123", "abc"} {
		if strings.Contains(got, leak) {
			t.Errorf("%q shows in:\n%s", leak, got)
		}
	}
	for _, keep := range []string{" listen 80;", "-password = (redacted)", "+  db_passwd: (redacted)", " worker_processes auto;", "+passenger_enabled on;"} {
		if !strings.Contains(got, keep) {
			t.Errorf("%q lost from:\n%s", keep, got)
		}
	}
}

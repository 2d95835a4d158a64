package restic

import (
	"strings"
	"testing"
)

func TestParseSnapshots(t *testing.T) {
	flat := `[{"time":"2026-01-02T03:04:05Z","short_id":"aa","hostname":"p"},{"time":"2026-01-03T03:04:05Z","short_id":"bb","hostname":"p"}]`
	grouped := `[{"group_key":{"hostname":"p"},"snapshots":[{"time":"2026-01-02T03:04:05Z","short_id":"cc"}]}]`
	for in, want := range map[string]string{flat: "aa,bb", grouped: "cc", "[]": "", "null": ""} {
		s, err := ParseSnapshots([]byte(in))
		var ids []string
		for _, x := range s {
			ids = append(ids, x.ShortID)
		}
		if err != nil || strings.Join(ids, ",") != want {
			t.Errorf("%s: %v %v, want %s", in, ids, err, want)
		}
	}
	if _, err := ParseSnapshots([]byte("Fatal: oops")); err == nil {
		t.Error("not JSON accepted")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"rest:https://office:s3cret@nas:8000/office": "rest:https://office:***@nas:8000/office",
		"sftp:backup@nas:/srv/restic":                "sftp:backup@nas:/srv/restic",
		"/srv/restic":                                "/srv/restic",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnv(t *testing.T) {
	got := strings.Join(Env([]string{"PATH=/bin", "RESTIC_PASSWORD=x", "RESTIC_PASSWORD_COMMAND=y", "RESTIC_REPOSITORY=z", "HOME=/root"}), " ")
	if got != "PATH=/bin HOME=/root" {
		t.Errorf("Env: %s", got)
	}
}

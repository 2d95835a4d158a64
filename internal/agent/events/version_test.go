package events

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStarted(t *testing.T) {
	p := filepath.Join(t.TempDir(), VersionFile)
	for _, c := range []struct {
		version  string
		hadState bool
		want     string
		previous string
	}{
		{"0.1.0", true, "sentry 0.1.0 started; the version that ran here before is not recorded", "unknown"},
		{"0.1.0", true, "sentry 0.1.0 started", ""},
		{"0.2.0", true, "sentry 0.2.0 started; sentry 0.1.0 ran here before", "0.1.0"},
		{"0.1.0", true, "sentry 0.1.0 started; sentry 0.2.0 ran here before", "0.2.0"},
	} {
		msg, fields, err := Started(p, c.version, c.hadState)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(msg, c.want) || (c.want == "sentry 0.1.0 started" && msg != c.want) {
			t.Errorf("%s: %q, want %q", c.version, msg, c.want)
		}
		if fields["version"] != c.version || fields["previous_version"] != c.previous {
			t.Errorf("%s: fields %v", c.version, fields)
		}
		if b, _ := os.ReadFile(p); string(b) != c.version+"\n" {
			t.Errorf("%s: recorded %q", c.version, b)
		}
	}
	fresh := filepath.Join(t.TempDir(), VersionFile)
	if msg, _, _ := Started(fresh, "0.2.0", false); msg != "sentry 0.2.0 started on a new state folder" {
		t.Errorf("new state folder: %q", msg)
	}
	// A record that cannot be written is an error; the message stands.
	ro := filepath.Join(t.TempDir(), "no-such-dir", VersionFile)
	if msg, _, err := Started(ro, "0.2.0", false); err == nil || !strings.Contains(msg, "0.2.0") {
		t.Errorf("unwritable record: %q %v", msg, err)
	}
}

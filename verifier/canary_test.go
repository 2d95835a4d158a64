package verifier

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A canary page is written whole, in place, with its marker as it is, and
// a bad one is refused naming it.
func TestCanaryPageWrite(t *testing.T) {
	dir := t.TempDir()
	pg := Page{Path: filepath.Join(dir, "www", "canary.html"), Marker: "sentry-canary-1.1-ok"}
	if err := pg.write(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<p>sentry-canary-1.1-ok</p>") {
		t.Errorf("page: %s", b)
	}
	if fi, _ := os.Stat(pg.Path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(filepath.Dir(pg.Path))
	if len(ents) != 1 {
		t.Errorf("left beside the page: %v", ents)
	}
	for _, bad := range []Page{{Path: "relative.html", Marker: "m"}, {Path: filepath.Join(dir, "x.html")}, {Path: filepath.Join(dir, "y.html"), Marker: "<b>"}} {
		if err := bad.write(); err == nil || !strings.Contains(err.Error(), "canary page") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

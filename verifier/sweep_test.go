package verifier

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// TestSweepFiles: the file probes' sweep removes the canary files older
// than SweepAge that interrupted runs left, and nothing else: not a
// younger canary (another run's, in flight), not another file.
func TestSweepFiles(t *testing.T) {
	dir := t.TempDir()
	sub := "canary"
	os.Mkdir(filepath.Join(dir, sub), 0o755)
	old := time.Now().Add(-SweepAge - time.Minute)
	files := map[string]time.Time{
		"sentry-canary-aa.bin": old,                          // swept
		"sentry-canary-bb.bin": time.Now().Add(-time.Minute), // in flight
		"notes.bin":            old,                          // not a canary
		"sentry-canary-cc.txt": old,                          // not a canary's name
	}
	for n, mt := range files {
		p := filepath.Join(dir, sub, n)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mt, mt)
	}
	trip := fileTrip{
		remove: func(name string) error { return os.Remove(filepath.Join(dir, name)) },
		list: func(d string) ([]os.FileInfo, error) {
			ents, err := os.ReadDir(filepath.Join(dir, d))
			var out []os.FileInfo
			for _, e := range ents {
				fi, _ := e.Info()
				out = append(out, fi)
			}
			return out, err
		},
	}
	sweepFiles(sub, trip)
	ents, _ := os.ReadDir(filepath.Join(dir, sub))
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	sort.Strings(left)
	want := []string{"notes.bin", "sentry-canary-bb.bin", "sentry-canary-cc.txt"}
	if len(left) != len(want) {
		t.Fatalf("left %v, want %v", left, want)
	}
	for i := range want {
		if left[i] != want[i] {
			t.Fatalf("left %v, want %v", left, want)
		}
	}
	// A listing that fails sweeps nothing and does not panic.
	trip.list = func(string) ([]os.FileInfo, error) { return nil, os.ErrPermission }
	sweepFiles(sub, trip)
}

package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// A state folder made readable by others (an older version, a restore)
// is root's only again once the agent starts: it holds the keys, the
// store and config.git.
func TestStateFolderIsPrivate(t *testing.T) {
	n := startNode(t, "node-p")
	n.stop()
	state := filepath.Join(n.dir, "state")
	os.MkdirAll(filepath.Join(state, "config.git"), 0o755)
	os.Chmod(state, 0o755)
	n = startNodeAt(t, n)
	for _, p := range []string{state, filepath.Join(state, "config.git")} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want 0700", p, fi.Mode(), err)
		}
	}
}

package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// testClusterDir is the cluster folder (machine and hardware profiles) of
// every agent these tests start, in place of /etc/sentry/cluster: a test
// never writes the host's /etc. Two nodes of one test share it, as a
// primary and a secondary share theirs through the sync.
var testClusterDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sentry-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testClusterDir = filepath.Join(dir, "cluster")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

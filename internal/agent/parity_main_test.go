package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain points the hardware profiles of every agent these tests start
// (primaries, on this host) at a temporary folder instead of
// /etc/sentry/cluster/hardware.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sentry-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	HardwareDir = filepath.Join(dir, "hardware")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

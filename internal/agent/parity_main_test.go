package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sentryha/sentry/bootcheck"
)

// TestMain points the machine and hardware profiles of every agent these
// tests start (primaries, on this host) at a temporary folder instead of
// /etc/sentry/cluster: a test never writes the host's /etc.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sentry-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	HardwareDir = filepath.Join(dir, "hardware")
	bootcheck.MachinesFile = filepath.Join(dir, "machines.toml")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

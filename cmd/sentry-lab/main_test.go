package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/lab"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errors.New("boom"), exitFailure},
		{usageError{errors.New("bad flag")}, exitUsage},
		{fmt.Errorf("up: %w", lab.ErrNeedRoot), exitNeedsRoot},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestSentryBinary: the lab installs --sentry, or sentry beside sentry-lab.
func TestSentryBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flag, want string
	}{
		{"", filepath.Join(filepath.Dir(self), "sentry")},
		{"/opt/sentry", "/opt/sentry"},
	} {
		f := &labFlags{sentry: tc.flag}
		if got, err := f.sentryBinary(); err != nil || got != tc.want {
			t.Errorf("--sentry %q: %q, %v; want %q", tc.flag, got, err, tc.want)
		}
	}
}

func TestPrintStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   lab.Status
		want string
	}{
		{"down", lab.Status{}, "lab is down (start it with: sentry-lab up)\n"},
		{"up", lab.Status{Nodes: []lab.NodeStatus{
			{DiskSet: "P", Hostname: "node-p", Hardware: "hw-a", Running: true, SystemState: "running",
				Services: map[string]string{"ssh": "active", "sentry-agent": "active"},
				NICs:     []lab.NICInfo{{Name: "enp1s0", MAC: "02:00:00:00:0a:01", Address: []string{"192.0.2.10/24"}}}},
			{DiskSet: "S", Hostname: "node-s", Hardware: "hw-b", Running: true, SystemState: "starting",
				Services: map[string]string{"ssh": "active"}, Error: "systemctl is-active in disk set S answered \"\""},
		}}, `DISK SET  HOST    HARDWARE  STATE     NIC                       ADDRESS
P         node-p  hw-a      running   enp1s0 02:00:00:00:0a:01  192.0.2.10/24
S         node-s  hw-b      starting  -                         -
P services: sentry-agent=active ssh=active
S services: ssh=active
S error: systemctl is-active in disk set S answered ""
`},
	} {
		var b bytes.Buffer
		if err := printStatus(&b, &tc.st, false); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, b.String(), tc.want)
		}
		b.Reset()
		if err := printStatus(&b, &tc.st, true); err != nil || !strings.HasPrefix(b.String(), "{\n  \"name\": ") {
			t.Errorf("%s, JSON: %v\n%s", tc.name, err, b.String())
		}
	}
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	n, err := writeManPages(newRootCommand(), dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"sentry-lab.1", "sentry-lab-up.1", "sentry-lab-down.1", "sentry-lab-status.1", "sentry-lab-exec.1",
		"sentry-lab-swap.1", "sentry-lab-logs.1", "sentry-lab-pair.1", "sentry-lab-move.1"}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Contains(b, []byte(".TH")) || !bytes.Contains(b, []byte("EXIT CODES")) {
			t.Errorf("%s is not a man page with exit codes:\n%.300s", name, b)
		}
	}
	if n != len(names) {
		t.Errorf("%d pages written, want %d", n, len(names))
	}
}

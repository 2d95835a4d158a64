package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/cli"
)

func TestUnitCgroup(t *testing.T) {
	v2, hybrid := t.TempDir(), t.TempDir()
	dir := filepath.Join(hybrid, "unified", "system.slice", "x.service")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cpu.stat"), []byte("usage_usec 1\n"), 0o644)
	got, err := unitCgroup([]string{v2, filepath.Join(hybrid, "unified")}, "/system.slice/x.service")
	if err != nil || got != dir {
		t.Fatalf("got %q, %v; want %q", got, err, dir)
	}
	if _, err := unitCgroup([]string{v2}, "/system.slice/x.service"); err == nil {
		t.Fatal("a cgroup without cpu.stat was taken")
	}
	if _, err := unitCgroup([]string{v2}, "/"); err == nil {
		t.Fatal("the root cgroup was taken for the unit's")
	}
}

func TestCgroupUsageMemoryRSS(t *testing.T) {
	cg, proc := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(cg, "cpu.stat"), []byte("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"), 0o644)
	os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte("10\n11\n12\n"), 0o644)
	for pid, rss := range map[string]string{"10": "VmRSS:\t   20480 kB\n", "11": "Name:\tx\nVmRSS:\t    1024 kB\n"} {
		os.MkdirAll(filepath.Join(proc, pid), 0o755)
		os.WriteFile(filepath.Join(proc, pid, "status"), []byte("Name:\tsentry\n"+rss+"Threads:\t5\n"), 0o644)
	}
	// 12 went away: it counts nothing.
	u, err := cgroupUsage(cg)
	if err != nil || u != 2500*time.Millisecond {
		t.Fatalf("usage %v, %v", u, err)
	}
	rss, err := cgroupRSS(cg, proc)
	if err != nil || rss != 21504<<10 {
		t.Fatalf("rss %d, %v", rss, err)
	}
	if _, ok := cgroupMemory(cg); ok {
		t.Fatal("memory.current read where there is none")
	}
	os.WriteFile(filepath.Join(cg, "memory.current"), []byte("31457280\n"), 0o644)
	if m, ok := cgroupMemory(cg); !ok || m != 30<<20 {
		t.Fatalf("memory.current %d, %v", m, ok)
	}
	os.WriteFile(filepath.Join(cg, "cpu.stat"), []byte("user_usec 1\n"), 0o644)
	if _, err := cgroupUsage(cg); err == nil || !strings.Contains(err.Error(), "usage_usec") {
		t.Fatalf("cpu.stat without usage_usec: %v", err)
	}
}

// The figures are the cgroup's: its CPU (children included) and the RSS of
// all its processes; the main process's are beside them.
func TestMeasureCgroup(t *testing.T) {
	cg, proc := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(cg, "cpu.stat"), []byte("usage_usec 0\n"), 0o644)
	os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte("10\n"), 0o644)
	os.MkdirAll(filepath.Join(proc, "10"), 0o755)
	os.WriteFile(filepath.Join(proc, "10", "status"), []byte("VmRSS:\t10240 kB\n"), 0o644)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(50 * time.Millisecond)
		// 100 ms of CPU by the cgroup (a child, say) while it ran.
		os.WriteFile(filepath.Join(cg, "cpu.stat"), []byte("usage_usec 100000\n"), 0o644)
	}()
	r, err := measureCgroup(context.Background(), "x.service", int32(os.Getpid()), cg, proc, 200*time.Millisecond, 10*time.Millisecond)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if r.CPUPercent < 20 || r.CPUPercent > 60 {
		t.Errorf("CPU %.1f%%, want about 100 ms over 200 ms", r.CPUPercent)
	}
	if r.RSSMaxMB != 10 || r.RSSMeanMB != 10 {
		t.Errorf("RSS max %.1f mean %.1f, want 10 MB", r.RSSMaxMB, r.RSSMeanMB)
	}
	if r.MemCurMaxMB != -1 {
		t.Errorf("memory.current %.1f without one", r.MemCurMaxMB)
	}
	if r.MainRSSMaxMB <= 0 {
		t.Errorf("main RSS %.1f", r.MainRSSMaxMB)
	}
}

// A target or a duration of 0 or less is a usage error, before anything
// is measured.
func TestBenchIdleBadFlags(t *testing.T) {
	for _, args := range [][]string{{"idle", "--cpu-target", "0"}, {"idle", "--cpu-target", "-1"}, {"idle", "--duration", "0s"}} {
		c := newBenchCommand()
		c.SetArgs(args)
		c.SetOut(io.Discard)
		c.SetErr(io.Discard)
		err := c.Execute()
		if !cli.IsUsage(err) || !strings.Contains(err.Error(), "must be more than 0") {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

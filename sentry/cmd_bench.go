package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/sentryha/sentry/internal/cli"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/shirou/gopsutil/v3/process"
	"github.com/spf13/cobra"
)

// Targets of the agent's idle footprint (issue 3).
const (
	idleRSSTargetMB  = 40
	idleCPUTargetPct = 0.5
)

// idleReport is a unit's footprint over a period. CPU is the unit's
// cgroup's (cpu.stat usage_usec: its main process and every child it ran,
// restic, smbclient, psql...), RSS the sum of the RSS of the processes in
// the cgroup, sampled every second; the main process's own figures are
// beside them. MemCur is the cgroup's memory.current (page cache
// and kernel memory included), where the unit has a memory cgroup of its
// own (-1: it has none, as under a cgroup v1 memory controller).
type idleReport struct {
	Unit         string  `json:"unit"`
	PID          int32   `json:"pid"`
	Cgroup       string  `json:"cgroup,omitempty"` // the cgroup measured ("": the main process only)
	Seconds      float64 `json:"seconds"`
	RSSMaxMB     float64 `json:"rss_max_mb"`
	RSSMeanMB    float64 `json:"rss_mean_mb"`
	CPUPercent   float64 `json:"cpu_percent_of_one_core"`
	MainRSSMaxMB float64 `json:"main_rss_max_mb"`
	MainCPU      float64 `json:"main_cpu_percent_of_one_core"`
	MemCurMaxMB  float64 `json:"memory_current_max_mb"`
	MemCurMeanMB float64 `json:"memory_current_mean_mb"`
	RSSTargetMB  float64 `json:"rss_target_mb"`
	CPUTarget    float64 `json:"cpu_target_percent"`
	Within       bool    `json:"within_targets"`
}

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "bench",
		Short:  "Measurements of a running node (see bench/README.md)",
		Hidden: true,
	}
	var unit string
	var dur time.Duration
	var asJSON bool
	var cpuTarget float64
	idle := &cobra.Command{
		Use:   "idle",
		Short: "Measure a unit's cgroup: CPU (cpu.stat) and RSS of its processes over a period (the agent's footprint)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cpuTarget <= 0 || dur <= 0 {
				return cli.Usagef("--cpu-target (%g) and --duration (%s) must be more than 0", cpuTarget, dur)
			}
			r, err := runIdleBench(cmd.Context(), unit, dur, cpuTarget)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			printIdle(cmd.OutOrStdout(), r)
			return nil
		},
	}
	idle.Flags().StringVar(&unit, "unit", "sentry-agent.service", "systemd unit whose cgroup is measured")
	idle.Flags().DurationVar(&dur, "duration", 5*time.Minute, "how long to measure")
	idle.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	idle.Flags().Float64Var(&cpuTarget, "cpu-target", idleCPUTargetPct, "the CPU target, in % of one core (the agent probing every 10 s: 0.35)")
	exitCodes{fail: "the unit could not be measured"}.set(idle)
	cmd.AddCommand(idle)
	return cmd
}

// unitCgroup is a unit's cgroup v2 folder: the first of roots where rel
// has a cpu.stat.
func unitCgroup(roots []string, rel string) (string, error) {
	if rel == "" || rel == "/" {
		return "", errors.New("the unit has no cgroup of its own")
	}
	for _, root := range roots {
		dir := filepath.Join(root, rel)
		if _, err := os.Stat(filepath.Join(dir, "cpu.stat")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 folder with a cpu.stat for %s under %s", rel, strings.Join(roots, ", "))
}

// cgroupUsage is the cgroup's CPU time so far (cpu.stat usage_usec).
func cgroupUsage(dir string) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "usage_usec" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: usage_usec: %w", dir, err)
			}
			return time.Duration(n) * time.Microsecond, nil
		}
	}
	return 0, fmt.Errorf("%s: cpu.stat has no usage_usec", dir)
}

// cgroupMemory is the cgroup's memory.current in bytes (false: no memory
// controller on it).
func cgroupMemory(dir string) (int64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "memory.current"))
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// cgroupRSS is the sum of the RSS of the processes in the cgroup (those
// gone by the time they are read count nothing), in bytes, read from
// proc (/proc).
func cgroupRSS(dir, proc string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, pid := range strings.Fields(string(b)) {
		st, err := os.ReadFile(filepath.Join(proc, pid, "status"))
		if err != nil {
			continue
		}
		sum += vmRSS(st)
	}
	return sum, nil
}

// vmRSS is the VmRSS of a /proc/PID/status, in bytes (0 without one: a
// kernel thread, a zombie).
func vmRSS(status []byte) int64 {
	for _, line := range strings.Split(string(status), "\n") {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

func runIdleBench(ctx context.Context, unit string, dur time.Duration, cpuTarget float64) (*idleReport, error) {
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("system bus: %w", err)
	}
	defer conn.Close()
	prop, err := conn.GetServicePropertyContext(ctx, unit, "MainPID")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", unit, err)
	}
	pid, ok := prop.Value.Value().(uint32)
	if !ok || pid == 0 {
		return nil, fmt.Errorf("%s has no main process (is it running?)", unit)
	}
	prop, err = conn.GetServicePropertyContext(ctx, unit, "ControlGroup")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", unit, err)
	}
	rel, _ := prop.Value.Value().(string)
	// The cgroup v2 hierarchy, mounted alone or, on a hybrid system (the
	// lab's nodes), as "unified".
	cg, err := unitCgroup([]string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}, rel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", unit, err)
	}
	r, err := measureCgroup(ctx, unit, int32(pid), cg, "/proc", dur, time.Second)
	if err != nil || cpuTarget <= 0 {
		return r, err
	}
	r.CPUTarget = cpuTarget
	r.Within = r.RSSMaxMB < idleRSSTargetMB && r.CPUPercent <= r.CPUTarget
	return r, nil
}

// measureCgroup measures the cgroup cg, whose main process is pid, for
// dur, sampling memory every step.
func measureCgroup(ctx context.Context, unit string, pid int32, cg, proc string, dur, step time.Duration) (*idleReport, error) {
	p, err := process.NewProcessWithContext(ctx, pid)
	if err != nil {
		return nil, err
	}
	t0, err := p.TimesWithContext(ctx)
	if err != nil {
		return nil, err
	}
	u0, err := cgroupUsage(cg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r := &idleReport{Unit: unit, PID: pid, Cgroup: cg, RSSTargetMB: idleRSSTargetMB, CPUTarget: idleCPUTargetPct, MemCurMaxMB: -1, MemCurMeanMB: -1}
	var rssSum, memSum float64
	n := 0
	tick := time.NewTicker(step)
	defer tick.Stop()
	const mb = 1 << 20
	for time.Since(start) < dur {
		mi, err := p.MemoryInfoWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s (PID %d) went away: %w", unit, pid, err)
		}
		r.MainRSSMaxMB = max(r.MainRSSMaxMB, float64(mi.RSS)/mb)
		rss, err := cgroupRSS(cg, proc)
		if err != nil {
			return nil, err
		}
		r.RSSMaxMB = max(r.RSSMaxMB, float64(rss)/mb)
		rssSum += float64(rss) / mb
		if cur, ok := cgroupMemory(cg); ok {
			r.MemCurMaxMB = max(r.MemCurMaxMB, float64(cur)/mb)
			memSum += float64(cur) / mb
		}
		n++
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	t1, err := p.TimesWithContext(ctx)
	if err != nil {
		return nil, err
	}
	u1, err := cgroupUsage(cg)
	if err != nil {
		return nil, err
	}
	wall := time.Since(start).Seconds()
	r.Seconds = wall
	r.RSSMeanMB = rssSum / float64(n)
	if r.MemCurMaxMB >= 0 {
		r.MemCurMeanMB = memSum / float64(n)
	}
	r.CPUPercent = (u1 - u0).Seconds() / wall * 100
	r.MainCPU = (t1.User + t1.System - t0.User - t0.System) / wall * 100
	r.Within = r.RSSMaxMB < idleRSSTargetMB && r.CPUPercent <= r.CPUTarget
	return r, nil
}

func printIdle(w io.Writer, r *idleReport) {
	verdict := "within"
	if !r.Within {
		verdict = "NOT within"
	}
	host, _ := os.Hostname()
	mem := "memory.current: none (no memory cgroup of its own)"
	if r.MemCurMaxMB >= 0 {
		mem = fmt.Sprintf("memory.current max %.1f MB (mean %.1f)", r.MemCurMaxMB, r.MemCurMeanMB)
	}
	fmt.Fprintf(w, "%s on %s (cgroup %s, main PID %d) over %.0f s: RSS max %.1f MB (mean %.1f; target < %d MB), CPU %.3f%% of one core (target <= %.2f%%): %s targets; main process: RSS max %.1f MB, CPU %.3f%%; %s\n",
		r.Unit, host, r.Cgroup, r.PID, r.Seconds, r.RSSMaxMB, r.RSSMeanMB, idleRSSTargetMB, r.CPUPercent, r.CPUTarget, verdict,
		r.MainRSSMaxMB, r.MainCPU, mem)
}

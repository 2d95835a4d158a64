package main

import (
	"context"
	"fmt"
	"io"
	"os"
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

type idleReport struct {
	Unit        string  `json:"unit"`
	PID         int32   `json:"pid"`
	Seconds     float64 `json:"seconds"`
	RSSMaxMB    float64 `json:"rss_max_mb"`
	RSSMeanMB   float64 `json:"rss_mean_mb"`
	CPUPercent  float64 `json:"cpu_percent_of_one_core"`
	RSSTargetMB float64 `json:"rss_target_mb"`
	CPUTarget   float64 `json:"cpu_target_percent"`
	Within      bool    `json:"within_targets"`
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
	idle := &cobra.Command{
		Use:   "idle",
		Short: "Measure a unit's main process: RSS and CPU over a period (the agent's idle footprint)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := runIdleBench(cmd.Context(), unit, dur)
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
	idle.Flags().StringVar(&unit, "unit", "sentry-agent.service", "systemd unit whose main process is measured")
	idle.Flags().DurationVar(&dur, "duration", 5*time.Minute, "how long to measure")
	idle.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	exitCodes{fail: "the unit's process could not be measured"}.set(idle)
	cmd.AddCommand(idle)
	return cmd
}

func runIdleBench(ctx context.Context, unit string, dur time.Duration) (*idleReport, error) {
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
	p, err := process.NewProcessWithContext(ctx, int32(pid))
	if err != nil {
		return nil, err
	}
	t0, err := p.TimesWithContext(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var sum, max float64
	n := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < dur {
		mi, err := p.MemoryInfoWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s (PID %d) went away: %w", unit, pid, err)
		}
		mb := float64(mi.RSS) / (1 << 20)
		sum += mb
		if mb > max {
			max = mb
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
	wall := time.Since(start).Seconds()
	cpu := (t1.User + t1.System - t0.User - t0.System) / wall * 100
	r := &idleReport{Unit: unit, PID: int32(pid), Seconds: wall, RSSMaxMB: max, RSSMeanMB: sum / float64(n),
		CPUPercent: cpu, RSSTargetMB: idleRSSTargetMB, CPUTarget: idleCPUTargetPct}
	r.Within = r.RSSMaxMB < idleRSSTargetMB && r.CPUPercent < idleCPUTargetPct
	return r, nil
}

func printIdle(w io.Writer, r *idleReport) {
	verdict := "within"
	if !r.Within {
		verdict = "NOT within"
	}
	host, _ := os.Hostname()
	fmt.Fprintf(w, "%s on %s (PID %d) over %.0f s: RSS max %.1f MB (mean %.1f; target < %d MB), CPU %.3f%% of one core (target < %.1f%%): %s targets\n",
		r.Unit, host, r.PID, r.Seconds, r.RSSMaxMB, r.RSSMeanMB, idleRSSTargetMB, r.CPUPercent, idleCPUTargetPct, verdict)
}

package verifier

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// DiskParams are the disk probe's parameters.
type DiskParams struct {
	Path           string `param:"path,abs"`                 // default /
	MinFreePercent int    `param:"min_free_percent,percent"` // default 10
}

func (*DiskParams) probeParams() {}

// probeDisk checks the free space of the file system holding path.
func probeDisk(ctx context.Context, p *DiskParams, rec *Recorder) error {
	path, min := p.Path, p.MinFreePercent
	return rec.Phase("statfs", func() error {
		var st syscall.Statfs_t
		if err := syscall.Statfs(path, &st); err != nil {
			return err
		}
		if st.Blocks == 0 {
			return fmt.Errorf("%s reports no blocks", path)
		}
		free := float64(st.Bavail) / float64(st.Blocks) * 100
		rec.Set("free_percent", fmt.Sprintf("%.1f", free))
		if free < float64(min) {
			return fmt.Errorf("%s has %.1f%% free, below %d%%", path, free, min)
		}
		return nil
	})
}

// RAIDParams are the raid probe's parameters.
type RAIDParams struct {
	MinArrays int `param:"min_arrays,nonneg"` // default 0
	// MDStat is the file read (default /proc/mdstat): a fixture in tests.
	MDStat string `param:"mdstat"`
}

func (*RAIDParams) probeParams() {}

// probeRAID reads /proc/mdstat: a degraded array ([U_]) fails, a resync or
// recovery in progress fails with its progress, and fewer arrays than
// min_arrays (default 0) fails. No md arrays, or no /proc/mdstat at all (no
// md driver loaded), is a pass when none are required: hardware RAID is out
// of its sight, and the result says how many arrays it saw.
func probeRAID(ctx context.Context, p *RAIDParams, rec *Recorder) error {
	want := p.MinArrays
	return rec.Phase("read mdstat", func() error {
		b, err := os.ReadFile(p.MDStat)
		if errors.Is(err, fs.ErrNotExist) {
			b, err = nil, nil
		}
		if err != nil {
			return err
		}
		arrays, problems := 0, []string{}
		var cur string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[1] == ":" && strings.HasPrefix(f[0], "md") {
				cur = f[0]
				arrays++
				continue
			}
			if cur == "" {
				continue
			}
			if i := strings.LastIndex(line, "["); i >= 0 && strings.Contains(line[i:], "_") && strings.HasSuffix(strings.TrimSpace(line), "]") {
				problems = append(problems, cur+" degraded "+strings.TrimSpace(line[i:]))
			}
			for _, w := range []string{"resync", "recovery", "reshape", "check"} {
				if strings.Contains(line, w+" =") {
					problems = append(problems, cur+" "+strings.TrimSpace(line))
				}
			}
		}
		rec.Set("arrays", fmt.Sprint(arrays))
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		if arrays < want {
			return fmt.Errorf("%d md array(s), want at least %d", arrays, want)
		}
		return nil
	})
}

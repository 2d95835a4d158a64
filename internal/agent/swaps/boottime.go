package swaps

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's start
// time: 100 on every Linux architecture Debian builds for.
const clockTicks = 100

// BootTime is when this machine booted: the start of PID 1 (the kernel's
// boot time plus PID 1's start time), which in a container (the lab's
// nspawn nodes) is the container's start rather than the host's boot.
func BootTime() (time.Time, error) { return bootTimeFrom("/proc/stat", "/proc/1/stat") }

func bootTimeFrom(statPath, pid1Path string) (time.Time, error) {
	b, err := os.ReadFile(statPath)
	if err != nil {
		return time.Time{}, err
	}
	var btime int64 = -1
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if btime, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
				return time.Time{}, fmt.Errorf("%s: btime %q: %w", statPath, v, err)
			}
		}
	}
	if btime < 0 {
		return time.Time{}, fmt.Errorf("%s: no btime line", statPath)
	}
	p, err := os.ReadFile(pid1Path)
	if err != nil {
		return time.Time{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after the last ')' start at field 3; start time is 22.
	i := bytes.LastIndexByte(p, ')')
	if i < 0 {
		return time.Time{}, fmt.Errorf("%s: no command name", pid1Path)
	}
	f := strings.Fields(string(p[i+1:]))
	if len(f) < 20 {
		return time.Time{}, fmt.Errorf("%s: %d fields after the command name, want at least 20", pid1Path, len(f))
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: start time %q: %w", pid1Path, f[19], err)
	}
	return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / clockTicks).UTC(), nil
}

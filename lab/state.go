package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sentryha/sentry/internal/atomicfile"
)

const stateVersion = 1

// State is what the lab has started, so that Down stops exactly that.
type State struct {
	Version int         `json:"version"`
	Nodes   []NodeState `json:"nodes"`
}

// NodeState is one booted disk set.
type NodeState struct {
	Set       string `json:"set"`      // P or S
	Hardware  string `json:"hardware"` // a or b
	NspawnPID int    `json:"nspawn_pid"`
	// StartTime is the process start time (clock ticks since boot, field 22
	// of /proc/PID/stat): a PID is ours only if it still matches.
	StartTime uint64 `json:"start_time"`
	// PID1 is the node's systemd (the child of nspawn), with its start
	// time: it outlives a killed nspawn, and killing it stops the node.
	PID1          int    `json:"pid1"`
	PID1StartTime uint64 `json:"pid1_start_time"`
	Root          string `json:"root"`
	BootedAt      string `json:"booted_at"`
}

// stateFile is the lab's state folder: the state file, and the lock that
// keeps two lab commands from interleaving.
type stateFile struct {
	dir string // the state folder of this lab
}

func (s *stateFile) path() string { return filepath.Join(s.dir, "state.json") }

func (s *stateFile) load() (*State, error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, os.ErrNotExist) {
		return &State{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w (remove it after checking that no lab process runs)", s.path(), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%s: state version %d, this sentry knows %d", s.path(), st.Version, stateVersion)
	}
	return &st, nil
}

func (s *stateFile) save(st *State) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	st.Version = stateVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path(), append(b, '\n'), 0o644)
}

// lock takes an exclusive lock on the lab, so that two lab commands never
// interleave. The returned func releases it.
func (s *stateFile) lock() (func(), error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another lab command holds %s", f.Name())
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// procStartTime reads field 22 of /proc/PID/stat; ok is false when the
// process does not exist or is a zombie.
func procStartTime(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); start time is field 22, so f[19].
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

// alive tells whether the recorded process is still the one we started.
func (n *NodeState) alive() bool {
	if n.NspawnPID <= 0 {
		return false
	}
	// Reap it if it is our own child that has exited.
	var ws syscall.WaitStatus
	syscall.Wait4(n.NspawnPID, &ws, syscall.WNOHANG, nil)
	st, ok := procStartTime(n.NspawnPID)
	return ok && st == n.StartTime
}

// pid1Alive tells whether the recorded systemd of the node still runs.
func (n *NodeState) pid1Alive() bool {
	if n.PID1 <= 0 {
		return false
	}
	st, ok := procStartTime(n.PID1)
	return ok && st == n.PID1StartTime
}

// pid1 returns the node's systemd: the child of the recorded nspawn.
func (n *NodeState) pid1() (int, error) {
	if !n.alive() {
		return 0, fmt.Errorf("disk set %s: %w (its systemd-nspawn, PID %d, has exited)", n.Set, ErrNotRunning, n.NspawnPID)
	}
	return childOf(n.NspawnPID)
}

func childOf(pid int) (int, error) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				return c, nil
			}
		}
	}
	return 0, fmt.Errorf("process %d has no child yet", pid)
}

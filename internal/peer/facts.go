package peer

import (
	"fmt"
	"time"
)

// Facts are a node's slowly changing local facts that the readiness
// verdict judges on both nodes (issue 15): its md arrays, its disks' SMART
// verdicts, how its disk set boots without the machine's NVRAM, and
// whether the boot check's network adaptation covers how it configures
// its network. A part that could not be read is absent (its error says
// why), which the verdict takes as unknown, never as healthy.
type Facts struct {
	At        time.Time    `json:"at"`
	RAID      []RAIDArray  `json:"raid,omitempty"`
	RAIDError string       `json:"raid_error,omitempty"` // set: RAID not read
	Disks     []DiskHealth `json:"disks,omitempty"`
	Loader    *Loader      `json:"loader,omitempty"`
	LoaderErr string       `json:"loader_error,omitempty"`
	Network   *Network     `json:"network,omitempty"`
	NetErr    string       `json:"network_error,omitempty"`
}

// RAIDArray is one md array (/proc/mdstat).
type RAIDArray struct {
	Name     string   `json:"name"`
	Level    string   `json:"level,omitempty"`
	Members  int      `json:"members"`
	Up       int      `json:"up"`
	Action   string   `json:"action,omitempty"` // recover, resync, reshape, check, repair
	Progress string   `json:"progress,omitempty"`
	Failed   []string `json:"failed,omitempty"`
}

// DiskHealth is one disk's SMART verdict (Passed nil: unreadable).
type DiskHealth struct {
	Device string `json:"device"`
	Serial string `json:"serial,omitempty"`
	Passed *bool  `json:"passed,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Loader says how the disk set boots: "uefi", "bios" or "none" (no disks
// of its own: a container).
type Loader struct {
	Mode string          `json:"mode"`
	ESPs []ESP           `json:"esps,omitempty"`
	GRUB map[string]bool `json:"grub,omitempty"`
}

// ESP is one EFI system partition of the disk set.
type ESP struct {
	Device   string `json:"device"`
	Fallback bool   `json:"fallback"`
	Digest   string `json:"digest,omitempty"`
	Err      string `json:"error,omitempty"`
}

// Network is the boot check's network coverage of the node.
type Network struct {
	Method  string `json:"method"`
	Covered bool   `json:"covered"`
	Detail  string `json:"detail,omitempty"`
}

// Bounds of what a node says about its modules and facts.
const (
	MaxModules   = 256
	maxFactItems = 64
)

// validate bounds the facts: item counts and string lengths.
func (f *Facts) validate() error {
	if f == nil {
		return nil
	}
	bad := func(what string) error { return fmt.Errorf("%w: facts: %s", ErrMalformed, what) }
	long := func(l ...string) bool {
		for _, s := range l {
			if len(s) > 4096 {
				return true
			}
		}
		return false
	}
	if len(f.RAID) > maxFactItems || len(f.Disks) > maxFactItems {
		return bad("too many arrays or disks")
	}
	if long(f.RAIDError, f.LoaderErr, f.NetErr) {
		return bad("an error longer than 4096 bytes")
	}
	for _, a := range f.RAID {
		if len(a.Failed) > maxFactItems || long(a.Name, a.Level, a.Action, a.Progress) || len(a.Name+a.Level+a.Action+a.Progress) > 512 {
			return bad("an array's field too long")
		}
		for _, d := range a.Failed {
			if len(d) > 128 {
				return bad("a failed member's name too long")
			}
		}
	}
	for _, d := range f.Disks {
		if len(d.Device)+len(d.Serial) > 512 || long(d.Detail) {
			return bad("a disk's field too long")
		}
	}
	if l := f.Loader; l != nil {
		if len(l.ESPs) > maxFactItems || len(l.GRUB) > maxFactItems || len(l.Mode) > 64 {
			return bad("too many ESPs or GRUB disks")
		}
		for _, e := range l.ESPs {
			if len(e.Device)+len(e.Digest) > 512 || long(e.Err) {
				return bad("an ESP's field too long")
			}
		}
		for d := range l.GRUB {
			if len(d) > 512 {
				return bad("a GRUB disk's name too long")
			}
		}
	}
	if n := f.Network; n != nil && (len(n.Method) > 512 || long(n.Detail)) {
		return bad("the network's field too long")
	}
	return nil
}

// validModules bounds the modules a node says it uses.
func validModules(m map[string]string) error {
	if len(m) > MaxModules {
		return fmt.Errorf("%w: %d modules (at most %d)", ErrMalformed, len(m), MaxModules)
	}
	for k, v := range m {
		if len(k) > 128 || len(v) > 128 || hasControl(k+v) {
			return fmt.Errorf("%w: module %.40q: name or version longer than 128 bytes or with control characters", ErrMalformed, k)
		}
	}
	return nil
}

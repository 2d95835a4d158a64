// Package inventory takes a node's software and hardware inventory for
// package parity and cross-boot compatibility: the installed packages (read
// from dpkg's status file, no dpkg-query), apt sources, kernels and their
// module trees, firmware, and the PCI devices and NICs. Two inventories are
// compared by Drift; Compat says whether one node's disk set boots on the
// other node's machine, and Plan says what to install to bring them in step.
//
// Every path read is a field of Sources, so tests point them at fixture trees
// under testdata/. docs/parity.md describes the rules.
package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/safetoml"
)

// SchemaVersion is written into every inventory; Load refuses a newer one.
const SchemaVersion = 1

// Inventory is one node's packages, kernels, firmware and hardware at a time.
type Inventory struct {
	SchemaVersion int       `json:"schema_version" toml:"schema_version"`
	Node          string    `json:"node" toml:"node"`
	Taken         time.Time `json:"taken" toml:"taken"`
	// MachineID is the hardware identity (internal/hwid) of the machine
	// the inventory was taken on, "" when unknown (and in inventories of
	// older agents): after a disk swap it tells an inventory of this disk
	// set taken on the other machine.
	MachineID string `json:"machine_id,omitempty" toml:"machine_id,omitempty"`

	Packages []Package   `json:"packages" toml:"packages"`
	Sources  []AptSource `json:"apt_sources" toml:"apt_sources"`

	// RunningKernel is /proc/sys/kernel/osrelease.
	RunningKernel string `json:"running_kernel" toml:"running_kernel"`
	// DefaultKernel is the release the disk set boots (the target of the
	// /vmlinuz symlink), "" when unknown: the newest installed one then.
	DefaultKernel string   `json:"default_kernel,omitempty" toml:"default_kernel,omitempty"`
	Kernels       []Kernel `json:"kernels" toml:"kernels"`
	// Loaded are the modules in /proc/modules.
	Loaded []string `json:"loaded_modules" toml:"loaded_modules"`
	// Firmware are the files under /lib/firmware, relative to it.
	Firmware []string `json:"firmware" toml:"firmware"`
	// FirmwarePackages maps a firmware file (relative) to the package that
	// ships it, for the files some package owns.
	FirmwarePackages map[string]string `json:"firmware_packages,omitempty" toml:"firmware_packages,omitempty"`

	Hardware Hardware `json:"hardware" toml:"hardware"`

	// Notes say what could not be read and was left empty (no /proc/modules
	// in a container, no /lib/modules on a custom kernel).
	Notes []string `json:"notes,omitempty" toml:"notes,omitempty"`
}

// Sources are the places an inventory is read from. Host("/") gives the
// real ones; tests root them at a fixture tree.
type Sources struct {
	Node      string
	MachineID string // recorded as the inventory's MachineID
	DpkgDir   string // /var/lib/dpkg: status, info/*.list
	Proc      string // /proc
	Sys       string // /sys
	Modules   string // /lib/modules
	Firmware  string // /lib/firmware
	Apt       string // /etc/apt
	Boot      string // /boot: initrd.img-<release>
	Vmlinuz   string // /vmlinuz: its target names the default kernel

	// Machine reads CPU and memory; nil leaves them empty (tests).
	Machine func() (CPU, uint64, error)
	// Initramfs lists the modules in a kernel's initramfs image; nil
	// records them as unknown.
	Initramfs func(image string) Initramfs
	// Modaliases are more devices whose modules' firmware needs are read
	// (the peer's, from its last inventory), besides this machine's own.
	Modaliases []string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Host returns the Sources of the system rooted at root ("/" for this one).
func Host(root string) Sources {
	j := func(p string) string { return filepath.Join(root, p) }
	s := Sources{
		DpkgDir: j("/var/lib/dpkg"), Proc: j("/proc"), Sys: j("/sys"), Modules: j("/lib/modules"),
		Firmware: j("/lib/firmware"), Apt: j("/etc/apt"), Boot: j("/boot"), Vmlinuz: j("/vmlinuz"),
		Initramfs: InitramfsModules,
	}
	if root == "/" {
		s.Node, _ = os.Hostname()
		s.Machine = HostMachine
	}
	return s
}

// Take reads a whole inventory. A corrupt dpkg status or module index is an
// error (wrapping ErrCorrupt); a missing optional source (no /proc/modules,
// no /lib/modules) is a note.
func Take(src Sources) (*Inventory, error) {
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	inv := &Inventory{SchemaVersion: SchemaVersion, Node: src.Node, MachineID: src.MachineID, Taken: now().UTC()}
	note := func(format string, a ...any) { inv.Notes = append(inv.Notes, fmt.Sprintf(format, a...)) }

	pkgs, err := ReadStatus(filepath.Join(src.DpkgDir, "status"))
	if err != nil {
		return nil, err
	}
	inv.Packages = pkgs

	if inv.Sources, err = ReadAptSources(src.Apt); err != nil {
		return nil, err
	}

	if b, err := os.ReadFile(filepath.Join(src.Proc, "sys/kernel/osrelease")); err == nil {
		inv.RunningKernel = strings.TrimSpace(string(b))
	} else {
		note("running kernel unknown: %v", err)
	}
	if t, err := os.Readlink(src.Vmlinuz); err == nil {
		inv.DefaultKernel = strings.TrimPrefix(filepath.Base(t), "vmlinuz-")
	}

	if inv.Loaded, err = ReadLoadedModules(filepath.Join(src.Proc, "modules")); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		note("loaded modules unknown: %s/modules is missing", src.Proc)
	}

	if inv.Hardware, err = ReadHardware(src.Sys); err != nil {
		return nil, err
	}
	if src.Machine != nil {
		if inv.Hardware.CPU, inv.Hardware.MemoryBytes, err = src.Machine(); err != nil {
			note("cpu and memory unknown: %v", err)
		}
	}

	if inv.Firmware, err = ReadFirmware(src.Firmware); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		note("no firmware folder %s", src.Firmware)
	}

	owners, err := Owners(filepath.Join(src.DpkgDir, "info"), func(p string) bool {
		return strings.HasPrefix(p, "/lib/modules/") || strings.HasPrefix(p, "/lib/firmware/")
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for p, pkg := range owners {
		if rel, ok := strings.CutPrefix(p, "/lib/firmware/"); ok {
			if inv.FirmwarePackages == nil {
				inv.FirmwarePackages = map[string]string{}
			}
			inv.FirmwarePackages[rel] = pkg
		}
	}

	releases, err := os.ReadDir(src.Modules)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(releases) == 0 {
		note("no installed kernel under %s", src.Modules)
	}
	modaliases := append(inv.Hardware.Modaliases(), src.Modaliases...)
	for _, r := range releases {
		if !r.IsDir() {
			continue
		}
		k, err := ReadKernel(filepath.Join(src.Modules, r.Name()))
		if err != nil {
			return nil, err
		}
		for i := range k.Modules {
			k.Modules[i].Package = owners["/lib/modules/"+k.Release+"/"+k.Modules[i].Path]
		}
		// Firmware needs are read for the modules that drive this
		// machine's and the peer's devices: reading every module's
		// .modinfo would mean decompressing thousands of files.
		m := k.Matcher()
		for _, ma := range modaliases {
			for _, name := range m.ModulesFor(ma) {
				if err := k.ReadModuleFirmware(src.Modules, name); err != nil {
					note("firmware of module %s in %s unknown: %v", name, k.Release, err)
				}
			}
		}
		if src.Initramfs != nil {
			k.Initramfs = src.Initramfs(filepath.Join(src.Boot, "initrd.img-"+k.Release))
		} else {
			k.Initramfs = Initramfs{State: StateUnknown, Reason: "initramfs not read"}
		}
		inv.Kernels = append(inv.Kernels, k)
	}
	sort.Slice(inv.Kernels, func(i, j int) bool { return CompareVersions(inv.Kernels[i].Release, inv.Kernels[j].Release) < 0 })
	return inv, nil
}

// BootKernel is the kernel this disk set boots: DefaultKernel when it is
// installed, else the newest installed one; nil when none is installed.
func (inv *Inventory) BootKernel() *Kernel {
	if inv == nil || len(inv.Kernels) == 0 {
		return nil
	}
	for i := range inv.Kernels {
		if inv.Kernels[i].Release == inv.DefaultKernel {
			return &inv.Kernels[i]
		}
	}
	best := 0
	for i := range inv.Kernels {
		if CompareVersions(inv.Kernels[i].Release, inv.Kernels[best].Release) > 0 {
			best = i
		}
	}
	return &inv.Kernels[best]
}

// Kernel finds an installed kernel by release.
func (inv *Inventory) Kernel(release string) *Kernel {
	for i := range inv.Kernels {
		if inv.Kernels[i].Release == release {
			return &inv.Kernels[i]
		}
	}
	return nil
}

// firmwareSet indexes firmware files for hasFirmware.
func firmwareSet(files []string) map[string]bool {
	m := make(map[string]bool, len(files))
	for _, f := range files {
		m[f] = true
	}
	return m
}

// hasFirmware says whether a firmware file is present, plain or compressed
// (the kernel also loads name.xz and name.zst).
func hasFirmware(set map[string]bool, name string) bool {
	return set[name] || set[name+".xz"] || set[name+".zst"]
}

// Save writes inv to path atomically: JSON when path ends in .json, TOML
// otherwise. Readers see the previous inventory or this one, never half.
func Save(path string, inv *Inventory) error {
	var b bytes.Buffer
	if strings.HasSuffix(path, ".json") {
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(inv); err != nil {
			return fmt.Errorf("save inventory %s: %w", path, err)
		}
	} else if err := toml.NewEncoder(&b).Encode(inv); err != nil {
		return fmt.Errorf("save inventory %s: %w", path, err)
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

// Load reads an inventory written by Save.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load inventory: %w", err)
	}
	inv := new(Inventory)
	if strings.HasSuffix(path, ".json") {
		err = json.Unmarshal(data, inv)
	} else {
		// A state file this agent wrote; bounded before parsing all the same.
		_, err = safetoml.Decode("", data, inv, safetoml.Large())
	}
	if err != nil {
		return nil, fmt.Errorf("load inventory %s: %w", path, err)
	}
	if inv.SchemaVersion < 1 || inv.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("load inventory %s: schema version %d, this sentry reads 1 to %d", path, inv.SchemaVersion, SchemaVersion)
	}
	return inv, nil
}

// Update takes a new inventory and saves it to path. When taking fails (a
// corrupt status file, say) it returns the error and leaves the inventory
// saved last in place, so the last good one is still there to compare.
func Update(path string, src Sources) (*Inventory, error) {
	inv, err := Take(src)
	if err != nil {
		return nil, err
	}
	if err := Save(path, inv); err != nil {
		return nil, err
	}
	return inv, nil
}

package inventory

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// The states of a drift item, a side of a comparison, or a check.
const (
	StateInStep  = "in-step"
	StateDrifted = "drifted"
	StateUnknown = "unknown"
)

// Initramfs is the list of modules in one initramfs image.
type Initramfs struct {
	Image string `json:"image" toml:"image"`
	// State is "listed" when Modules is the image's content, StateUnknown
	// when it could not be read (Reason says why).
	State   string   `json:"state" toml:"state"`
	Modules []string `json:"modules,omitempty" toml:"modules,omitempty"`
	Reason  string   `json:"reason,omitempty" toml:"reason,omitempty"`
}

// Listed is the State of an initramfs whose modules are known.
const Listed = "listed"

// Has says whether module is in the image (dashes and underscores alike).
func (i Initramfs) Has(module string) bool {
	module = ModuleName(module)
	for _, m := range i.Modules {
		if m == module {
			return true
		}
	}
	return false
}

// LsInitramfs is the command that lists an initramfs image (initramfs-tools).
const LsInitramfs = "lsinitramfs"

// InitramfsModules lists the kernel modules in an initramfs image with
// lsinitramfs. Without lsinitramfs, or without the image, the list is
// unknown, with the reason.
func InitramfsModules(image string) Initramfs { return ListInitramfs(LsInitramfs, image) }

// ListInitramfs is InitramfsModules with the lsinitramfs command named
// (a name looked up in PATH, or a path).
func ListInitramfs(lsinitramfs, image string) Initramfs {
	out := Initramfs{Image: image, State: StateUnknown}
	if _, err := os.Stat(image); err != nil {
		out.Reason = fmt.Sprintf("no image: %v", err)
		return out
	}
	bin, err := exec.LookPath(lsinitramfs)
	if err != nil {
		out.Reason = lsinitramfs + " is not installed (package initramfs-tools-core)"
		return out
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, image)
	cmd.Stderr = &stderr
	list, err := cmd.Output()
	if err != nil {
		out.Reason = fmt.Sprintf("%s %s: %v: %s", lsinitramfs, image, err, strings.TrimSpace(stderr.String()))
		return out
	}
	return ParseLsinitramfs(image, list)
}

// ParseLsinitramfs reads the output of lsinitramfs for image: the module
// files in it, by module name.
func ParseLsinitramfs(image string, list []byte) Initramfs {
	out := Initramfs{Image: image, State: Listed}
	seen := map[string]bool{}
	for _, l := range strings.Split(string(list), "\n") {
		plain := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(l), ".xz"), ".zst"), ".gz")
		if !strings.HasSuffix(plain, ".ko") {
			continue
		}
		if n := ModuleName(plain); !seen[n] {
			seen[n] = true
			out.Modules = append(out.Modules, n)
		}
	}
	sort.Strings(out.Modules)
	return out
}

// CoreDrivers are drivers that are always part of the kernel image and have
// no module alias (PCIe port services): a device bound to one needs nothing
// from the disk set.
var CoreDrivers = map[string]bool{"pcieport": true}

// CompatReport says whether a disk set boots on a machine, and why.
type CompatReport struct {
	DiskSet string `json:"disk_set"` // node the disk set was taken on
	Machine string `json:"machine"`  // the machine's name, "" when not given
	// MachineFrom says where the machine's hardware came from when it is
	// not a live inventory: "machine B's profile from the config repo
	// (<file>), taken <time>".
	MachineFrom string `json:"machine_from,omitempty"`
	Kernel      string `json:"kernel"` // the kernel the disk set boots
	// Boots is "yes", "no" or "unknown".
	Boots   string           `json:"boots"`
	Because []string         `json:"because"`
	Devices []DeviceEvidence `json:"devices"`
}

// DeviceEvidence is what one PCI device of the machine needs from the disk
// set, and whether it has it.
type DeviceEvidence struct {
	Slot     string `json:"slot"`
	Class    string `json:"class"`
	ID       string `json:"id"` // vendor:device
	Modalias string `json:"modalias"`
	Kind     string `json:"kind"` // storage, network, other
	// Driver is the driver bound to it on its machine.
	Driver string `json:"driver,omitempty"`
	// Required: bound to a driver on its machine, or a storage or network
	// controller. A device that is not required never fails the check.
	Required bool `json:"required"`
	// Modules match its modalias in the disk set's boot kernel; Module is
	// the one the evidence below is about.
	Modules []string `json:"modules,omitempty"`
	Module  string   `json:"module,omitempty"`
	// Initramfs is for storage and network controllers: "yes", "no",
	// "built-in" or "unknown" ("" for other devices).
	Initramfs       string   `json:"initramfs,omitempty"`
	MissingDeps     []string `json:"missing_deps,omitempty"` // dependencies not in the initramfs
	Firmware        []string `json:"firmware,omitempty"`     // named by the module
	MissingFirmware []string `json:"missing_firmware,omitempty"`
	// Verdict is ok, fail, unknown or not-required; Cause is one of the
	// Cause* values for fail and unknown.
	Verdict string `json:"verdict"`
	Cause   string `json:"cause,omitempty"`
	Reason  string `json:"reason"`
}

// Causes of a failed or unknown device.
const (
	CauseNoKernel         = "no-kernel"
	CauseNoModule         = "no-module"
	CauseNotInInitramfs   = "not-in-initramfs"
	CauseInitramfsUnknown = "initramfs-unknown"
	CauseMissingFirmware  = "missing-firmware"
	CauseFirmwareUnknown  = "firmware-unknown"
)

func deviceKind(d PCIDevice) string {
	switch {
	case d.Storage():
		return "storage"
	case d.Network():
		return "network"
	}
	return "other"
}

// Compat says whether diskSet (an inventory of the disks) boots on a
// machine with hardware machine: for every PCI device, a module that
// matches its modalias in the kernel the disk set boots (BootKernel); for
// a storage controller that module and its dependencies in the initramfs
// (or built in); and the firmware the module names. docs/parity.md has the
// rules.
func Compat(diskSet *Inventory, machine *Hardware) CompatReport {
	r := CompatReport{}
	if diskSet == nil || machine == nil {
		r.Boots = StateUnknown
		r.Because = []string{"no inventory of the disk set or of the machine"}
		return r
	}
	r.DiskSet = diskSet.Node
	k := diskSet.BootKernel()
	var m *Matcher
	fw := firmwareSet(diskSet.Firmware)
	if k != nil {
		r.Kernel = k.Release
		m = k.Matcher()
	}
	for _, d := range machine.PCI {
		ev := DeviceEvidence{
			Slot: d.Slot, Class: d.Class, ID: d.Vendor + ":" + d.Device, Modalias: d.Modalias,
			Kind: deviceKind(d), Driver: d.Driver,
		}
		ev.Required = d.Driver != "" || d.Storage() || d.Network()
		switch {
		case k == nil:
			ev.Verdict, ev.Cause, ev.Reason = StateUnknown, CauseNoKernel, "the disk set has no kernel under /lib/modules"
		case k.Incomplete != "":
			ev.Verdict, ev.Cause, ev.Reason = StateUnknown, CauseNoKernel, "kernel "+k.Release+": "+k.Incomplete
		default:
			ev.Modules = m.ModulesFor(d.Modalias)
			judge(&ev, k, fw)
		}
		if !ev.Required && ev.Verdict != "ok" {
			ev.Verdict, ev.Cause = "not-required", ""
		}
		r.Devices = append(r.Devices, ev)
	}
	var fails, unknowns []string
	required := 0
	for _, ev := range r.Devices {
		if ev.Required {
			required++
		}
		line := fmt.Sprintf("%s %s %s", ev.Slot, ev.Kind, ev.ID)
		if ev.Driver != "" {
			line += " (" + ev.Driver + " on its machine)"
		}
		switch ev.Verdict {
		case "fail":
			fails = append(fails, line+": "+ev.Reason)
		case StateUnknown:
			unknowns = append(unknowns, line+": "+ev.Reason)
		}
	}
	switch {
	case len(fails) > 0:
		r.Boots, r.Because = "no", fails
	case len(unknowns) > 0:
		r.Boots, r.Because = StateUnknown, unknowns
	default:
		r.Boots = "yes"
		r.Because = []string{fmt.Sprintf("all %d required devices have a module in %s, storage drivers are in its initramfs, and their firmware is present", required, r.Kernel)}
	}
	return r
}

// judge fills the verdict of a device whose candidate modules are known:
// of several candidates the best one counts, the bound driver's first.
func judge(ev *DeviceEvidence, k *Kernel, fw map[string]bool) {
	if len(ev.Modules) == 0 {
		if CoreDrivers[ev.Driver] {
			ev.Verdict, ev.Reason = "ok", "driver "+ev.Driver+" is part of every kernel"
			return
		}
		ev.Verdict, ev.Cause = "fail", CauseNoModule
		ev.Reason = fmt.Sprintf("no module in %s matches %s", k.Release, ev.Modalias)
		return
	}
	cands := append([]string(nil), ev.Modules...)
	sort.SliceStable(cands, func(i, j int) bool {
		return ModuleName(ev.Driver) == cands[i] && ModuleName(ev.Driver) != cands[j]
	})
	rank := map[string]int{"ok": 0, StateUnknown: 1, "fail": 2}
	var best *DeviceEvidence
	for _, c := range cands {
		try := *ev
		try.Module = c
		judgeModule(&try, k, fw)
		if best == nil || rank[try.Verdict] < rank[best.Verdict] {
			best = &try
		}
	}
	*ev = *best
}

func judgeModule(ev *DeviceEvidence, k *Kernel, fw map[string]bool) {
	mod := k.Module(ev.Module)
	if mod == nil {
		// modules.alias names it but modules.dep has no file for it.
		ev.Verdict, ev.Cause = "fail", CauseNoModule
		ev.Reason = fmt.Sprintf("module %s is in modules.alias of %s but has no file in modules.dep", ev.Module, k.Release)
		return
	}
	ev.Verdict, ev.Reason = "ok", "module "+mod.Name
	if mod.Builtin {
		ev.Reason += " is built into " + k.Release
	} else {
		ev.Reason += " is in " + k.Release
	}
	if ev.Kind == "storage" || ev.Kind == "network" {
		switch {
		case mod.Builtin:
			ev.Initramfs = "built-in"
		case k.Initramfs.State != Listed:
			ev.Initramfs = StateUnknown
		case k.Initramfs.Has(mod.Name):
			ev.Initramfs = "yes"
			for _, d := range mod.Deps {
				if dm := k.Module(d); !k.Initramfs.Has(d) && (dm == nil || !dm.Builtin) {
					ev.MissingDeps = append(ev.MissingDeps, d)
				}
			}
		default:
			ev.Initramfs = "no"
		}
		// Only the root file system's controller is needed before the
		// root is mounted; a NIC's module loads from the disk after.
		if ev.Kind == "storage" {
			switch {
			case ev.Initramfs == "no":
				ev.Verdict, ev.Cause = "fail", CauseNotInInitramfs
				ev.Reason = fmt.Sprintf("storage module %s is not in the initramfs of %s", mod.Name, k.Release)
				return
			case len(ev.MissingDeps) > 0:
				ev.Verdict, ev.Cause = "fail", CauseNotInInitramfs
				ev.Reason = fmt.Sprintf("storage module %s is in the initramfs of %s but %s it needs is not", mod.Name, k.Release, strings.Join(ev.MissingDeps, ", "))
				return
			case ev.Initramfs == StateUnknown:
				ev.Verdict, ev.Cause = StateUnknown, CauseInitramfsUnknown
				ev.Reason = fmt.Sprintf("storage module %s: initramfs of %s unknown (%s)", mod.Name, k.Release, k.Initramfs.Reason)
				return
			}
		}
	}
	if !mod.FirmwareKnown {
		ev.Verdict, ev.Cause = StateUnknown, CauseFirmwareUnknown
		ev.Reason = fmt.Sprintf("module %s: firmware it needs was not read (take the inventory with the peer's modaliases)", mod.Name)
		return
	}
	ev.Firmware = mod.Firmware
	for _, f := range mod.Firmware {
		if !hasFirmware(fw, f) {
			ev.MissingFirmware = append(ev.MissingFirmware, f)
		}
	}
	// A module that names several files often needs one of them (one per
	// chip revision): fail when none is there, list the rest. Only the
	// disk and the network are needed for the node to come up: for other
	// devices missing firmware is evidence, not a failure (xhci_pci names
	// renesas_usb_fw.mem, which only some Renesas chips load).
	if len(mod.Firmware) > 0 && len(ev.MissingFirmware) == len(mod.Firmware) && (ev.Kind == "storage" || ev.Kind == "network") {
		ev.Verdict, ev.Cause = "fail", CauseMissingFirmware
		ev.Reason = fmt.Sprintf("module %s needs firmware %s and none of it is in /lib/firmware", mod.Name, strings.Join(mod.Firmware, ", "))
	}
}

// Text renders the report for a terminal.
func (r CompatReport) Text() string {
	var b strings.Builder
	machine := r.Machine
	if machine == "" {
		machine = "this machine"
	}
	kernel := r.Kernel
	if kernel == "" {
		kernel = "no kernel"
	}
	fmt.Fprintf(&b, "disk set %s (%s) boots on %s: %s, because\n", orUnknown(r.DiskSet), kernel, machine, r.Boots)
	if r.MachineFrom != "" {
		fmt.Fprintf(&b, "  (%s)\n", r.MachineFrom)
	}
	for _, l := range r.Because {
		fmt.Fprintf(&b, "  - %s\n", l)
	}
	if len(r.Devices) > 0 {
		b.WriteString("devices:\n")
	}
	for _, d := range r.Devices {
		mod := d.Module
		if mod == "" {
			mod = "-"
		}
		fmt.Fprintf(&b, "  %-13s %-6s %-9s %-8s %-14s %-12s", d.Slot, d.Class, d.ID, d.Kind, mod, d.Verdict)
		if d.Initramfs != "" {
			fmt.Fprintf(&b, " initramfs:%s", d.Initramfs)
		}
		if len(d.MissingFirmware) > 0 {
			fmt.Fprintf(&b, " missing firmware:%s", strings.Join(d.MissingFirmware, ","))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "(unnamed)"
	}
	return s
}

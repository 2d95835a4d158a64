package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// ParityPlan is what to change to bring the secondary in step with the
// primary, and each disk set able to boot on the other machine. It is data
// only: carrying it out over the peer link is not this package's job.
type ParityPlan struct {
	// InstallOnS are P's exact versions to install on S.
	InstallOnS []Install `json:"install_on_s"`
	// HoldOnS are packages held on P and not on S; UnholdOnS the reverse.
	HoldOnS   []string `json:"hold_on_s,omitempty"`
	UnholdOnS []string `json:"unhold_on_s,omitempty"`
	// OnlyOnS are installed on S and not on P: listed, never removed by
	// default.
	OnlyOnS []Install `json:"only_on_s,omitempty"`
	// DiskSetFixes make disk set P boot on S's machine and disk set S on
	// P's machine.
	DiskSetFixes []DiskSetFix `json:"disk_set_fixes,omitempty"`
}

// Install is one package at one version, package=version for apt.
type Install struct {
	Name    string `json:"name"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
	// Current is the version on S now ("" when not installed);
	// Downgrade is set when it is newer than Version.
	Current   string `json:"current,omitempty"`
	Downgrade bool   `json:"downgrade,omitempty"`
}

// AptArg is what apt-get install and apt-get download take for it:
// name:arch=version, or name=version for an Architecture: all package
// (apt files those under the native architecture; see AptArg).
func (i Install) AptArg() string { return AptArg(i.Name, i.Arch, i.Version) }

// String is name:arch=version, dpkg's identity of the package and version.
func (i Install) String() string { return i.Name + ":" + i.Arch + "=" + i.Version }

// AptArg is the argument that asks apt for one package at one version:
// name:arch=version, or name=version when arch is "all". apt keeps an
// Architecture: all package under the native architecture, so the
// package is asked for by its name alone (apt-get install pkg=version).
func AptArg(name, arch, version string) string {
	if arch == "all" || arch == "" {
		return name + "=" + version
	}
	return name + ":" + arch + "=" + version
}

// DiskSetFix is one change to a disk set so that it boots on the other
// machine.
type DiskSetFix struct {
	DiskSet string `json:"disk_set"` // "P" or "S"
	// Action is install-package, add-to-initramfs, install-firmware or
	// none-known (nothing found that provides it).
	Action   string `json:"action"`
	Package  string `json:"package,omitempty"`
	Module   string `json:"module,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Device   string `json:"device"` // slot and id on the other machine
	Reason   string `json:"reason"`
}

// Plan computes the parity plan from the two inventories and the two
// compatibility reports: compatPonB is Compat(p, &s.Hardware) (disk set P
// on S's machine) and compatSonA is Compat(s, &p.Hardware).
func Plan(p, s *Inventory, compatPonB, compatSonA *CompatReport) ParityPlan {
	var plan ParityPlan
	if p != nil && s != nil {
		sp := map[string]Package{}
		for _, x := range s.Packages {
			if x.Installed() {
				sp[x.Key()] = x
			}
		}
		pk := map[string]bool{}
		for _, x := range p.Packages {
			if !x.Installed() {
				continue
			}
			pk[x.Key()] = true
			cur, ok := sp[x.Key()]
			if !ok || cur.Version != x.Version {
				plan.InstallOnS = append(plan.InstallOnS, Install{Name: x.Name, Arch: x.Arch, Version: x.Version,
					Current: cur.Version, Downgrade: ok && CompareVersions(cur.Version, x.Version) > 0})
			}
			if x.Held() && (!ok || !cur.Held()) {
				plan.HoldOnS = append(plan.HoldOnS, x.Name)
			}
			if ok && cur.Held() && !x.Held() {
				plan.UnholdOnS = append(plan.UnholdOnS, x.Name)
			}
		}
		for _, x := range s.Packages {
			if x.Installed() && !pk[x.Key()] {
				plan.OnlyOnS = append(plan.OnlyOnS, Install{Name: x.Name, Arch: x.Arch, Version: x.Version, Current: x.Version})
			}
		}
		sort.Slice(plan.InstallOnS, func(i, j int) bool { return plan.InstallOnS[i].String() < plan.InstallOnS[j].String() })
		sort.Slice(plan.OnlyOnS, func(i, j int) bool { return plan.OnlyOnS[i].String() < plan.OnlyOnS[j].String() })
	}
	plan.DiskSetFixes = append(plan.DiskSetFixes, fixes("P", p, s, compatPonB)...)
	plan.DiskSetFixes = append(plan.DiskSetFixes, fixes("S", s, p, compatSonA)...)
	return plan
}

// fixes turns the failed devices of a compat report on disk set name (inv)
// into changes, looking up the providing packages in inv itself and in
// other, the inventory of the machine the device is in (it drives it).
func fixes(name string, inv, other *Inventory, r *CompatReport) []DiskSetFix {
	if r == nil {
		return nil
	}
	var out []DiskSetFix
	for _, d := range r.Devices {
		if d.Verdict != "fail" {
			continue
		}
		f := DiskSetFix{DiskSet: name, Device: d.Slot + " " + d.ID, Module: d.Module, Reason: d.Reason}
		switch d.Cause {
		case CauseNoModule:
			f.Module, f.Package = providing(d, inv, other, r.Kernel)
			f.Action = "install-package"
			if f.Package == "" {
				f.Action = "none-known"
				f.Reason += "; no package on either node ships a module for it"
			}
			out = append(out, f)
		case CauseNotInInitramfs:
			f.Action = "add-to-initramfs"
			for _, m := range append([]string{d.Module}, d.MissingDeps...) {
				if d.Initramfs == "yes" && m == d.Module {
					continue // the module is there, its dependencies are not
				}
				g := f
				g.Module = m
				g.Reason = fmt.Sprintf("%s (add %s to /etc/initramfs-tools/modules, update-initramfs -u)", d.Reason, m)
				out = append(out, g)
			}
		case CauseMissingFirmware:
			for _, fw := range d.MissingFirmware {
				g := f
				g.Action, g.Firmware = "install-firmware", fw
				g.Package = firmwarePackage(fw, inv, other)
				if g.Package == "" {
					g.Action = "none-known"
				}
				out = append(out, g)
			}
		}
	}
	return out
}

// providing finds a module for device d and the package that ships it:
// first in the disk set's own other kernels, then in the kernel of the
// machine the device is in, matching its modalias, then by the name of
// the driver bound to it there. The disk set's boot kernel (failed, the
// one judged) is not a candidate: its module of that name is installed
// and does not match the device. (Without the other node's inventory, a
// stored hardware profile, the driver's name would otherwise find it.)
func providing(d DeviceEvidence, inv, other *Inventory, failed string) (module, pkg string) {
	var kernels []*Kernel
	for _, x := range []*Inventory{inv, other} {
		if x == nil {
			continue
		}
		for i := len(x.Kernels) - 1; i >= 0; i-- {
			if x == inv && x.Kernels[i].Release == failed {
				continue
			}
			kernels = append(kernels, &x.Kernels[i])
		}
	}
	for _, k := range kernels {
		for _, m := range k.Matcher().ModulesFor(d.Modalias) {
			if mod := k.Module(m); mod != nil && mod.Package != "" {
				return m, mod.Package
			}
		}
	}
	if d.Driver != "" {
		for _, k := range kernels {
			if mod := k.Module(d.Driver); mod != nil && mod.Package != "" {
				return mod.Name, mod.Package
			}
		}
		return ModuleName(d.Driver), ""
	}
	return "", ""
}

func firmwarePackage(fw string, invs ...*Inventory) string {
	for _, inv := range invs {
		if inv == nil {
			continue
		}
		for _, name := range []string{fw, fw + ".xz", fw + ".zst"} {
			if p := inv.FirmwarePackages[name]; p != "" {
				return p
			}
		}
	}
	return ""
}

// Text renders the plan for a terminal.
func (p ParityPlan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "install on S (%d):\n", len(p.InstallOnS))
	for _, i := range p.InstallOnS {
		note := "new"
		if i.Current != "" {
			note = "now " + i.Current
		}
		if i.Downgrade {
			note += ", a downgrade"
		}
		fmt.Fprintf(&b, "  %s  (%s)\n", i, note)
	}
	if len(p.HoldOnS) > 0 {
		fmt.Fprintf(&b, "hold on S: %s\n", strings.Join(p.HoldOnS, " "))
	}
	if len(p.UnholdOnS) > 0 {
		fmt.Fprintf(&b, "unhold on S: %s\n", strings.Join(p.UnholdOnS, " "))
	}
	if len(p.OnlyOnS) > 0 {
		fmt.Fprintf(&b, "only on S, kept (%d):\n", len(p.OnlyOnS))
		for _, i := range p.OnlyOnS {
			fmt.Fprintf(&b, "  %s\n", i)
		}
	}
	for _, f := range p.DiskSetFixes {
		what := f.Package
		switch f.Action {
		case "add-to-initramfs":
			what = "module " + f.Module + " to the initramfs"
		case "install-package":
			what = "the package " + f.Package + " providing module " + f.Module
		case "install-firmware":
			what = "the package " + f.Package + " providing firmware " + f.Firmware
		case "none-known":
			what = "nothing known provides " + f.Module + f.Firmware
		}
		fmt.Fprintf(&b, "disk set %s: add %s (device %s: %s)\n", f.DiskSet, what, f.Device, f.Reason)
	}
	return b.String()
}

package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/mem"
)

// Hardware is what a disk set has to drive on a machine.
type Hardware struct {
	PCI  []PCIDevice `json:"pci" toml:"pci"`
	NICs []NIC       `json:"nics" toml:"nics"`
	// Storage are the slots of the storage controllers (PCI class 01xx).
	Storage     []string `json:"storage" toml:"storage"`
	CPU         CPU      `json:"cpu" toml:"cpu"`
	MemoryBytes uint64   `json:"memory_bytes" toml:"memory_bytes"`
}

// PCIDevice is one /sys/bus/pci/devices/<slot>. The ids are as sysfs writes
// them, without 0x: vendor "8086", class "010400".
type PCIDevice struct {
	Slot      string `json:"slot" toml:"slot"`
	Class     string `json:"class" toml:"class"`
	Vendor    string `json:"vendor" toml:"vendor"`
	Device    string `json:"device" toml:"device"`
	SubVendor string `json:"subsystem_vendor" toml:"subsystem_vendor"`
	SubDevice string `json:"subsystem_device" toml:"subsystem_device"`
	Modalias  string `json:"modalias" toml:"modalias"`
	// Driver is the name of the driver bound to it ("" for none).
	Driver string `json:"driver,omitempty" toml:"driver,omitempty"`
}

// Storage says whether the device is a mass-storage controller (class 01).
func (d PCIDevice) Storage() bool { return strings.HasPrefix(d.Class, "01") }

// Network says whether the device is a network controller (class 02).
func (d PCIDevice) Network() bool { return strings.HasPrefix(d.Class, "02") }

// NIC is one /sys/class/net/<name>.
type NIC struct {
	Name   string `json:"name" toml:"name"`
	MAC    string `json:"mac" toml:"mac"`
	Driver string `json:"driver,omitempty" toml:"driver,omitempty"`
	// Physical is true when the interface has a device behind it (a
	// device link), false for lo, bridges, bonds, tunnels.
	Physical bool `json:"physical" toml:"physical"`
	// PCISlot is the PCI device the NIC sits on, when it does.
	PCISlot string `json:"pci_slot,omitempty" toml:"pci_slot,omitempty"`
}

// CPU is the processor model and the number of logical CPUs.
type CPU struct {
	Model string `json:"model" toml:"model"`
	Count int    `json:"count" toml:"count"`
}

// Modaliases are the modaliases of the PCI devices.
func (h Hardware) Modaliases() []string {
	var out []string
	for _, d := range h.PCI {
		if d.Modalias != "" {
			out = append(out, d.Modalias)
		}
	}
	return out
}

var pciSlot = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// ReadHardware reads the PCI devices and NICs under sys (/sys). A missing
// /sys/bus/pci (a container) gives no device, not an error.
func ReadHardware(sys string) (Hardware, error) {
	var h Hardware
	dir := filepath.Join(sys, "bus/pci/devices")
	slots, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return h, err
	}
	for _, s := range slots {
		p := filepath.Join(dir, s.Name())
		attr := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(p, name))
			return strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
		}
		d := PCIDevice{
			Slot: s.Name(), Class: attr("class"), Vendor: attr("vendor"), Device: attr("device"),
			SubVendor: attr("subsystem_vendor"), SubDevice: attr("subsystem_device"), Modalias: attr("modalias"),
		}
		if d.Vendor == "" || d.Modalias == "" {
			return h, fmt.Errorf("%s: no vendor or modalias: not a PCI device folder", p)
		}
		if t, err := os.Readlink(filepath.Join(p, "driver")); err == nil {
			d.Driver = filepath.Base(t)
		}
		h.PCI = append(h.PCI, d)
		if d.Storage() {
			h.Storage = append(h.Storage, d.Slot)
		}
	}

	dir = filepath.Join(sys, "class/net")
	nics, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return h, err
	}
	for _, e := range nics {
		p := filepath.Join(dir, e.Name())
		mac, _ := os.ReadFile(filepath.Join(p, "address"))
		n := NIC{Name: e.Name(), MAC: strings.TrimSpace(string(mac))}
		if dev, err := filepath.EvalSymlinks(filepath.Join(p, "device")); err == nil {
			n.Physical = true
			if t, err := os.Readlink(filepath.Join(dev, "driver")); err == nil {
				n.Driver = filepath.Base(t)
			}
			// The PCI device is the device itself or a parent of it
			// (virtio: .../0000:00:03.0/virtio2).
			for d := dev; d != filepath.Dir(d); d = filepath.Dir(d) {
				if pciSlot.MatchString(filepath.Base(d)) {
					n.PCISlot = filepath.Base(d)
					break
				}
			}
		} else if _, err := os.Lstat(filepath.Join(p, "device")); err == nil {
			n.Physical = true // a device link we cannot follow (fixture)
		}
		h.NICs = append(h.NICs, n)
	}
	sort.Slice(h.NICs, func(i, j int) bool { return h.NICs[i].Name < h.NICs[j].Name })
	return h, nil
}

// HostMachine reads this machine's CPU model and count and its memory.
func HostMachine() (CPU, uint64, error) {
	var c CPU
	infos, err := cpu.Info()
	if err != nil {
		return c, 0, err
	}
	if len(infos) > 0 {
		c.Model = infos[0].ModelName
	}
	if c.Count, err = cpu.Counts(true); err != nil {
		return c, 0, err
	}
	vm, err := mem.VirtualMemory()
	if err != nil {
		return c, 0, err
	}
	return c, vm.Total, nil
}

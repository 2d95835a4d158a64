// Package disks names the physical disks of a node so that a person pulls
// the right ones at a failover: model, serial, size, the controller port
// (by-path) or enclosure bay, which md arrays each belongs to, and which
// partitions are EFI system partitions. It reads sysfs and udev's database
// under a root folder, so a test reads a captured tree.
package disks

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ESPType is the GPT partition type of an EFI system partition.
const ESPType = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"

// Disk is one physical disk.
type Disk struct {
	Name       string      `json:"name"` // sda, nvme0n1
	Model      string      `json:"model,omitempty"`
	Serial     string      `json:"serial,omitempty"`
	WWN        string      `json:"wwn,omitempty"`
	SizeBytes  int64       `json:"size_bytes"`
	Rotational bool        `json:"rotational"`
	Bus        string      `json:"bus,omitempty"`     // ata, scsi, nvme, usb
	ByPath     string      `json:"by_path,omitempty"` // pci-0000:00:17.0-ata-2
	Bay        string      `json:"bay,omitempty"`     // the enclosure's slot, where the kernel knows it
	Partitions []Partition `json:"partitions,omitempty"`
	// Arrays are the md arrays the disk (or one of its partitions) is a
	// member of.
	Arrays []string `json:"arrays,omitempty"`
}

// Partition is one partition of a disk.
type Partition struct {
	Name      string `json:"name"` // sda1
	SizeBytes int64  `json:"size_bytes"`
	Type      string `json:"type,omitempty"` // GPT type GUID
	FSType    string `json:"fs_type,omitempty"`
	Label     string `json:"label,omitempty"`
	Array     string `json:"array,omitempty"` // md0, when a member
	ESP       bool   `json:"esp,omitempty"`
}

// Options says where sysfs and udev's database are (a test's fixture).
type Options struct {
	Root string // "" is /
}

func (o Options) path(p ...string) string {
	return filepath.Join(append([]string{o.root()}, p...)...)
}

func (o Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

// skip are the block devices that are not disks.
var skip = []string{"loop", "ram", "zram", "md", "dm-", "sr", "nbd", "fd"}

// Scan lists the node's physical disks, sorted by name.
func Scan(o Options) ([]Disk, error) {
	ents, err := os.ReadDir(o.path("sys/block"))
	if err != nil {
		return nil, fmt.Errorf("reading the block devices: %w", err)
	}
	var out []Disk
	for _, e := range ents {
		name := e.Name()
		if hasPrefix(name, skip) {
			continue
		}
		d, err := o.disk(name)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (o Options) disk(name string) (Disk, error) {
	dir := o.path("sys/block", name)
	d := Disk{Name: name}
	d.SizeBytes = sectors(filepath.Join(dir, "size"))
	d.Rotational = readTrim(filepath.Join(dir, "queue/rotational")) == "1"
	d.Model = readTrim(filepath.Join(dir, "device/model"))
	d.Serial = readTrim(filepath.Join(dir, "device/serial"))
	u, err := o.udev(filepath.Join(dir, "dev"))
	if err != nil {
		return d, fmt.Errorf("%s: %w", name, err)
	}
	if v := u["ID_MODEL"]; v != "" && d.Model == "" {
		d.Model = strings.ReplaceAll(v, "_", " ")
	}
	if v := u["ID_SERIAL_SHORT"]; v != "" {
		d.Serial = v
	}
	d.WWN = u["ID_WWN"]
	d.Bus = u["ID_BUS"]
	if d.Bus == "" && strings.HasPrefix(name, "nvme") {
		d.Bus = "nvme"
	}
	d.ByPath = u["ID_PATH"]
	if m, _ := filepath.Glob(filepath.Join(dir, "device", "enclosure_device:*")); len(m) > 0 {
		d.Bay = strings.TrimPrefix(filepath.Base(m[0]), "enclosure_device:")
	}
	d.Arrays = holders(dir)
	parts, err := os.ReadDir(dir)
	if err != nil {
		return d, err
	}
	for _, p := range parts {
		pdir := filepath.Join(dir, p.Name())
		if _, err := os.Stat(filepath.Join(pdir, "partition")); err != nil {
			continue
		}
		part := Partition{Name: p.Name(), SizeBytes: sectors(filepath.Join(pdir, "size"))}
		pu, err := o.udev(filepath.Join(pdir, "dev"))
		if err != nil {
			return d, fmt.Errorf("%s: %w", p.Name(), err)
		}
		part.Type = strings.ToLower(pu["ID_PART_ENTRY_TYPE"])
		part.FSType = pu["ID_FS_TYPE"]
		part.Label = pu["ID_FS_LABEL"]
		part.ESP = part.Type == ESPType
		if h := holders(pdir); len(h) > 0 {
			part.Array = h[0]
			d.Arrays = append(d.Arrays, h...)
		}
		d.Partitions = append(d.Partitions, part)
	}
	sort.Slice(d.Partitions, func(i, j int) bool { return natLess(d.Partitions[i].Name, d.Partitions[j].Name) })
	d.Arrays = uniq(d.Arrays)
	return d, nil
}

// udev reads udev's database entry of the device whose "major:minor" is in
// devFile. No entry (no udev, as in a container) is no properties.
func (o Options) udev(devFile string) (map[string]string, error) {
	out := map[string]string{}
	num := readTrim(devFile)
	if num == "" {
		return out, nil
	}
	f, err := os.Open(o.path("run/udev/data", "b"+num))
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "E:"), "="); ok && strings.HasPrefix(line, "E:") {
			out[k] = v
		}
	}
	return out, sc.Err()
}

func holders(dir string) []string {
	ents, _ := os.ReadDir(filepath.Join(dir, "holders"))
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "md") {
			out = append(out, e.Name())
		}
	}
	return out
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func sectors(p string) int64 {
	n, _ := strconv.ParseInt(readTrim(p), 10, 64)
	return n * 512
}

func hasPrefix(s string, l []string) bool {
	for _, p := range l {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func uniq(l []string) []string {
	sort.Strings(l)
	var out []string
	for i, s := range l {
		if i == 0 || s != l[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// natLess orders sda2 before sda10.
func natLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// Human prints a size the way disk labels do (decimal units).
func Human(b int64) string {
	const unit = 1000
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(b)/float64(div), "kMGTPE"[exp])
}

// Label is one line that identifies d for a person at the machine.
func (d Disk) Label() string {
	parts := []string{"/dev/" + d.Name}
	if d.Model != "" {
		parts = append(parts, d.Model)
	}
	parts = append(parts, Human(d.SizeBytes))
	if d.Serial != "" {
		parts = append(parts, "serial "+d.Serial)
	}
	if d.Bay != "" {
		parts = append(parts, "bay "+d.Bay)
	}
	if d.ByPath != "" {
		parts = append(parts, "port "+d.ByPath)
	}
	if len(d.Arrays) > 0 {
		parts = append(parts, "member of "+strings.Join(d.Arrays, ", "))
	}
	return strings.Join(parts, ", ")
}

// Package diskid names the physical disks of this node's disk set so that a
// person moving them at a manual failover pulls exactly the right ones.
//
// For each disk it gathers what is printed on the disk or on the chassis:
// serial, model, size (in the decimal units of labels), the enclosure bay,
// the controller port (/dev/disk/by-path) and the /dev/disk/by-id name, and
// which md arrays the disk, or a partition of it, belongs to. It reads only
// files, all under Options.Root so that a test reads a fixture tree:
//
//   - /sys/block: the block devices, their size (512-byte sectors),
//     removable and queue/rotational flags, partitions (sysfs lays sda1 out
//     as /sys/block/sda/sda1), holders, and the sysfs serial and model
//     (device/serial, device/model, device/vpd_pg80, serial) used when udev
//     has no entry;
//   - /sys/block/mdN/md/dev-*/block and /sys/block/mdN/slaves: the members
//     of each md array, mapped to their disk through /sys/class/block;
//   - /sys/class/enclosure: SES enclosure slots, whose device link is the
//     disk's SCSI device (the target of /sys/block/sdX/device);
//   - /dev/disk/by-path and /dev/disk/by-id: udev's symlinks;
//   - /run/udev/data/b<major>:<minor>: udev's database (ID_SERIAL_SHORT,
//     ID_MODEL_ENC, ID_WWN, ...), which has the untruncated model.
//
// Missing attributes are left empty: a disk without udev data, or a
// container without disks, is not an error. Only an unreadable /sys/block
// is.
package diskid

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Disk is one physical disk of this node's disk set.
type Disk struct {
	Name       string   `json:"name"` // kernel name, "sda", "nvme0n1"
	Serial     string   `json:"serial,omitempty"`
	Model      string   `json:"model,omitempty"`
	Vendor     string   `json:"vendor,omitempty"`
	WWN        string   `json:"wwn,omitempty"`
	SizeBytes  uint64   `json:"size_bytes"`
	ByPath     string   `json:"by_path,omitempty"` // name under /dev/disk/by-path, "pci-0000:00:1f.2-ata-3"
	ByID       string   `json:"by_id,omitempty"`   // the most specific /dev/disk/by-id name
	Bay        string   `json:"bay,omitempty"`     // "enclosure 0:0:1:0 slot 3"; "" when unknown
	Arrays     []string `json:"arrays,omitempty"`  // "md0 (sda1)", "md1 (sda2)"
	Removable  bool     `json:"removable,omitempty"`
	Rotational bool     `json:"rotational,omitempty"`
}

// Set is this node's disks as found.
type Set struct {
	Disks []Disk `json:"disks"`
	// Note is set when there are no physical disks to name, or when the
	// disks listed are not an md disk set, and says why.
	Note string `json:"note,omitempty"`
}

// Options locates what Find reads; zero values mean the real system.
type Options struct {
	Root string // prefix for /sys, /dev and /run (fixtures); "" is "/"
}

func (o Options) path(elem ...string) string {
	root := o.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// virtualPrefixes are the kernel names of block devices that are not disks.
var virtualPrefixes = []string{"loop", "ram", "zram", "dm-", "md", "sr", "nbd", "fd", "drbd", "zd", "rbd"}

// Find reads /sys/block, /sys/class/block/<dev>/holders and slaves,
// /sys/class/enclosure, /dev/disk/by-path and /dev/disk/by-id (symlinks),
// and /run/udev/data/b<maj>:<min> under o.Root. The disks listed are those
// that are members (directly or through a partition) of an md array; when
// there are no md arrays at all, every non-virtual, non-removable disk,
// with Note saying so. Sorted by name.
func Find(o Options) (*Set, error) {
	blockDir := o.path("sys/block")
	ents, err := os.ReadDir(blockDir)
	if err != nil {
		return nil, fmt.Errorf("diskid: listing block devices: %w", err)
	}
	if len(ents) == 0 {
		return &Set{Disks: []Disk{}, Note: "no block devices under " + blockDir +
			" (a container: the disk set is not on disks of its own)"}, nil
	}
	var mds, physical, virtual []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "md"):
			mds = append(mds, name)
			virtual = append(virtual, name)
		case o.isVirtual(name):
			virtual = append(virtual, name)
		default:
			physical = append(physical, name)
		}
	}
	// members[disk] lists "mdN (member)".
	members := map[string][]string{}
	add := func(md, member string) {
		if disk := o.diskOf(member); disk != "" && !o.isVirtual(disk) {
			members[disk] = append(members[disk], md+" ("+member+")")
		}
	}
	for _, md := range mds {
		for _, m := range o.mdMembers(md) {
			add(md, m)
		}
	}
	for _, disk := range physical {
		for _, dev := range append([]string{disk}, o.partitions(disk)...) {
			hs, _ := os.ReadDir(o.path("sys/class/block", dev, "holders"))
			for _, h := range hs {
				if strings.HasPrefix(h.Name(), "md") {
					add(h.Name(), dev)
				}
			}
		}
	}

	set := &Set{Disks: []Disk{}}
	var names []string
	switch {
	case len(members) > 0:
		for d := range members {
			names = append(names, d)
		}
	case len(mds) > 0:
		set.Note = "md arrays " + strings.Join(sortNatural(mds), ", ") +
			" have no members on physical disks: no disk set to name"
		return set, nil
	default:
		for _, d := range physical {
			if read(o.path("sys/block", d, "removable")) != "1" {
				names = append(names, d)
			}
		}
		if len(names) == 0 {
			set.Note = "no md arrays and no physical disks under " + blockDir +
				" (only " + strings.Join(sortNatural(virtual), ", ") + "; a container or a machine without disks of its own)"
			return set, nil
		}
		set.Note = "no md arrays: every non-removable disk is listed"
	}

	links := map[string]map[string][]string{}
	for _, kind := range []string{"by-id", "by-path"} {
		links[kind] = o.diskLinks(kind)
	}
	bays := o.bays()
	for _, name := range sortNatural(names) {
		d := o.disk(name, links, bays)
		d.Arrays = sortNatural(uniq(members[name]))
		set.Disks = append(set.Disks, d)
	}
	return set, nil
}

// isVirtual reports whether the block device name is not a physical disk:
// by its name, or because sysfs has it under /sys/devices/virtual.
func (o Options) isVirtual(name string) bool {
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	t, err := os.Readlink(o.path("sys/block", name))
	return err == nil && strings.Contains(t, "devices/virtual/")
}

// mdMembers lists the kernel names of the md array's member devices: the
// targets of md/dev-*/block, and the entries of slaves.
func (o Options) mdMembers(md string) []string {
	var out []string
	links, _ := filepath.Glob(o.path("sys/block", md, "md", "dev-*", "block"))
	for _, l := range links {
		if t, err := os.Readlink(l); err == nil {
			out = append(out, filepath.Base(t))
		}
	}
	slaves, _ := os.ReadDir(o.path("sys/block", md, "slaves"))
	for _, s := range slaves {
		out = append(out, s.Name())
	}
	return uniq(out)
}

// diskOf maps a block device to its disk: a partition to the directory it
// is laid out in, a disk to itself; "" when sysfs does not have it.
func (o Options) diskOf(dev string) string {
	if real, err := filepath.EvalSymlinks(o.path("sys/class/block", dev)); err == nil {
		if exists(filepath.Join(real, "partition")) {
			return filepath.Base(filepath.Dir(real))
		}
		return dev
	}
	if exists(o.path("sys/block", dev)) {
		return dev
	}
	if m, _ := filepath.Glob(o.path("sys/block", "*", dev, "partition")); len(m) > 0 {
		return filepath.Base(filepath.Dir(filepath.Dir(m[0])))
	}
	return ""
}

// partitions lists the partitions of disk: its subdirectories with a
// partition file.
func (o Options) partitions(disk string) []string {
	ents, _ := os.ReadDir(o.path("sys/block", disk))
	var out []string
	for _, e := range ents {
		if exists(o.path("sys/block", disk, e.Name(), "partition")) {
			out = append(out, e.Name())
		}
	}
	return out
}

// diskLinks maps a kernel name to the names under /dev/disk/<kind> that
// point at it, partitions' names left out.
func (o Options) diskLinks(kind string) map[string][]string {
	out := map[string][]string{}
	ents, _ := os.ReadDir(o.path("dev/disk", kind))
	for _, e := range ents {
		if strings.Contains(e.Name(), "-part") {
			continue
		}
		if t, err := os.Readlink(o.path("dev/disk", kind, e.Name())); err == nil {
			dev := filepath.Base(t)
			out[dev] = append(out[dev], e.Name())
		}
	}
	return out
}

// bays maps the resolved path of a SCSI device (the target of
// /sys/block/sdX/device) to its enclosure slot.
func (o Options) bays() map[string]string {
	out := map[string]string{}
	encs, _ := os.ReadDir(o.path("sys/class/enclosure"))
	for _, enc := range encs {
		comps, _ := os.ReadDir(o.path("sys/class/enclosure", enc.Name()))
		for _, c := range comps {
			if !c.IsDir() || c.Name() == "power" {
				continue
			}
			dir := o.path("sys/class/enclosure", enc.Name(), c.Name())
			if dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device")); err == nil {
				out[dev] = bayName(enc.Name(), dir)
			}
		}
	}
	return out
}

// bayName is "enclosure <id> slot <n>" for the enclosure component dir:
// the number from its slot file, else from its name ("Slot 03"), else the
// name itself.
func bayName(enclosure, dir string) string {
	slot := read(filepath.Join(dir, "slot"))
	if _, err := strconv.Atoi(slot); err != nil {
		name := filepath.Base(dir)
		slot = name
		if i := strings.LastIndexFunc(name, func(r rune) bool { return r < '0' || r > '9' }); i < len(name)-1 {
			if n, err := strconv.Atoi(name[i+1:]); err == nil {
				slot = strconv.Itoa(n)
			}
		}
	}
	return "enclosure " + enclosure + " slot " + slot
}

func (o Options) disk(name string, links map[string]map[string][]string, bays map[string]string) Disk {
	dir := o.path("sys/block", name)
	d := Disk{Name: name}
	sectors, _ := strconv.ParseUint(read(filepath.Join(dir, "size")), 10, 64)
	d.SizeBytes = sectors * 512
	d.Removable = read(filepath.Join(dir, "removable")) == "1"
	d.Rotational = read(filepath.Join(dir, "queue", "rotational")) == "1"

	u := o.udev(read(filepath.Join(dir, "dev")))
	d.Serial = first(u["ID_SERIAL_SHORT"], read(filepath.Join(dir, "device", "serial")),
		vpdSerial(filepath.Join(dir, "device", "vpd_pg80")), read(filepath.Join(dir, "serial")))
	d.Model = first(udevText(u, "ID_MODEL"), read(filepath.Join(dir, "device", "model")))
	d.Vendor = first(udevText(u, "ID_VENDOR"), read(filepath.Join(dir, "device", "vendor")))
	if d.Vendor == "ATA" { // libata's placeholder, not a maker
		d.Vendor = ""
	}
	d.WWN = first(u["ID_WWN"], read(filepath.Join(dir, "wwid")), read(filepath.Join(dir, "device", "wwid")))

	byID, byPath := links["by-id"][name], links["by-path"][name]
	if len(byID)+len(byPath) == 0 { // no /dev/disk: udev's record of its links
		for _, s := range u["S:"] {
			if n, ok := strings.CutPrefix(s, "disk/by-id/"); ok {
				byID = append(byID, n)
			} else if n, ok := strings.CutPrefix(s, "disk/by-path/"); ok {
				byPath = append(byPath, n)
			}
		}
	}
	d.ByID = bestByID(byID, d.Serial)
	d.ByPath = shortest(byPath)

	if dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device")); err == nil {
		d.Bay = bays[dev]
		if d.Bay == "" {
			// The SES driver also links the disk's device to its slot.
			m, _ := filepath.Glob(filepath.Join(dev, "enclosure_device:*"))
			if len(m) > 0 {
				if slot, err := filepath.EvalSymlinks(m[0]); err == nil {
					d.Bay = bayName(filepath.Base(filepath.Dir(slot)), slot)
				}
			}
		}
	}
	return d
}

// udev reads udev's database entry for the device numbered "maj:min":
// properties (E:) by name, and the symlinks (S:) under the key "S:".
// No entry, as in a container, is no properties.
func (o Options) udev(num string) map[string][]string {
	out := map[string][]string{}
	if num == "" {
		return out
	}
	f, err := os.Open(o.path("run/udev/data", "b"+num))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if kv, ok := strings.CutPrefix(line, "E:"); ok {
			if k, v, ok := strings.Cut(kv, "="); ok {
				out[k] = []string{v}
			}
		} else if s, ok := strings.CutPrefix(line, "S:"); ok {
			out["S:"] = append(out["S:"], s)
		}
	}
	return out
}

// udevText is the udev property key as printed by the device: key_ENC with
// its \xNN escapes decoded, else key with underscores turned back to spaces.
func udevText(u map[string][]string, key string) string {
	if enc := u[key+"_ENC"]; len(enc) > 0 && enc[0] != "" {
		return strings.TrimSpace(decodeEnc(enc[0]))
	}
	if v := u[key]; len(v) > 0 {
		return strings.TrimSpace(strings.ReplaceAll(v[0], "_", " "))
	}
	return ""
}

func decodeEnc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// vpdSerial reads the unit serial number from a SCSI VPD page 0x80 dump:
// a 4-byte header (byte 3 the length) then the serial.
func vpdSerial(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := min(int(b[2])<<8|int(b[3]), len(b)-4)
	return strings.TrimSpace(strings.Trim(string(b[4:4+n]), "\x00"))
}

// bestByID picks the most specific by-id name: the bus's own name with the
// serial (ata-, nvme-), then scsi-/usb-/virtio- ones, and names of a WWN or
// EUI last; the shortest among equals.
func bestByID(names []string, serial string) string {
	rank := func(n string) int {
		withSerial := serial == "" || strings.Contains(n, serial)
		switch {
		case strings.HasPrefix(n, "wwn-"), strings.HasPrefix(n, "nvme-eui."), strings.HasPrefix(n, "nvme-nvme."),
			strings.HasPrefix(n, "scsi-2"), strings.HasPrefix(n, "scsi-3"), strings.HasPrefix(n, "scsi-8"):
			return 5
		case strings.HasPrefix(n, "ata-"), strings.HasPrefix(n, "nvme-"):
			if withSerial {
				return 0
			}
			return 2
		case strings.HasPrefix(n, "scsi-"), strings.HasPrefix(n, "usb-"), strings.HasPrefix(n, "virtio-"), strings.HasPrefix(n, "mmc-"):
			if withSerial {
				return 1
			}
			return 3
		}
		return 4
	}
	sort.Slice(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// shortest picks the shortest name, the first in order among equals:
// udev makes "pci-...-ata-3" beside "pci-...-ata-3.0".
func shortest(names []string) string {
	best := ""
	for _, n := range names {
		if best == "" || len(n) < len(best) || len(n) == len(best) && n < best {
			best = n
		}
	}
	return best
}

// Text renders the set for a person: one block per disk, and the Note.
func (s *Set) Text() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	width := 0
	for _, d := range s.Disks {
		width = max(width, len(d.Name))
	}
	indent := strings.Repeat(" ", width+2)
	for _, d := range s.Disks {
		head := []string{fmt.Sprintf("%-*s", width, d.Name)}
		if d.Model != "" {
			head = append(head, d.Model)
		}
		head = append(head, "serial "+first(d.Serial, "unknown"), humanSize(d.SizeBytes))
		if d.Removable {
			head = append(head, "removable")
		}
		if d.Bay != "" {
			head = append(head, "bay: "+d.Bay)
		}
		b.WriteString(strings.Join(head, "  ") + "\n")
		var ids []string
		if d.ByPath != "" {
			ids = append(ids, "by-path "+d.ByPath)
		}
		if d.ByID != "" {
			ids = append(ids, "by-id "+d.ByID)
		}
		if len(ids) > 0 {
			b.WriteString(indent + strings.Join(ids, "   ") + "\n")
		}
		if len(d.Arrays) > 0 {
			b.WriteString(indent + strings.Join(d.Arrays, ", ") + "\n")
		}
	}
	if s.Note != "" {
		b.WriteString(s.Note + "\n")
	}
	return b.String()
}

// humanSize prints a size in the decimal units of disk labels: "4.0 TB",
// "1.92 TB", "960 GB", "32.0 GB".
func humanSize(n uint64) string {
	f := float64(n)
	switch {
	case f >= 1e12:
		s := fmt.Sprintf("%.2f", f/1e12)
		return strings.TrimSuffix(s, "0") + " TB"
	case f >= 100e9:
		return fmt.Sprintf("%.0f GB", f/1e9)
	case f >= 1e9:
		return fmt.Sprintf("%.1f GB", f/1e9)
	}
	return fmt.Sprintf("%.0f MB", f/1e6)
}

// read is the trimmed content of a sysfs attribute; "" when it cannot be
// read (attributes differ between drivers and kernels).
func read(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func uniq(l []string) []string {
	sort.Strings(l)
	out := l[:0]
	for i, s := range l {
		if i == 0 || s != l[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// sortNatural sorts names with their digit runs compared as numbers, so
// md2 comes before md10 and nvme2n1 before nvme10n1.
func sortNatural(l []string) []string {
	sort.Slice(l, func(i, j int) bool { return natLess(l[i], l[j]) })
	return l
}

func natLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

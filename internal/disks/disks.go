// Package disks names the physical disks of a node so that a person moving
// them at a manual failover pulls exactly the right ones, and tells the
// boot checks which partitions are EFI system partitions.
//
// For each disk it gathers what is printed on the disk or on the chassis:
// serial, vendor and model, size (in the decimal units of labels), the
// enclosure bay, the controller port (/dev/disk/by-path) and the
// /dev/disk/by-id name, and which md arrays the disk, or a partition of it,
// belongs to; for each partition its GPT type, file system and label. It
// reads only files, all under Options.Root so that a test reads a fixture
// tree:
//
//   - /sys/block: the block devices, their size (512-byte sectors),
//     removable, hidden and queue/rotational flags, partitions (sysfs lays
//     sda1 out as /sys/block/sda/sda1), holders, and the sysfs serial and
//     model (device/serial, device/model, device/vpd_pg80, serial) used
//     when udev has no entry;
//   - /sys/block/mdN/md/dev-*/block and /sys/block/mdN/slaves: the members
//     of each md array (holders is the third record of the same);
//   - /sys/class/enclosure: SES enclosure slots, whose device link is the
//     disk's SCSI device (the target of /sys/block/sdX/device);
//   - /dev/disk/by-path and /dev/disk/by-id: udev's symlinks;
//   - /run/udev/data/b<major>:<minor>: udev's database (ID_SERIAL_SHORT or,
//     for SCSI/SAS disks, ID_SCSI_SERIAL; ID_MODEL_ENC, ID_WWN,
//     ID_PART_ENTRY_TYPE, ID_FS_TYPE, ...), which has the untruncated ATA
//     model.
//
// Missing attributes are left empty: a disk without udev data, or a
// container without disks, is not an error. Only an unreadable /sys/block
// is.
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
	Name       string `json:"name"` // kernel name, "sda", "nvme0n1"
	Model      string `json:"model,omitempty"`
	Vendor     string `json:"vendor,omitempty"` // "" for libata's placeholder "ATA"
	Serial     string `json:"serial,omitempty"`
	WWN        string `json:"wwn,omitempty"`
	SizeBytes  int64  `json:"size_bytes"`
	Rotational bool   `json:"rotational"`
	Removable  bool   `json:"removable,omitempty"`
	Bus        string `json:"bus,omitempty"`     // ata, scsi, nvme, usb
	ByPath     string `json:"by_path,omitempty"` // name under /dev/disk/by-path, "pci-0000:00:1f.2-ata-3"
	ByID       string `json:"by_id,omitempty"`   // the most specific /dev/disk/by-id name
	// Bay is the enclosure slot, "enclosure 0:0:1:0 slot 3"; "" when the
	// kernel does not know it.
	Bay        string      `json:"bay,omitempty"`
	Partitions []Partition `json:"partitions,omitempty"`
	// Arrays are the md arrays the disk, or a partition of it, is a member
	// of, each with the member: "md0 (sda1)", "md1 (sda2)", "md0 (nvme0n1)".
	Arrays []string `json:"arrays,omitempty"`
}

// Partition is one partition of a disk.
type Partition struct {
	Name      string `json:"name"` // sda1
	SizeBytes int64  `json:"size_bytes"`
	Type      string `json:"type,omitempty"` // GPT type GUID, lower case
	FSType    string `json:"fs_type,omitempty"`
	Label     string `json:"label,omitempty"`
	Array     string `json:"array,omitempty"` // md0, when a member
	ESP       bool   `json:"esp,omitempty"`
}

// Options locates what Scan and Find read; zero values mean the real
// system.
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

// Scan lists the node's physical disks, removable ones included, in
// natural order (sda, sdb, ..., nvme2n1 before nvme10n1).
func Scan(o Options) ([]Disk, error) {
	bd, err := o.scan()
	if err != nil {
		return nil, err
	}
	return bd.disks, nil
}

// blockDevices is /sys/block sorted out: the disks, and the names of the
// other devices.
type blockDevices struct {
	dir     string   // the /sys/block read
	disks   []Disk   // physical disks, in natural order
	mds     []string // md arrays
	virtual []string // every device that is not a disk, mds too
}

func (o Options) scan() (*blockDevices, error) {
	bd := &blockDevices{dir: o.path("sys/block")}
	ents, err := os.ReadDir(bd.dir)
	if err != nil {
		return nil, fmt.Errorf("listing the block devices: %w", err)
	}
	var physical []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case o.isVirtual(name):
			bd.virtual = append(bd.virtual, name)
			if strings.HasPrefix(name, "md") {
				bd.mds = append(bd.mds, name)
			}
		default:
			physical = append(physical, name)
		}
	}
	sortNatural(bd.virtual)
	sortNatural(bd.mds)
	inMD := map[string][]string{}
	for _, md := range bd.mds {
		for _, m := range o.mdMembers(md) {
			inMD[m] = append(inMD[m], md)
		}
	}
	links := map[string]map[string][]string{}
	for _, kind := range []string{"by-id", "by-path"} {
		links[kind] = o.diskLinks(kind)
	}
	bays := o.bays()
	for _, name := range sortNatural(physical) {
		bd.disks = append(bd.disks, o.disk(name, inMD, links, bays))
	}
	return bd, nil
}

// isVirtual reports whether the block device name is not a physical disk
// to name: by its name, because sysfs has it under /sys/devices/virtual
// (but a native-multipath NVMe namespace, nvme0n1, is under
// devices/virtual/nvme-subsystem), or because it is hidden (the per-path
// device nvme0c0n1 behind such a namespace).
func (o Options) isVirtual(name string) bool {
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	if read(o.path("sys/block", name, "hidden")) == "1" {
		return true
	}
	t, err := os.Readlink(o.path("sys/block", name))
	return err == nil && strings.Contains(t, "devices/virtual/") && !strings.Contains(t, "devices/virtual/nvme-subsystem/")
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

// arraysOf lists the md arrays the device (a disk or a partition, whose
// sysfs directory is dir) is a member of: those the arrays name (inMD) and
// those in its holders.
func arraysOf(dev, dir string, inMD map[string][]string) []string {
	out := append([]string(nil), inMD[dev]...)
	hs, _ := os.ReadDir(filepath.Join(dir, "holders"))
	for _, h := range hs {
		if strings.HasPrefix(h.Name(), "md") {
			out = append(out, h.Name())
		}
	}
	return sortNatural(uniq(out))
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
				out[dev] = bayName(enc.Name(), c.Name(), read(filepath.Join(dir, "slot")))
			}
		}
	}
	return out
}

// bay is the enclosure slot of the disk whose device link is device: the
// one /sys/class/enclosure names, else the one its enclosure_device:* link
// (made by the SES driver) points at. A link into an enclosure the tree
// does not have (a partial capture) still gives its names.
func bay(device string, bays map[string]string) string {
	dev, err := filepath.EvalSymlinks(device)
	if err != nil {
		return ""
	}
	if b := bays[dev]; b != "" {
		return b
	}
	m, _ := filepath.Glob(filepath.Join(dev, "enclosure_device:*"))
	if len(m) == 0 {
		return ""
	}
	if slot, err := filepath.EvalSymlinks(m[0]); err == nil {
		return bayName(filepath.Base(filepath.Dir(slot)), filepath.Base(slot), read(filepath.Join(slot, "slot")))
	}
	if t, err := os.Readlink(m[0]); err == nil {
		return bayName(filepath.Base(filepath.Dir(t)), filepath.Base(t), "")
	}
	return ""
}

// bayName is "enclosure <id> slot <n>" for the enclosure's component: the
// number from its slot attribute, else from its name ("Slot 03"), else the
// name itself.
func bayName(enclosure, component, slot string) string {
	if _, err := strconv.Atoi(slot); err != nil {
		slot = component
		if i := strings.LastIndexFunc(component, func(r rune) bool { return r < '0' || r > '9' }); i < len(component)-1 {
			if n, err := strconv.Atoi(component[i+1:]); err == nil {
				slot = strconv.Itoa(n)
			}
		}
	}
	return "enclosure " + enclosure + " slot " + slot
}

func (o Options) disk(name string, inMD map[string][]string, links map[string]map[string][]string, bays map[string]string) Disk {
	dir := o.path("sys/block", name)
	d := Disk{Name: name, SizeBytes: sectors(filepath.Join(dir, "size"))}
	d.Removable = read(filepath.Join(dir, "removable")) == "1"
	d.Rotational = read(filepath.Join(dir, "queue", "rotational")) == "1"

	u := o.udev(read(filepath.Join(dir, "dev")))
	// Serial as lsblk reads it: for a SCSI/SAS disk ID_SERIAL_SHORT is the
	// NAA identifier (a WWN), the serial on the label is the unit serial
	// number (VPD page 0x80), SCSI_IDENT_SERIAL (sg3_utils) or ID_SCSI_SERIAL.
	d.Serial = first(one(u, "SCSI_IDENT_SERIAL"), one(u, "ID_SCSI_SERIAL"), one(u, "ID_SERIAL_SHORT"),
		read(filepath.Join(dir, "device", "serial")),        // NVMe controller or subsystem
		vpdSerial(filepath.Join(dir, "device", "vpd_pg80")), // SCSI, and ATA through libata
		read(filepath.Join(dir, "serial")))                  // virtio
	d.Model = first(udevText(u, "ID_MODEL"), read(filepath.Join(dir, "device", "model")))
	d.Vendor = first(udevText(u, "ID_VENDOR"), read(filepath.Join(dir, "device", "vendor")))
	// libata's placeholder "ATA" is not a maker, nor is a virtio device's
	// vendor ID ("0x1af4").
	if d.Vendor == "ATA" || strings.HasPrefix(d.Vendor, "0x") {
		d.Vendor = ""
	}
	d.WWN = first(one(u, "ID_WWN_WITH_EXTENSION"), one(u, "ID_WWN"), read(filepath.Join(dir, "wwid")), read(filepath.Join(dir, "device", "wwid")))
	d.Bus = one(u, "ID_BUS")
	if d.Bus == "" && strings.HasPrefix(name, "nvme") {
		d.Bus = "nvme"
	}

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
	if len(byPath) == 0 { // nor those: the path udev would name it by
		byPath = []string{one(u, "ID_PATH"), one(u, "ID_PATH_ATA_COMPAT")}
	}
	d.ByID = bestByID(byID, d.Serial)
	d.ByPath = shortest(byPath)
	d.Bay = bay(filepath.Join(dir, "device"), bays)

	for _, md := range arraysOf(name, dir, inMD) {
		d.Arrays = append(d.Arrays, md+" ("+name+")")
	}
	for _, p := range o.partitions(name) {
		pdir := filepath.Join(dir, p)
		pu := o.udev(read(filepath.Join(pdir, "dev")))
		part := Partition{Name: p, SizeBytes: sectors(filepath.Join(pdir, "size")),
			Type: strings.ToLower(one(pu, "ID_PART_ENTRY_TYPE")), FSType: one(pu, "ID_FS_TYPE"), Label: one(pu, "ID_FS_LABEL")}
		part.ESP = part.Type == ESPType
		for i, md := range arraysOf(p, pdir, inMD) {
			if i == 0 {
				part.Array = md
			}
			d.Arrays = append(d.Arrays, md+" ("+p+")")
		}
		d.Partitions = append(d.Partitions, part)
	}
	sortNatural(d.Arrays)
	return d
}

// partitions lists the partitions of disk in natural order: its
// subdirectories with a partition file.
func (o Options) partitions(disk string) []string {
	ents, _ := os.ReadDir(o.path("sys/block", disk))
	var out []string
	for _, e := range ents {
		if exists(o.path("sys/block", disk, e.Name(), "partition")) {
			out = append(out, e.Name())
		}
	}
	return sortNatural(out)
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

func one(u map[string][]string, key string) string {
	if v := u[key]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
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
// a 4-byte header (bytes 2 and 3 the length) then the serial.
func vpdSerial(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := min(int(b[2])<<8|int(b[3]), len(b)-4)
	return strings.TrimSpace(strings.Trim(string(b[4:4+n]), "\x00"))
}

// bestByID picks the most specific by-id name: the bus's own name with the
// serial (ata-, nvme-), then scsi-/usb-/virtio- ones with it, and names of
// a WWN or EUI last (wwn- before scsi-3.../nvme-eui....); the shortest
// among equals.
func bestByID(names []string, serial string) string {
	rank := func(n string) int {
		withSerial := serial == "" || strings.Contains(n, serial)
		switch {
		case strings.HasPrefix(n, "wwn-"):
			return 5
		case strings.HasPrefix(n, "nvme-eui."), strings.HasPrefix(n, "nvme-nvme."),
			strings.HasPrefix(n, "scsi-2"), strings.HasPrefix(n, "scsi-3"), strings.HasPrefix(n, "scsi-8"):
			return 6 // the WWN/EUI again, in the SCSI or NVMe identifier's spelling
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

// shortest picks the shortest name that is not "", the first in order
// among equals: udev makes "pci-...-ata-3" beside "pci-...-ata-3.0".
func shortest(names []string) string {
	best := ""
	for _, n := range names {
		if n != "" && (best == "" || len(n) < len(best) || len(n) == len(best) && n < best) {
			best = n
		}
	}
	return best
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

// sectors is the size in bytes of a sysfs size attribute (512-byte
// sectors).
func sectors(path string) int64 {
	n, _ := strconv.ParseInt(read(path), 10, 64)
	return n * 512
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
// md2 comes before md10, sda2 before sda10 and nvme2n1 before nvme10n1.
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

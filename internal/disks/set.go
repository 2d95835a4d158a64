package disks

import (
	"fmt"
	"strings"
)

// Set is this node's disk set as found: the disks a person moves at a
// failover.
type Set struct {
	Disks []Disk `json:"disks"`
	// Note is set when there are no physical disks to name, or when the
	// disks listed are not an md disk set, and says why.
	Note string `json:"note,omitempty"`
}

// Find lists the node's disk set (see Scan for what it reads): the disks
// that are members, directly or through a partition, of an md array; when
// there are no md arrays at all, every non-virtual, non-removable disk,
// with Note saying so. In natural order.
func Find(o Options) (*Set, error) {
	bd, err := o.scan()
	if err != nil {
		return nil, err
	}
	set := &Set{Disks: []Disk{}}
	if len(bd.disks)+len(bd.virtual) == 0 {
		set.Note = "no block devices under " + bd.dir + " (a container: the disk set is not on disks of its own)"
		return set, nil
	}
	for _, d := range bd.disks {
		if len(d.Arrays) > 0 {
			set.Disks = append(set.Disks, d)
		}
	}
	if len(set.Disks) > 0 {
		return set, nil
	}
	if len(bd.mds) > 0 {
		set.Note = "md arrays " + strings.Join(bd.mds, ", ") + " have no members on physical disks: no disk set to name"
		return set, nil
	}
	others := append([]string(nil), bd.virtual...)
	for _, d := range bd.disks {
		if d.Removable {
			others = append(others, d.Name)
		} else {
			set.Disks = append(set.Disks, d)
		}
	}
	if len(set.Disks) == 0 {
		set.Note = "no md arrays and no physical disks under " + bd.dir +
			" (only " + strings.Join(sortNatural(others), ", ") + "; a container or a machine without disks of its own)"
		return set, nil
	}
	set.Note = "no md arrays: every non-removable disk is listed"
	return set, nil
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
		if m := d.maker(); m != "" {
			head = append(head, m)
		}
		head = append(head, "serial "+first(d.Serial, "unknown"), Human(d.SizeBytes))
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

// Label is one line that identifies d for a person at the machine.
func (d Disk) Label() string {
	parts := []string{"/dev/" + d.Name}
	if m := d.maker(); m != "" {
		parts = append(parts, m)
	}
	parts = append(parts, Human(d.SizeBytes))
	if d.Serial != "" {
		parts = append(parts, "serial "+d.Serial)
	}
	if d.Bay != "" {
		parts = append(parts, d.Bay)
	}
	if d.ByPath != "" {
		parts = append(parts, "port "+d.ByPath)
	}
	if len(d.Arrays) > 0 {
		parts = append(parts, "member of "+strings.Join(d.Arrays, ", "))
	}
	return strings.Join(parts, ", ")
}

// maker is the vendor and model as a person reads them, the vendor left
// out where the model repeats it: "SEAGATE ST4000NM0025", "WDC WD40EFRX".
func (d Disk) maker() string {
	if d.Vendor == "" || strings.HasPrefix(d.Model, d.Vendor) {
		return d.Model
	}
	return strings.TrimSpace(d.Vendor + " " + d.Model)
}

// Human prints a size in the decimal units of disk labels: "4.0 TB",
// "1.92 TB", "960 GB", "32.0 GB", "537 MB".
func Human(n int64) string {
	f := float64(n)
	switch {
	case f >= 1e12:
		return strings.TrimSuffix(fmt.Sprintf("%.2f", f/1e12), "0") + " TB"
	case f >= 100e9:
		return fmt.Sprintf("%.0f GB", f/1e9)
	case f >= 1e9:
		return fmt.Sprintf("%.1f GB", f/1e9)
	case f >= 1e6:
		return fmt.Sprintf("%.0f MB", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.0f kB", f/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// Package hwid identifies the machine ("hardware") a disk set booted on.
//
// The identity is taken from DMI (SMBIOS) where the firmware provides a
// usable value: the system product UUID, else the baseboard serial number.
// Without usable DMI it is the sorted list of MAC addresses of the physical
// network interfaces. Interfaces are listed through netlink in the current
// network namespace, not through /sys/class/net: inside a systemd-nspawn
// container /sys/class/net shows the host's interfaces, while netlink shows
// the container's own.
//
// Which netlink link kinds count as "physical" is configurable, because the
// test lab has no DMI and its machines' NICs are veth pairs in network
// namespaces.
package hwid

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DMIDir is the directory the DMI attributes product_uuid and board_serial
// are read from, unless Options.DMIDir names another (a fixture tree).
const DMIDir = "/sys/class/dmi/id"

// Mode selects where the hardware identity comes from.
type Mode string

const (
	// ModeAuto uses DMI when it holds a usable value, else the NIC MACs.
	ModeAuto Mode = "auto"
	// ModeDMI uses DMI only; Detect fails when DMI is unreadable or junk.
	ModeDMI Mode = "dmi"
	// ModeMAC uses the NIC MACs only (a lab, or DMI known to be junk).
	ModeMAC Mode = "mac"
)

// DefaultNICKinds are the netlink link kinds counted as physical NICs when
// Options.NICKinds is nil. netlink reports "device" for links without an
// IFLA_INFO_KIND, which is what plain hardware NICs are.
var DefaultNICKinds = []string{"device"}

// Options configures Detect.
type Options struct {
	// Mode selects the identity source; "" means ModeAuto.
	Mode Mode
	// NICKinds are the netlink link kinds (netlink.Link.Type()) that count
	// as physical NICs; nil means DefaultNICKinds. The lab passes
	// []string{"device", "veth"}.
	NICKinds []string
	// DMIDir is where the DMI attributes are read from; "" means DMIDir.
	DMIDir string
}

// NIC is one network interface counted as a physical NIC.
type NIC struct {
	// Name is the interface name; informational only, not part of the ID.
	Name string `json:"name" toml:"name"`
	// MAC is the lower-case aa:bb:cc:dd:ee:ff address: the permanent
	// (factory) address when the kernel reports one, else the current one.
	MAC string `json:"mac" toml:"mac"`
	// Kind is the netlink link kind, "device" for plain hardware.
	Kind string `json:"kind" toml:"kind"`
	// Driver is the kernel driver name; empty when not cheaply available
	// (netlink does not report it, so it is currently always empty).
	Driver string `json:"driver,omitempty" toml:"driver,omitempty"`
}

// Source values of Identity.Source.
const (
	SourceDMIProductUUID = "dmi-product-uuid"
	SourceDMIBoardSerial = "dmi-board-serial"
	SourceMAC            = "mac"
)

// Identity is the detected hardware identity.
type Identity struct {
	// ID is a stable string: "dmi:uuid=<product_uuid>",
	// "dmi:board=<board_serial>" or "mac:<mac1>,<mac2>,..." with the MACs
	// sorted and de-duplicated, independent of interface names and order.
	ID string `json:"id" toml:"id"`
	// Source is SourceDMIProductUUID, SourceDMIBoardSerial or SourceMAC.
	Source string `json:"source" toml:"source"`
	// NICs are the physical NICs (by Options.NICKinds), sorted by MAC then
	// name. They are filled whatever the Source.
	NICs []NIC `json:"nics" toml:"nics"`
}

// listLinks lists the network links of the current network namespace. Links
// without a usable MAC and loopback may be returned; Detect filters them. It
// is a variable so tests can substitute fixtures.
var listLinks = netlinkLinks

// Detect determines the hardware identity according to opt.
func Detect(opt Options) (Identity, error) {
	mode := opt.Mode
	if mode == "" {
		mode = ModeAuto
	}
	switch mode {
	case ModeAuto, ModeDMI, ModeMAC:
	default:
		return Identity{}, fmt.Errorf("hwid: unknown mode %q (want %q, %q or %q)", opt.Mode, ModeAuto, ModeDMI, ModeMAC)
	}
	kinds := opt.NICKinds
	if kinds == nil {
		kinds = DefaultNICKinds
	}

	nics, err := physicalNICs(kinds)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{NICs: nics}

	if mode != ModeMAC {
		dir := opt.DMIDir
		if dir == "" {
			dir = DMIDir
		}
		key, source, err := readDMI(dir)
		if err == nil {
			id.ID, id.Source = key, source
			return id, nil
		}
		if mode == ModeDMI {
			return Identity{}, err
		}
	}

	if len(nics) == 0 {
		return Identity{}, fmt.Errorf("hwid: no physical NIC found (kinds counted: %s)", strings.Join(kinds, ","))
	}
	macs := make([]string, 0, len(nics))
	for _, n := range nics {
		macs = append(macs, n.MAC)
	}
	macs = slices.Compact(macs) // nics is sorted by MAC
	id.ID = "mac:" + strings.Join(macs, ",")
	id.Source = SourceMAC
	return id, nil
}

// physicalNICs lists the links, keeps those with a usable MAC whose kind is
// in kinds, normalises the MACs and sorts by MAC, then name.
func physicalNICs(kinds []string) ([]NIC, error) {
	links, err := listLinks()
	if err != nil {
		return nil, fmt.Errorf("hwid: listing network links: %w", err)
	}
	nics := []NIC{}
	for _, l := range links {
		if !slices.Contains(kinds, l.Kind) {
			continue
		}
		hw, err := net.ParseMAC(l.MAC)
		if err != nil || !usableMAC(hw) {
			continue
		}
		l.MAC = hw.String() // lower-case, colon-separated
		nics = append(nics, l)
	}
	slices.SortFunc(nics, func(a, b NIC) int {
		if c := strings.Compare(a.MAC, b.MAC); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return nics, nil
}

// usableMAC reports whether hw is a 6-byte, not all-zero address.
func usableMAC(hw net.HardwareAddr) bool {
	return len(hw) == 6 && slices.ContainsFunc(hw, func(b byte) bool { return b != 0 })
}

// readDMI returns the identity key and source from the DMI directory dir:
// product_uuid if usable, else board_serial if usable. The error names the
// paths read and why each was rejected.
func readDMI(dir string) (key, source string, err error) {
	uuidPath := filepath.Join(dir, "product_uuid")
	uuid, uerr := readDMIValue(uuidPath)
	if uerr == nil {
		return "dmi:uuid=" + strings.ToLower(uuid), SourceDMIProductUUID, nil
	}
	boardPath := filepath.Join(dir, "board_serial")
	serial, berr := readDMIValue(boardPath)
	if berr == nil {
		return "dmi:board=" + serial, SourceDMIBoardSerial, nil
	}
	return "", "", fmt.Errorf("hwid: no usable DMI identity in %s: %w; %w", dir, uerr, berr)
}

// errJunk marks a DMI value that is a known placeholder.
var errJunk = errors.New("placeholder value")

// readDMIValue reads and trims one DMI attribute, rejecting junk values.
func readDMIValue(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", err // already names the path
		}
		return "", fmt.Errorf("%s: %w", path, err)
	}
	v := strings.TrimSpace(strings.Trim(string(b), "\x00"))
	if junkDMI(v) {
		return "", fmt.Errorf("%s: %w %q", path, errJunk, v)
	}
	return v, nil
}

// junkValues are DMI values firmware writes instead of a real identifier,
// compared case-insensitively.
var junkValues = []string{
	"",
	"none",
	"not specified",
	"to be filled by o.e.m.",
	"default string",
	"03000200-0400-0500-0006-000700080009", // well-known placeholder UUID
}

// junkDMI reports whether v is a placeholder rather than an identifier. Besides
// junkValues this covers strings of only '0' and '-' ("0", the all-zero UUID)
// and strings of only 'F'/'f' and '-' (including "-" alone).
func junkDMI(v string) bool {
	l := strings.ToLower(v)
	if slices.Contains(junkValues, l) {
		return true
	}
	onlyOf := func(c byte) bool {
		return strings.Trim(l, string(c)+"-") == ""
	}
	return onlyOf('0') || onlyOf('f')
}

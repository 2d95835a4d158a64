package hwid

import (
	"errors"
	"net"

	"github.com/vishvananda/netlink"
)

// dumpRetries bounds the retries of a link dump interrupted by concurrent
// link changes.
const dumpRetries = 5

// netlinkLinks lists the links of the current network namespace through
// netlink, skipping loopback and links without a usable 6-byte MAC. The
// permanent address is preferred over the current one, so bonding or MAC
// randomisation do not change the identity.
func netlinkLinks() ([]NIC, error) {
	var links []netlink.Link
	var err error
	for range dumpRetries {
		links, err = netlink.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	var nics []NIC
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.EncapType == "loopback" {
			continue
		}
		hw := a.PermHWAddr
		if !usableMAC(hw) {
			hw = a.HardwareAddr
		}
		if !usableMAC(hw) {
			continue
		}
		nics = append(nics, NIC{Name: a.Name, MAC: hw.String(), Kind: l.Type()})
	}
	return nics, nil
}

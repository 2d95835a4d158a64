// Package garp announces IPv4 addresses on the local link with gratuitous
// ARP (RFC 5227 section 3, "ARP announcement"), so that the office's hosts
// replace the MAC they hold for an address at once instead of after their
// neighbour entries age out (minutes): after a failover the primary's
// address comes up on the other machine's NIC, with another MAC.
//
// Linux updates an existing neighbour entry on an ARP request whose sender
// is that address (even when it is not addressed to it), and so do the
// usual office devices; it does not create entries from one (arp_accept),
// which is as it should be: only those who talked to the address care.
package garp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Packet is the ARP announcement of ip by mac: a request with ip as both
// the sender and the target address and a zero target MAC.
func Packet(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("gratuitous ARP: %s is not an IPv4 address", ip)
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("gratuitous ARP: MAC %q is not an Ethernet address", mac)
	}
	a := ip.As4()
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(p[2:], 0x0800) // IPv4
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], 1) // request
	copy(p[8:14], mac)
	copy(p[14:18], a[:])
	// target MAC zero (p[18:24])
	copy(p[24:28], a[:])
	return p, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Announce sends count announcements of ip from interface ifname (its MAC,
// to the broadcast address), gap apart; count below 1 means 1. It returns
// when the last is sent, ctx ends, or a send fails (the error names the
// interface and the address).
func Announce(ctx context.Context, ifname string, ip netip.Addr, count int, gap time.Duration) error {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("gratuitous ARP for %s on %s: %w", ip, ifname, err)
	}
	pkt, err := Packet(ifc.HardwareAddr, ip)
	if err != nil {
		return fmt.Errorf("%w (interface %s)", err, ifname)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("gratuitous ARP for %s on %s: packet socket: %w", ip, ifname, err)
	}
	defer unix.Close(fd)
	bcast := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifc.Index, Halen: 6}
	copy(bcast.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if count < 1 {
		count = 1
	}
	for i := 0; i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(gap):
			}
		}
		if err := unix.Sendto(fd, pkt, 0, bcast); err != nil {
			return fmt.Errorf("gratuitous ARP for %s on %s: send: %w", ip, ifname, err)
		}
	}
	return nil
}

// Address is an IPv4 address held by an interface that is up.
type Address struct {
	Interface string
	MAC       string
	Prefix    netip.Prefix
}

// Addresses are the IPv4 addresses of the interfaces that are up, have a
// MAC and are not loopback: those worth announcing.
func Addresses() ([]Address, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []Address
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || !ip.Unmap().Is4() {
				continue
			}
			ones, _ := n.Mask.Size()
			out = append(out, Address{Interface: ifc.Name, MAC: ifc.HardwareAddr.String(), Prefix: netip.PrefixFrom(ip.Unmap(), ones)})
		}
	}
	return out, nil
}

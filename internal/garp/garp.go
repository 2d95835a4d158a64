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
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

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
	// Since is when the address was added to the interface (the kernel's
	// creation stamp; zero when unknown).
	Since time.Time
}

// Addresses are the IPv4 addresses of the interfaces that are up, have a
// MAC and are not loopback: those worth announcing; each with the time it
// was added (netlink's IFA_CACHEINFO, in hundredths of a second since
// boot, against /proc/uptime).
func Addresses() ([]Address, error) {
	b, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("list addresses (netlink): %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, fmt.Errorf("list addresses (netlink): %w", err)
	}
	up, uperr := uptime("/proc/uptime")
	now := time.Now()
	// One dump of the links for all the addresses (net.InterfaceByIndex
	// dumps them all again for each address).
	var byIndex map[int]net.Interface
	var out []Address
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		ifa := (*syscall.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
		if byIndex == nil {
			ifcs, _ := net.Interfaces() // none: no address is worth announcing
			byIndex = make(map[int]net.Interface, len(ifcs))
			for _, ifc := range ifcs {
				byIndex[ifc.Index] = ifc
			}
		}
		ifc, ok := byIndex[int(ifa.Index)]
		if !ok || ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		a := Address{Interface: ifc.Name, MAC: ifc.HardwareAddr.String()}
		var local, addr netip.Addr
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_LOCAL:
				local, _ = netip.AddrFromSlice(at.Value)
			case unix.IFA_ADDRESS:
				addr, _ = netip.AddrFromSlice(at.Value)
			case unix.IFA_CACHEINFO:
				if len(at.Value) >= int(unsafe.Sizeof(unix.IfaCacheinfo{})) && uperr == nil {
					ci := (*unix.IfaCacheinfo)(unsafe.Pointer(&at.Value[0]))
					a.Since = now.Add(-(up - time.Duration(ci.Cstamp)*10*time.Millisecond)).UTC()
				}
			}
		}
		if local.IsValid() {
			addr = local
		}
		if !addr.Is4() {
			continue
		}
		a.Prefix = netip.PrefixFrom(addr, int(ifa.Prefixlen))
		out = append(out, a)
	}
	return out, nil
}

// uptime is the time since boot, from /proc/uptime.
func uptime(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: empty", path)
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

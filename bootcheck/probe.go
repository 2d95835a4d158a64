package bootcheck

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"golang.org/x/sys/unix"
)

// arpPacket builds an ARP request for target from mac. The sender address
// is 0.0.0.0, as in duplicate address detection (RFC 5227): the probe does
// not announce an address it does not hold yet.
func arpPacket(mac net.HardwareAddr, target net.IP) []byte {
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(p[2:], 0x0800) // IPv4
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], 1) // request
	copy(p[8:14], mac)
	// sender IP 0.0.0.0 (p[14:18]), target MAC zero (p[18:24])
	copy(p[24:28], target.To4())
	return p
}

// arpAnswer reports whether p is an ARP packet from a host that holds
// target (a reply from it, or its own request or announcement), and who.
func arpAnswer(p []byte, target net.IP, self net.HardwareAddr) (net.HardwareAddr, bool) {
	if len(p) < 28 || binary.BigEndian.Uint16(p[2:]) != 0x0800 || p[4] != 6 || p[5] != 4 {
		return nil, false
	}
	sha, spa := net.HardwareAddr(p[8:14]), net.IP(p[14:18])
	if bytes.Equal(sha, self) || !spa.Equal(target.To4()) {
		return nil, false
	}
	return append(net.HardwareAddr{}, sha...), true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ProbeARP asks on interface ifname whether any host holds one of ips,
// sending a probe for each every 200 ms until window ends or one answers. It
// returns the address held and its holder's MAC, or nils when nobody answered.
func ProbeARP(ctx context.Context, ifname string, ips []net.IP, window time.Duration) (net.IP, net.HardwareAddr, error) {
	for _, ip := range ips {
		if ip.To4() == nil {
			return nil, nil, fmt.Errorf("ARP probe: %s is not an IPv4 address", ip)
		}
	}
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, nil, fmt.Errorf("ARP probe on %s: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return nil, nil, fmt.Errorf("ARP probe on %s: packet socket: %w", ifname, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifc.Index}); err != nil {
		return nil, nil, fmt.Errorf("ARP probe on %s: bind: %w", ifname, err)
	}
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, nil, err
	}
	bcast := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifc.Index, Halen: 6}
	copy(bcast.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	var pkts [][]byte
	for _, ip := range ips {
		pkts = append(pkts, arpPacket(ifc.HardwareAddr, ip))
	}
	deadline := time.Now().Add(window)
	var lastSend time.Time
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if time.Since(lastSend) >= 200*time.Millisecond {
			for _, pkt := range pkts {
				if err := unix.Sendto(fd, pkt, 0, bcast); err != nil {
					return nil, nil, fmt.Errorf("ARP probe on %s: send: %w", ifname, err)
				}
			}
			lastSend = time.Now()
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, nil, fmt.Errorf("ARP probe on %s: receive: %w", ifname, err)
		}
		for _, ip := range ips {
			if mac, ok := arpAnswer(buf[:n], ip, ifc.HardwareAddr); ok {
				return ip, mac, nil
			}
		}
	}
	return nil, nil, nil
}

// PeerClaim is what the peer said of itself when asked at boot.
type PeerClaim struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Generation uint64 `json:"generation"`
	SafeMode   string `json:"safe_mode,omitempty"`
}

// AskPeer sends one hello to the peer agent at addr (mutual TLS with this
// disk set's certificate) and returns its role and generation.
func AskPeer(ctx context.Context, node *pki.Node, peerName, addr string, self peer.NodeStatus, timeout time.Duration) (*PeerClaim, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := peer.Encode(peer.TypeHello, node.Name, self)
	if err != nil {
		return nil, err
	}
	env, err := peer.Call(ctx, node.ClientTLS(peerName), addr, "/v1/hello", body)
	if err != nil {
		return nil, err
	}
	h, err := env.Hello()
	if err != nil {
		return nil, err
	}
	return &PeerClaim{Name: h.Name, Role: h.Role, Generation: h.Generation, SafeMode: h.SafeMode}, nil
}

// ClaimConflict says whether a peer's claim forbids this disk set (of role
// primary and generation gen) to take the primary role, and why.
func ClaimConflict(c *PeerClaim, gen uint64) (string, bool) {
	if c == nil || c.Role != Primary || c.SafeMode != "" {
		return "", false
	}
	switch {
	case c.Generation > gen:
		return fmt.Sprintf("the peer %s holds the primary role at generation %d, newer than this disk set's %d", c.Name, c.Generation, gen), true
	case c.Generation == gen:
		return fmt.Sprintf("the peer %s also claims the primary role at the same generation %d", c.Name, gen), true
	}
	return "", false
}

package garp

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestPacket: the announcement's bytes, field by field (RFC 826 layout,
// RFC 5227 announcement: sender and target address both the address).
func TestPacket(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	p, err := Packet(mac, netip.MustParseAddr("192.0.2.10"))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0, 1, 8, 0, 6, 4, 0, 1, // Ethernet, IPv4, lengths, request
		0x52, 0x54, 0, 0x12, 0x34, 0x56, 192, 0, 2, 10, // sender
		0, 0, 0, 0, 0, 0, 192, 0, 2, 10, // target
	}
	if !bytes.Equal(p, want) {
		t.Fatalf("packet\n got % x\nwant % x", p, want)
	}
	if _, err := Packet(mac, netip.MustParseAddr("2001:db8::1")); err == nil || !strings.Contains(err.Error(), "2001:db8::1") {
		t.Fatalf("IPv6: %v", err)
	}
	if _, err := Packet(net.HardwareAddr{1, 2}, netip.MustParseAddr("192.0.2.10")); err == nil {
		t.Fatal("a short MAC was accepted")
	}
}

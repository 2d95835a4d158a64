package parity

import (
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/peer"

	"github.com/sentryha/sentry/synchronizer/inventory"
)

func TestSlimInventory(t *testing.T) {
	inv := &inventory.Inventory{
		Kernels: []inventory.Kernel{{Release: "6.1.0-1-amd64",
			Aliases: []inventory.Alias{
				{Pattern: "pci:v00008086d00001521sv*sd*bc*sc*i*", Module: "igb"},
				{Pattern: "pci:v00008086d000010D3sv*sd*bc*sc*i*", Module: "e1000e"},
				{Pattern: "pci:v000010ECd00008168sv*sd*bc*sc*i*", Module: "r8169"},
			},
			Modules: []inventory.Module{
				{Name: "igb", Path: "kernel/igb.ko", Deps: []string{"dca"}},
				{Name: "dca", Path: "kernel/dca.ko"},
				{Name: "e1000e", Path: "kernel/e1000e.ko"},
				{Name: "r8169", Path: "kernel/r8169.ko", Firmware: []string{"rtl_nic/rtl8168h-2.fw"}, FirmwareKnown: true},
			}}},
		Firmware:         []string{"rtl_nic/rtl8168h-2.fw", "other.bin"},
		FirmwarePackages: map[string]string{"rtl_nic/rtl8168h-2.fw": "firmware-realtek"},
	}
	slim := slimInventory(inv, []string{"pci:v00008086d00001521sv00008086sd00000001bc02sc00i00"})
	k := slim.Kernels[0]
	if len(k.Aliases) != 1 || k.Aliases[0].Module != "igb" {
		t.Fatalf("aliases kept: %+v", k.Aliases)
	}
	var mods []string
	for _, m := range k.Modules {
		mods = append(mods, m.Name)
	}
	if strings.Join(mods, " ") != "igb dca" {
		t.Fatalf("modules kept: %v, want igb and its dependency dca", mods)
	}
	if len(slim.Firmware) != 0 || slim.FirmwarePackages != nil {
		t.Fatalf("firmware of modules not kept stays: %v %v", slim.Firmware, slim.FirmwarePackages)
	}
	if len(inv.Kernels[0].Aliases) != 3 {
		t.Fatal("slimInventory changed the inventory it was given")
	}
	slim = slimInventory(inv, []string{"pci:v000010ECd00008168sv00001043sd00008677bc02sc00i00"})
	if len(slim.Firmware) != 1 || slim.FirmwarePackages["rtl_nic/rtl8168h-2.fw"] != "firmware-realtek" {
		t.Fatalf("firmware of a kept module: %v %v", slim.Firmware, slim.FirmwarePackages)
	}
}

func TestFailedPackages(t *testing.T) {
	out := `dpkg: error processing archive /var/lib/sentry/debs/foo_1.0_all.deb (--install):
 trying to overwrite '/usr/bin/x', which is also in package bar 2.0
dpkg: error processing package baz:amd64 (--install):
 dependency problems - leaving unconfigured`
	got := failedPackages(out)
	if !got["foo"] || !got["baz"] || len(got) != 2 {
		t.Fatalf("failedPackages = %v, want foo and baz", got)
	}
}

// A hello that announces a newer inventory than the one held (or any,
// when none is held) asks the loop to fetch it (once, however many hellos
// say so); an older or the same one does not, nor a hello that says none.
func TestNewerPeerInventoryRefetched(t *testing.T) {
	p := New(Deps{}, Options{})
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	p.NotePeer(&peer.NodeStatus{Name: "node-p"})
	select {
	case <-p.refetch:
		t.Fatal("a hello without an inventory asked for one")
	default:
	}
	p.NotePeer(&peer.NodeStatus{Name: "node-p", InventoryTaken: t0})
	select {
	case <-p.refetch:
	default:
		t.Fatal("the peer's first inventory was not fetched")
	}
	p.peer = &inventory.Inventory{Node: "node-p", Taken: t0}
	p.NotePeer(&peer.NodeStatus{Name: "node-p", InventoryTaken: t0})
	p.NotePeer(&peer.NodeStatus{Name: "node-p", InventoryTaken: t0.Add(-time.Minute)})
	select {
	case <-p.refetch:
		t.Fatal("an inventory no newer than the one held was fetched")
	default:
	}
	p.NotePeer(&peer.NodeStatus{Name: "node-p", InventoryTaken: t0.Add(time.Minute)})
	p.NotePeer(&peer.NodeStatus{Name: "node-p", InventoryTaken: t0.Add(2 * time.Minute)})
	select {
	case <-p.refetch:
	default:
		t.Fatal("a newer inventory of the peer was not fetched")
	}
	select {
	case <-p.refetch:
		t.Fatal("two fetches asked for one change")
	default:
	}
}

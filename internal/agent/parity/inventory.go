package parity

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// inventorySources are this node's inventory sources.
func (p *Parity) inventorySources(id Identity) inventory.Sources {
	src := inventory.Host(p.opts.Root)
	src.Node = id.Node
	src.DpkgDir = p.opts.DpkgDir
	if p.opts.Sys != "" {
		src.Sys = p.opts.Sys
	}
	src.MachineID = id.MachineID
	// The peer's devices, and those of the other machines' stored
	// profiles (the peer may be down): their modules' firmware is read.
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range append(append([]string(nil), p.wanted...), p.profileAliases...) {
		if !seen[m] {
			seen[m] = true
			src.Modaliases = append(src.Modaliases, m)
		}
	}
	return src
}

// Run keeps the inventory current until ctx ends.
func (p *Parity) Run(ctx context.Context) error {
	if inv, err := inventory.Load(filepath.Join(p.opts.StateDir, InventoryFile)); err == nil {
		p.mu.Lock()
		p.self = inv
		p.mu.Unlock()
	}
	w, err := fsnotify.NewWatcher()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if err == nil {
		defer w.Close()
		if err = w.Add(p.opts.DpkgDir); err == nil {
			events, errs = w.Events, w.Errors
		}
	}
	if err != nil {
		p.deps.Log.Warn("inventory: not watching dpkg; retaken on schedule only", "dir", p.opts.DpkgDir, "err", err)
	}
	p.round(ctx, "agent start")
	tick := time.NewTicker(InventoryInterval)
	defer tick.Stop()
	// Until the peer's inventory is at hand (before pairing, the peer
	// down), it is asked for more often.
	retry := time.NewTicker(InventoryRetry)
	defer retry.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if filepath.Base(ev.Name) == "status" && ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename) != 0 {
				debounce = time.After(InventoryDebounce)
			}
		case err := <-errs:
			p.deps.Log.Warn("inventory: dpkg watch", "err", err)
		case <-debounce:
			debounce = nil
			p.round(ctx, "dpkg run")
		case <-tick.C:
			p.round(ctx, "schedule")
		case <-p.refetch:
			if p.fetchPeerInventory(ctx) == nil {
				p.noteDrift()
			}
		case <-retry.C:
			p.mu.Lock()
			missing := p.peer == nil || p.peerErr != ""
			p.mu.Unlock()
			if missing && p.fetchPeerInventory(ctx) == nil {
				p.noteDrift()
			}
		}
	}
}

// round takes this node's inventory, fetches the peer's, and records what
// changed in the drift.
func (p *Parity) round(ctx context.Context, why string) {
	p.loadProfileAliases()
	p.takeInventory(why)
	if err := p.fetchPeerInventory(ctx); err != nil {
		p.deps.Log.Debug("inventory: peer's not fetched", "err", err)
	}
	p.noteDrift()
}

// takeInventory takes and saves this node's inventory, then the hardware
// profiles (on the primary). On failure the last good one stays, and the
// failure is logged and recorded (once per cause).
func (p *Parity) takeInventory(why string) (*inventory.Inventory, error) {
	inv, err := p.retakeInventory(why)
	if err == nil {
		p.saveHardwareProfiles()
	}
	return inv, err
}

func (p *Parity) retakeInventory(why string) (*inventory.Inventory, error) {
	p.takeMu.Lock()
	defer p.takeMu.Unlock()
	id := p.deps.Self()
	src := p.inventorySources(id)
	start := time.Now()
	inv, err := inventory.Update(filepath.Join(p.opts.StateDir, InventoryFile), src)
	// The events are recorded after p.mu is let go, in the order of the
	// takes (takeMu).
	p.mu.Lock()
	if err != nil {
		var failed string
		if p.selfErr != err.Error() {
			last := "none"
			if p.self != nil {
				last = "the one taken " + p.self.Taken.Format(time.RFC3339)
			}
			failed = fmt.Sprintf("inventory not taken (%s): %v; the last good inventory stays (%s)", why, err, last)
		}
		p.selfErr = err.Error()
		p.mu.Unlock()
		if failed != "" {
			p.deps.Event("inventory", id.Node, failed, map[string]string{"error": err.Error(), "reason": why})
		}
		p.deps.Log.Error("inventory not taken: the last good one stays", "reason", why, "err", err)
		return nil, err
	}
	prev, prevErr := p.self, p.selfErr
	p.self, p.selfErr = inv, ""
	p.modaliases = src.Modaliases
	p.mu.Unlock()
	if prev == nil || prevErr != "" || packageKey(prev) != packageKey(inv) {
		kernel := "none"
		if k := inv.BootKernel(); k != nil {
			kernel = k.Release
		}
		p.deps.Event("inventory", id.Node, fmt.Sprintf("inventory taken (%s): %d packages, boot kernel %s, %d PCI devices", why, len(inv.Packages), kernel, len(inv.Hardware.PCI)),
			map[string]string{"reason": why, "packages": fmt.Sprint(len(inv.Packages)), "ms": fmt.Sprint(time.Since(start).Milliseconds())})
	}
	p.deps.Log.Info("inventory taken", "reason", why, "packages", len(inv.Packages), "ms", time.Since(start).Milliseconds())
	return inv, nil
}

// packageKey sums up the installed packages, to tell a change.
func packageKey(inv *inventory.Inventory) string {
	var b strings.Builder
	for _, p := range inv.Packages {
		fmt.Fprintf(&b, "%s=%s %s;", p.Key(), p.Version, p.Status)
	}
	for _, k := range inv.Kernels {
		fmt.Fprintf(&b, "k=%s/%d;", k.Release, len(k.Aliases))
	}
	return b.String()
}

// wantModaliases notes the peer's devices; true when the last inventory
// did not read firmware for one of them.
func (p *Parity) wantModaliases(ms []string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wanted = append([]string(nil), ms...)
	have := map[string]bool{}
	for _, m := range p.modaliases {
		have[m] = true
	}
	for _, m := range ms {
		if !have[m] {
			return true
		}
	}
	return false
}

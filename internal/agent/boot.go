package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
)

// bootRecordedName, in the state folder, holds the id of the last boot
// result recorded as events (so a restarted agent does not record it twice).
const bootRecordedName = "bootcheck-recorded"

// loadBoot reads this boot's bootcheck result and records it as events
// (once per boot): the decision, and a failover when the primary disk set
// runs on other hardware than its home.
func (a *Agent) loadBoot() {
	res, err := bootcheck.Last()
	if errors.Is(err, os.ErrNotExist) {
		return // no bootcheck on this system (or not since boot)
	}
	if err != nil {
		a.log.Error("bootcheck result", "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.boot = res
	if res.Outcome == bootcheck.SafeMode {
		a.log.Warn("safe mode: the role's services are held", "reason", res.Reason)
	}
	mark := a.statePath(bootRecordedName)
	if b, err := os.ReadFile(mark); err == nil && string(b) == res.ID {
		return
	}
	fields := map[string]string{"hardware": res.Hardware, "home_hardware": res.HomeHardware, "disk_set": res.DiskSet,
		"generation": strconv.FormatUint(res.Generation, 10), "outcome": res.Outcome, "took_ms": fmt.Sprintf("%.1f", res.TookMS)}
	a.event("bootcheck", a.nodeName(), fmt.Sprintf("boot decision: %s: %s", res.Outcome, res.Reason), fields)
	if res.Failover {
		a.event("failover", a.nodeName(), res.FailoverText(), fields)
	}
	// What the boot went on despite (drivers missing for this machine, a
	// check that could not be made) is news too, not only a console line.
	for _, w := range res.Warnings {
		a.event("bootcheck-warning", a.nodeName(), "boot warning: "+w, fields)
	}
	if err := atomicfile.Write(mark, []byte(res.ID), 0o600); err != nil {
		a.log.Error("bootcheck record mark", "err", err)
	}
}

// safeModeLocked returns the safe mode's reason ("" when not in safe mode).
func (a *Agent) safeModeLocked() string {
	if a.boot != nil && a.boot.Outcome == bootcheck.SafeMode {
		return a.boot.Reason
	}
	if a.identErr != nil {
		return "disk identity unreadable: " + a.identErr.Error()
	}
	return ""
}

// bootFieldsLocked fills the boot fields of this node's status.
func (a *Agent) bootFieldsLocked(s *peer.NodeStatus) {
	if a.boot != nil {
		s.Boot, s.Failover = a.boot.Outcome, a.boot.Failover
	}
	s.SafeMode = a.safeModeLocked()
	if s.SafeMode != "" {
		s.Boot = bootcheck.SafeMode
	}
	if a.stamp != nil {
		s.HomeHardware = a.stamp.HomeHardware
	}
	s.HardwareNICs = a.hw.NICs
}

// updateMachinesLocked keeps the machine profiles in the config repo (the
// primary writes them; the sync brings them to the secondary): this
// machine's, the peer's as it last said, and the primary's addresses.
func (a *Agent) updateMachinesLocked() {
	if a.stamp == nil || a.stamp.Role != stamp.RolePrimary || a.safeModeLocked() != "" || a.hwErr != nil {
		return
	}
	m, err := bootcheck.ReadMachines(a.machinesFile())
	if err != nil && !errors.Is(err, bootcheck.ErrNoProfiles) {
		a.log.Warn("machine profiles", "err", err)
		return
	}
	changed := false
	now := time.Now().UTC()
	self := bootcheck.Machine{ID: a.hw.ID, Source: a.hw.Source, NICs: a.hw.NICs, Seen: now}
	if old, ok := m.Find(a.hw.ID); ok {
		self.HomeOf = old.HomeOf
	}
	// A machine adopted on this disk set stands in for the one it replaced.
	if ad, err := bootcheck.ReadMachines(a.statePath(bootcheck.AdoptedName)); err == nil {
		if x, ok := ad.Find(a.hw.ID); ok && x.Replaces != "" {
			self.Replaces, self.Adopted = x.Replaces, x.Adopted
			if x.HomeOf != "" {
				self.HomeOf = x.HomeOf
			}
		}
	} else if !errors.Is(err, bootcheck.ErrNoProfiles) && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("adopted machines", "err", err)
	}
	if a.hw.ID == a.stamp.HomeHardware {
		self.HomeOf = a.nodeName()
		// The primary's addresses are those its installed network gives
		// its home NICs.
		if files, err := bootcheck.RoleNetworks(bootcheck.NetworkDir, a.hw.NICs); err == nil {
			var addrs []string
			for _, f := range files {
				addrs = append(addrs, f.Addresses()...)
			}
			if len(addrs) > 0 && !slices.Equal(addrs, m.PrimaryAddresses) {
				m.PrimaryAddresses, changed = addrs, true
			}
		}
	}
	changed = m.Put(self) || changed
	if pm, ok := a.peerMachineLocked(m, now); ok {
		changed = m.Put(pm) || changed
	}
	if !changed {
		return
	}
	if err := bootcheck.WriteMachines(a.machinesFile(), m); err != nil {
		a.log.Error("machine profiles", "err", err)
		return
	}
	a.log.Info("machine profiles updated", "file", a.machinesFile(), "machines", len(m.Machine))
}

// peerMachineLocked is the profile of the peer's machine as the peer last
// said, when its word may be taken. The peer speaks for its own machine
// only: never for this node's machine (a.hw.ID, whose NICs this node reads
// itself), nor for a machine whose home is this node (this node wrote that
// entry when it ran there; the peer may run there after a swap, and its
// word about the machine then is no better than this node's). An entry's
// adoption is kept.
func (a *Agent) peerMachineLocked(m *bootcheck.Machines, now time.Time) (bootcheck.Machine, bool) {
	p := a.lnk().Peer()
	if p == nil || p.Hardware == "" || len(p.HardwareNICs) == 0 {
		return bootcheck.Machine{}, false
	}
	if p.Hardware == a.hw.ID {
		a.log.Debug("machine profiles: the peer says it runs on this node's machine; not taken", "node", p.Name, "machine", p.Hardware)
		return bootcheck.Machine{}, false
	}
	pm := bootcheck.Machine{ID: p.Hardware, NICs: p.HardwareNICs, Source: "peer", Seen: now}
	if old, ok := m.Find(p.Hardware); ok {
		if old.HomeOf == a.nodeName() {
			a.log.Debug("machine profiles: the peer runs on this node's home machine; its entry stays this node's", "node", p.Name, "machine", p.Hardware)
			return bootcheck.Machine{}, false
		}
		pm.Source, pm.HomeOf, pm.Replaces, pm.Adopted = old.Source, old.HomeOf, old.Replaces, old.Adopted
	}
	if p.HomeHardware == p.Hardware {
		pm.HomeOf = p.Name
	}
	return pm, true
}

// PromoteResult is what `sentry promote` prints.
type PromoteResult struct {
	Node          string `json:"node"`
	DiskSet       string `json:"disk_set"`
	OldGeneration uint64 `json:"old_generation"`
	Generation    uint64 `json:"generation"`
	Next          string `json:"next"`
}

// Promote makes this secondary disk set the primary, at a generation above
// any it has seen, for when the primary's disks are lost. The role changes
// at the next boot (bootcheck then takes the primary's addresses).
func (a *Agent) Promote() (*PromoteResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stamp == nil {
		return nil, errors.New("this disk set belongs to no cluster")
	}
	if a.stamp.Role != stamp.RoleSecondary {
		return nil, fmt.Errorf("this disk set is already the %s (generation %d)", a.stamp.Role, a.stamp.Generation)
	}
	st := *a.stamp
	old := st.Generation
	// Above any generation seen: this disk set's, the peer's last stored
	// and last heard (both checked when they came, peer.CheckGeneration).
	top := max(st.Generation, st.OtherGeneration)
	if a.lnk().Peer() != nil {
		top = max(top, a.lnk().Peer().Generation)
	}
	if top >= stamp.MaxGeneration {
		return nil, fmt.Errorf("cannot promote: the newest generation known, %d, is at the limit of %d, and a stamp holds none above it; "+
			"a real generation counts role changes and never comes near it: check %s (other_generation) and restore it from a backup", top, stamp.MaxGeneration, a.statePath(stamp.StampFile))
	}
	st.Generation = top + 1
	st.Role = stamp.RolePrimary
	st.Written = time.Now().UTC()
	if err := stamp.WriteStamp(a.statePath(stamp.StampFile), &st); err != nil {
		return nil, err
	}
	a.stamp = &st
	a.event("promote", a.nodeName(), fmt.Sprintf("promoted: disk set %s is now the primary, generation %d (was the secondary at %d)", st.DiskSet, st.Generation, old),
		map[string]string{"disk_set": st.DiskSet, "generation": strconv.FormatUint(st.Generation, 10), "hardware": a.hw.ID})
	return &PromoteResult{Node: a.nodeName(), DiskSet: st.DiskSet, OldGeneration: old, Generation: st.Generation,
		Next: "reboot this node: at boot it takes the primary role and the primary's addresses (`systemctl reboot`)"}, nil
}

// AdoptResult is what `sentry bootcheck adopt` prints.
type AdoptResult struct {
	Machine  string            `json:"machine"`
	Replaces string            `json:"replaces"`
	Result   *bootcheck.Result `json:"result"`
}

// Adopt accepts this machine (unknown to the cluster) as a replacement of
// machine replaces ("" = this disk set's home), re-runs the boot decision,
// and when it now gives a role, brings the network and the role's services
// up.
func (a *Agent) Adopt(ctx context.Context, replaces string, force bool) (*AdoptResult, error) {
	a.mu.Lock()
	boot, st, hw := a.boot, a.stamp, a.hw
	a.mu.Unlock()
	if boot == nil || boot.Outcome != bootcheck.SafeMode || !boot.UnknownMachine {
		return nil, errors.New("nothing to adopt: this boot is not in safe mode for an unknown machine (see `sentry bootcheck explain`)")
	}
	if st == nil {
		return nil, errors.New("this disk set belongs to no cluster")
	}
	// The peer's last word: where it ran when last heard from.
	var seen *bootcheck.PeerSeen
	a.mu.Lock()
	if p := a.lnk().Peer(); p != nil {
		seen = &bootcheck.PeerSeen{Name: p.Name, Hardware: p.Hardware, When: a.lnk().State().LastContact}
	}
	peerName := ""
	if a.cluster != nil {
		peerName = a.cluster.PeerName
	}
	a.mu.Unlock()
	if seen == nil && peerName != "" && a.store != nil {
		if rec, ok, err := a.store.Peer(peerName); err == nil && ok {
			var ps peer.NodeStatus
			if json.Unmarshal(rec.Status, &ps) == nil {
				seen = &bootcheck.PeerSeen{Name: peerName, Hardware: ps.Hardware, When: rec.LastContact}
			}
		}
	}
	ad, err := bootcheck.Adopt(bootcheck.AdoptInput{StateDir: a.conf().Node.StateDir, MachinesFile: a.machinesFile(),
		Here: hw, Replaces: replaces, Peer: seen, Force: force})
	if err != nil {
		return nil, err
	}
	replaces = ad.Replaces
	a.event("adopt", a.nodeName(), ad.Text, map[string]string{"hardware": hw.ID, "replaces": replaces, "disk_set": st.DiskSet})
	if ad.Warning != "" {
		a.event("bootcheck-warning", a.nodeName(), "adopt: "+ad.Warning, map[string]string{"hardware": hw.ID, "replaces": replaces})
	}
	res, err := bootcheck.Run(ctx, bootcheck.Options{StateDir: a.conf().Node.StateDir, MachinesFile: a.machinesFile(),
		HW: a.hwOptions(), Log: a.log.With("component", "bootcheck")})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.boot = res
	a.mu.Unlock()
	a.loadBoot() // records the new decision
	if res.Outcome == bootcheck.SafeMode {
		return &AdoptResult{Machine: hw.ID, Replaces: replaces, Result: res}, fmt.Errorf("still in safe mode: %s", res.Reason)
	}
	if err := startRole(ctx); err != nil {
		return nil, fmt.Errorf("decision %s, but starting the role: %w", res.Outcome, err)
	}
	a.mu.Lock()
	if a.node != nil && a.sync.cancel == nil {
		if err := a.startSyncLocked(); err != nil {
			a.log.Error("config sync", "err", err)
		}
	}
	a.updateMachinesLocked()
	a.mu.Unlock()
	return &AdoptResult{Machine: hw.ID, Replaces: replaces, Result: res}, nil
}

// startRole restarts systemd-networkd (it reads bootcheck's new files) and
// starts the role target.
func startRole(ctx context.Context) error {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("system bus: %w", err)
	}
	defer conn.Close()
	ch := make(chan string, 1)
	if _, err := conn.RestartUnitContext(ctx, "systemd-networkd.service", "replace", ch); err != nil {
		return err
	}
	<-ch
	if _, err := conn.StartUnitContext(ctx, bootcheck.RoleTarget, "replace", ch); err != nil {
		return err
	}
	if r := <-ch; r != "done" {
		return fmt.Errorf("%s: %s", bootcheck.RoleTarget, r)
	}
	return nil
}

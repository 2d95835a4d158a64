package machines

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
)

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
func (m *Machines) Promote() (*PromoteResult, error) {
	m.promoteMu.Lock()
	defer m.promoteMu.Unlock()
	node := m.d.Self().Node
	hw, _ := m.d.Hardware()
	var old uint64
	var st stamp.Stamp
	err := m.d.ChangeStamp(func(cur *stamp.Stamp) (*stamp.Stamp, error) {
		if cur == nil {
			return nil, errors.New("this disk set belongs to no cluster")
		}
		if cur.Role != stamp.RoleSecondary {
			return nil, fmt.Errorf("this disk set is already the %s (generation %d)", cur.Role, cur.Generation)
		}
		st = *cur
		old = st.Generation
		// Above any generation seen: this disk set's, the peer's last
		// stored and last heard (both checked when they came,
		// peer.CheckGeneration).
		top := max(st.Generation, st.OtherGeneration)
		m.mu.Lock()
		if m.peer != nil {
			top = max(top, m.peer.Generation)
		}
		m.mu.Unlock()
		if top >= stamp.MaxGeneration {
			return nil, fmt.Errorf("cannot promote: the newest generation known, %d, is at the limit of %d, and a stamp holds none above it; "+
				"a real generation counts role changes and never comes near it: check %s (other_generation) and restore it from a backup", top, stamp.MaxGeneration, m.statePath(stamp.StampFile))
		}
		st.Generation = top + 1
		st.Role = stamp.RolePrimary
		st.Written = time.Now().UTC()
		return &st, nil
	})
	if err != nil {
		return nil, err
	}
	m.d.Event("promote", node, fmt.Sprintf("promoted: disk set %s is now the primary, generation %d (was the secondary at %d)", st.DiskSet, st.Generation, old),
		map[string]string{"disk_set": st.DiskSet, "generation": strconv.FormatUint(st.Generation, 10), "hardware": hw.ID})
	return &PromoteResult{Node: node, DiskSet: st.DiskSet, OldGeneration: old, Generation: st.Generation,
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
func (m *Machines) Adopt(ctx context.Context, replaces string, force bool) (*AdoptResult, error) {
	m.promoteMu.Lock()
	defer m.promoteMu.Unlock()
	id := m.d.Self()
	hw, _ := m.d.Hardware()
	m.mu.Lock()
	boot := m.boot
	// The peer's last word: where it ran when last heard from.
	var seen *bootcheck.PeerSeen
	if p := m.peer; p != nil {
		seen = &bootcheck.PeerSeen{Name: p.Name, Hardware: p.Hardware, When: m.peerContact}
	}
	m.mu.Unlock()
	if boot == nil || boot.Outcome != bootcheck.SafeMode || !boot.UnknownMachine {
		return nil, errors.New("nothing to adopt: this boot is not in safe mode for an unknown machine (see `sentry bootcheck explain`)")
	}
	st := id.Stamp
	if st == nil {
		return nil, errors.New("this disk set belongs to no cluster")
	}
	if seen == nil && id.PeerName != "" && m.d.PeerRecord != nil {
		if rec, ok, err := m.d.PeerRecord(id.PeerName); err == nil && ok {
			var ps peer.NodeStatus
			if json.Unmarshal(rec.Status, &ps) == nil {
				seen = &bootcheck.PeerSeen{Name: id.PeerName, Hardware: ps.Hardware, When: rec.LastContact}
			}
		}
	}
	stateDir := m.d.StateDir()
	ad, err := bootcheck.Adopt(bootcheck.AdoptInput{StateDir: stateDir, MachinesFile: m.opt.machinesFile,
		Here: hw, Replaces: replaces, Peer: seen, Force: force})
	if err != nil {
		return nil, err
	}
	replaces = ad.Replaces
	m.d.Event("adopt", id.Node, ad.Text, map[string]string{"hardware": hw.ID, "replaces": replaces, "disk_set": st.DiskSet})
	if ad.Warning != "" {
		m.d.Event("bootcheck-warning", id.Node, "adopt: "+ad.Warning, map[string]string{"hardware": hw.ID, "replaces": replaces})
	}
	res, err := m.opt.runCheck(ctx, bootcheck.Options{StateDir: stateDir, MachinesFile: m.opt.machinesFile,
		HW: m.d.HWOptions(), Log: m.d.Log.With("component", "bootcheck")})
	if err != nil {
		return nil, err
	}
	m.takeBoot(res) // records the new decision
	if res.Outcome == bootcheck.SafeMode {
		return &AdoptResult{Machine: hw.ID, Replaces: replaces, Result: res}, fmt.Errorf("still in safe mode: %s", res.Reason)
	}
	if err := m.opt.startRole(ctx); err != nil {
		return nil, fmt.Errorf("decision %s, but starting the role: %w", res.Outcome, err)
	}
	if m.d.RoleStarted != nil {
		m.d.RoleStarted()
	}
	m.Update()
	return &AdoptResult{Machine: hw.ID, Replaces: replaces, Result: res}, nil
}

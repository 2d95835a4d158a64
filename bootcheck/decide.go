package bootcheck

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/stamp"
)

// Outcomes of a boot decision.
const (
	Primary   = "primary"
	Secondary = "secondary"
	SafeMode  = "safe-mode"
	// Unpaired is a disk set that never joined a cluster: no stamp, no
	// cluster state, no keys. It is a plain server; its services start.
	Unpaired = "unpaired"
)

// Input is everything the decision looks at.
type Input struct {
	Stamp    *stamp.Stamp
	StampErr error
	// StampPath names the stamp in messages.
	StampPath string
	// Paired says this disk set has cluster state or keys (so a missing
	// stamp is a fault, not a new install).
	Paired bool
	// CACluster is the cluster id of the disk set's CA certificate ("" when
	// it has none).
	CACluster string
	// StateCluster is the cluster id of the cluster state (cluster.toml,
	// at ClusterPath; "" when there is none).
	StateCluster string
	ClusterPath  string
	// Node is this node's name (cluster.toml; "" when unknown): a machine
	// the cluster's profiles list as its home is its home.
	Node    string
	Here    hwid.Identity
	HereErr error
	// Machines is machines.toml; MachinesErr why it could not be read
	// (nil when read, or when there is none).
	Machines    *Machines
	MachinesErr error
	// Adopted lists the machines adopted on this disk set; AdoptedErr why
	// that list could not be read (nil when read, or when there is none).
	Adopted    *Machines
	AdoptedErr error
}

// Decision is the boot decision, before any probe.
type Decision struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	// Failover is set when the primary disk set boots on a machine other
	// than its home.
	Failover bool `json:"failover"`
	// Home says the machine is the disk set's own.
	Home bool `json:"home"`
	// Machine is the known profile of this machine (nil when unknown).
	Machine *Machine `json:"machine,omitempty"`
	// HomeMachine is the profile of the disk set's home machine, if known.
	HomeMachine *Machine `json:"home_machine,omitempty"`
	// UnknownMachine marks the one safe mode `sentry bootcheck adopt` lifts:
	// a sound stamp of this cluster on a machine the cluster does not know.
	UnknownMachine bool `json:"unknown_machine,omitempty"`
	// Replaces is the machine this one was adopted in place of ("" when it
	// stands for itself).
	Replaces string `json:"replaces,omitempty"`
	// HomeOf is the node whose home this machine is, or stands in for
	// ("" when it is no known node's).
	HomeOf string `json:"home_of,omitempty"`
}

func safe(format string, args ...any) Decision {
	return Decision{Outcome: SafeMode, Reason: fmt.Sprintf(format, args...)}
}

// Decide applies the table of docs/design.md ("The disk stamp and the boot
// decision") to what was read. It does no I/O.
func Decide(in Input) Decision {
	if in.StampErr != nil {
		if errors.Is(in.StampErr, stamp.ErrMissing) {
			if !in.Paired {
				return Decision{Outcome: Unpaired, Reason: "this disk set belongs to no cluster (no stamp, no cluster state): its services start as on any server"}
			}
			return safe("the disk stamp %s is missing, yet this disk set has cluster keys: it cannot tell its role", in.StampPath)
		}
		return safe("the disk stamp is unreadable: %v", in.StampErr)
	}
	st := in.Stamp
	if in.CACluster != "" && st.ClusterID != in.CACluster {
		return safe("the disk stamp is of cluster %s, but this disk set's keys are of cluster %s", st.ClusterID, in.CACluster)
	}
	if in.StateCluster != "" && st.ClusterID != in.StateCluster {
		return safe("the disk stamp %s is of cluster %s, but the cluster state %s is of cluster %s",
			orUnnamed(in.StampPath, stamp.StampFile), st.ClusterID, orUnnamed(in.ClusterPath, stamp.ClusterFile), in.StateCluster)
	}
	if in.HereErr != nil {
		return safe("cannot identify this machine: %v", in.HereErr)
	}
	d := Decision{Outcome: st.Role}
	home, _ := in.Machines.Find(st.HomeHardware)
	d.HomeMachine = home
	if in.Here.ID == st.HomeHardware {
		d.Home = true
		d.Machine = home
		if d.Machine == nil {
			d.Machine = &Machine{ID: in.Here.ID, Source: in.Here.Source, NICs: in.Here.NICs}
		}
		if home != nil {
			d.HomeOf = home.HomeOf
		}
		d.Reason = fmt.Sprintf("the %s disk set on its home machine", st.Role)
		return d
	}
	si, known := standsFor(in.Here.ID, st.HomeHardware, in.Node, in.Machines, in.Adopted)
	if !known {
		if err := errors.Join(in.MachinesErr, in.AdoptedErr); err != nil {
			// Not "unknown": the lists that would say are unreadable, and
			// adopt would not lift this (it refuses to work on them).
			return safe("this machine (%s) is not among the machines this disk set could read (known: %s), and the machine lists are unreadable: %v: restore that file (the other disk set holds a copy of machines.toml), or remove it and adopt this machine",
				in.Here.ID, knownList(in.Machines, in.Adopted, st.HomeHardware), err)
		}
		d := safe("this machine (%s) is not one of this cluster's machines (known: %s): run `sentry bootcheck adopt` to accept it",
			in.Here.ID, knownList(in.Machines, in.Adopted, st.HomeHardware))
		d.UnknownMachine = true
		return d
	}
	d.Machine, d.Home, d.Replaces, d.HomeOf = si.machine, si.home, si.replaces, si.owner
	d.Failover = st.Role == stamp.RolePrimary && !d.Home
	d.Reason = fmt.Sprintf("the %s disk set on %s", st.Role, si.describe())
	return d
}

// standIn is what a machine stands for in this cluster.
type standIn struct {
	machine *Machine
	// adopted: the record is this disk set's own adoption (else a profile
	// of machines.toml).
	adopted bool
	// replaces is the machine it was adopted in place of ("" when it
	// stands for itself).
	replaces string
	// home: it is, or stands in for, this disk set's home.
	home bool
	// owner is the node whose home it is, or stands in for.
	owner string
}

// standsFor finds machine id among the machines adopted on this disk set
// (first: the operator's word on these disks, which a profile that the
// primary's agent writes for the machine it runs on must not hide) and
// the cluster's profiles, and follows its adoptions (C in place of B in
// place of A) to the machine it stands in for: this disk set's home, or
// a node's home.
func standsFor(id, homeHW, node string, machines, adopted *Machines) (standIn, bool) {
	var s standIn
	m, ok := adopted.Find(id)
	s.adopted = ok
	if !ok {
		if m, ok = machines.Find(id); !ok {
			return s, false
		}
	}
	s.machine, s.replaces = m, m.Replaces
	// Follow the adoptions to the machine at the end; the owner is the
	// last one named on the way (the replaced machine's own profile is
	// newer than what an adoption recorded of it).
	cur := m
	seen := map[string]bool{id: true}
	for {
		if cur.HomeOf != "" {
			s.owner = cur.HomeOf
		}
		r := cur.Replaces
		if r == "" {
			break
		}
		if r == homeHW {
			s.home = true
			if h, ok := machines.Find(homeHW); ok && h.HomeOf != "" {
				s.owner = h.HomeOf
			}
			break
		}
		next, ok := adopted.Find(r)
		if !ok {
			next, ok = machines.Find(r)
		}
		if !ok || seen[r] {
			break // not known (any more): what the adoption recorded
		}
		seen[r] = true
		cur = next
	}
	if node != "" && s.owner == node {
		// The cluster lists it as this node's home.
		s.home = true
	}
	return s, true
}

// describe names the machine for the decision's reason: what it is to
// this cluster, and why it is known.
func (s standIn) describe() string {
	id := s.machine.ID
	how := "one of this cluster's machines"
	if s.adopted {
		how = "adopted on this disk set"
	} else if s.replaces != "" {
		how = "adopted, in this cluster's machines"
	}
	switch {
	case s.home && s.replaces != "":
		return fmt.Sprintf("the machine adopted as its home: %s, in place of %s (%s)", id, s.replaces, how)
	case s.home:
		return fmt.Sprintf("its home machine %s (the home of %s in this cluster's machines)", id, s.owner)
	case s.owner != "" && s.replaces != "":
		return fmt.Sprintf("the home machine of %s: %s, adopted in place of %s (%s)", s.owner, id, s.replaces, how)
	case s.owner != "":
		return fmt.Sprintf("the home machine of %s (%s)", s.owner, how)
	case s.replaces != "":
		return fmt.Sprintf("machine %s, adopted in place of %s, which is no known node's home (%s)", id, s.replaces, how)
	}
	return fmt.Sprintf("machine %s, %s but no node's home", id, how)
}

func orUnnamed(path, name string) string {
	if path == "" {
		return name
	}
	return path
}

func knownList(ms ...any) string {
	seen := map[string]bool{}
	for _, x := range ms {
		switch v := x.(type) {
		case *Machines:
			if v != nil {
				for _, m := range v.Machine {
					seen[m.ID] = true
				}
			}
		case string:
			if v != "" {
				seen[v] = true
			}
		}
	}
	var l []string
	for id := range seen {
		l = append(l, id)
	}
	sort.Strings(l)
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, "; ")
}

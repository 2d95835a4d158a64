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
	Here         hwid.Identity
	HereErr      error
	Machines     *Machines
	Adopted      *Machines
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
		d.Reason = fmt.Sprintf("the %s disk set on its home machine", st.Role)
		return d
	}
	m, known := in.Machines.Find(in.Here.ID)
	how := "one of this cluster's machines"
	if !known {
		if am, ok := in.Adopted.Find(in.Here.ID); ok {
			m, known, how = am, true, "adopted on this disk set"
			if am.Replaces == st.HomeHardware {
				d.Home = true
			}
		}
	}
	if !known {
		d := safe("this machine (%s) is not one of this cluster's machines (known: %s): run `sentry bootcheck adopt` to accept it",
			in.Here.ID, knownList(in.Machines, in.Adopted, st.HomeHardware))
		d.UnknownMachine = true
		return d
	}
	d.Machine = m
	d.Failover = st.Role == stamp.RolePrimary && !d.Home
	owner := m.HomeOf
	if owner == "" {
		owner = "another node"
	}
	if d.Home {
		d.Reason = fmt.Sprintf("the %s disk set on the machine adopted as its home (%s)", st.Role, how)
	} else {
		d.Reason = fmt.Sprintf("the %s disk set on the home machine of %s (%s)", st.Role, owner, how)
	}
	return d
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

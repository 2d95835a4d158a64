package bootcheck

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/stamp"
)

// Adoption, as `sentry bootcheck adopt` does it (docs/operations.md,
// "Adopting a machine"): the machine this disk set booted on takes the
// place of one machine the cluster knows, R (by default this disk set's
// home). The cluster keeps two places, the primary's home and the
// secondary's; the adopted machine stands in for R's place from then on,
// on this disk set:
//
//   - R is this disk set's home: the adopted machine is its home (a primary
//     there is no failover);
//   - R is the other node's home: the adopted machine is that node's home
//     (a primary there is a failover, as on R).
//
// A machine that is still in use is not replaced: when the other node was
// last heard from running on R, adopt refuses, says so, and names the
// machines it could replace instead (--replaces), unless Force says that
// word is out of date. R must be one of the machines this disk set knows,
// and both machine lists must be readable: adopt decides nothing on
// missing data.

// PeerSeen is what this node last heard from its peer: the machine the
// peer ran on, and when.
type PeerSeen struct {
	// Name is the peer's node name ("": the cluster state's peer).
	Name     string
	Hardware string
	When     time.Time
}

// AdoptInput is what an adoption is decided from.
type AdoptInput struct {
	// StateDir is the disk set's state folder: the stamp, the cluster
	// state, the adopted machines (AdoptedName) and the last boot.
	StateDir string
	// MachinesFile is the cluster's machine profiles ("": MachinesFile);
	// give bootcheck.Run the same.
	MachinesFile string
	// Here is this machine.
	Here hwid.Identity
	// Replaces is the machine this one takes the place of ("": this disk
	// set's home).
	Replaces string
	// Peer is the peer's last word (nil: never heard from).
	Peer *PeerSeen
	// Force adopts even when Peer says the peer runs on the machine to be
	// replaced (the operator knows it has been moved since).
	Force bool
	// Now is the adoption's time (zero: now).
	Now time.Time
}

// Adoption is what Adopt recorded.
type Adoption struct {
	// Machine is the record written to File.
	Machine Machine `json:"machine"`
	File    string  `json:"file"`
	// Replaces is the machine it takes the place of; Home says that is
	// this disk set's home (so it is its home now); HomeOf is the node
	// whose home it stands in for.
	Replaces string `json:"replaces"`
	Home     bool   `json:"home"`
	HomeOf   string `json:"home_of,omitempty"`
	// Text says it in one line, for the event and the command's output.
	Text string `json:"text"`
	// Warning is set when Force overrode the peer's word.
	Warning string `json:"warning,omitempty"`
}

// ErrMachineInUse is what Adopt's refusal of a machine in use matches
// (errors.Is).
var ErrMachineInUse = errors.New("the machine to be replaced is in use")

type inUseError struct{ msg string }

func (e *inUseError) Error() string        { return e.msg }
func (e *inUseError) Is(target error) bool { return target == ErrMachineInUse }

// Adopt records machine in.Here on this disk set as taking the place of
// in.Replaces, after the checks above. It writes only the adopted list
// (StateDir/AdoptedName); deciding again is bootcheck.Run's. Every error
// names the file or the machine at fault, and leaves everything as it was.
func Adopt(in AdoptInput) (*Adoption, error) {
	st, err := stamp.ReadStamp(filepath.Join(in.StateDir, stamp.StampFile))
	if err != nil {
		return nil, fmt.Errorf("cannot adopt: %w", err)
	}
	node, peerName := "", ""
	if cl, err := stamp.ReadCluster(filepath.Join(in.StateDir, stamp.ClusterFile)); err == nil {
		node, peerName = cl.NodeName, cl.PeerName
	} else if !errors.Is(err, stamp.ErrMissing) {
		return nil, fmt.Errorf("cannot adopt: %w", err)
	}
	if in.Peer != nil && in.Peer.Name != "" {
		peerName = in.Peer.Name
	}
	if peerName == "" {
		peerName = "the other node"
	}
	here := in.Here.ID
	if here == "" {
		return nil, errors.New("cannot adopt: this machine has no hardware identity")
	}
	path := filepath.Join(in.StateDir, AdoptedName)
	adopted, err := ReadMachines(path)
	if err != nil && !errors.Is(err, ErrNoProfiles) {
		// Writing it back would lose what could not be read.
		return nil, fmt.Errorf("cannot adopt: the machines adopted on this disk set could not be read: %v (nothing was changed)", err)
	}
	mf := in.MachinesFile
	if mf == "" {
		mf = MachinesFile
	}
	machines, err := ReadMachines(mf)
	if err != nil && !errors.Is(err, ErrNoProfiles) {
		return nil, fmt.Errorf("cannot adopt: this cluster's machine profiles could not be read: %v: which machine this one replaces cannot be checked (nothing was changed; restore the file, the other disk set holds a copy)", err)
	}
	r := in.Replaces
	if r == "" {
		r = st.HomeHardware
	}
	if here == st.HomeHardware {
		return nil, fmt.Errorf("cannot adopt %s: it is already the home of disk set %s", here, st.DiskSet)
	}
	if r == here {
		return nil, fmt.Errorf("cannot adopt %s in place of itself", here)
	}
	_, inMachines := machines.Find(r)
	_, inAdopted := adopted.Find(r)
	if r != st.HomeHardware && !inMachines && !inAdopted {
		return nil, fmt.Errorf("cannot adopt %s in place of %s: that is not one of this cluster's machines (known: %s)",
			here, r, knownList(machines, adopted, st.HomeHardware))
	}
	var warning string
	if p := in.Peer; p != nil && p.Hardware == r {
		when := "when this node last heard from it"
		if !p.When.IsZero() {
			when += " (" + p.When.UTC().Format(time.RFC3339) + ")"
		}
		if !in.Force {
			return nil, &inUseError{fmt.Sprintf("cannot adopt %s in place of %s: %s was running on %s %s, so that machine is in use, not replaced; %s; if %s has left %s since, adopt with --force",
				here, r, peerName, r, when, instead(here, r, p.Hardware, st, machines, adopted, in.StateDir), peerName, r)}
		}
		warning = fmt.Sprintf("adopted in place of %s although %s was running on it %s (--force)", r, peerName, when)
	}

	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	mc := Machine{ID: here, Source: in.Here.Source, NICs: in.Here.NICs, Seen: now, Adopted: now, Replaces: r}
	// The node whose home it stands in for, as the cluster says now.
	probe := &Machines{Machine: append([]Machine{mc}, adopted.Machine...)}
	si, _ := standsFor(here, st.HomeHardware, node, machines, probe)
	if si.home && node != "" {
		si.owner = node
	}
	mc.HomeOf = si.owner
	if old, ok := adopted.Find(here); ok {
		*old = mc
	} else {
		adopted.Put(mc)
	}
	if err := WriteMachines(path, adopted); err != nil {
		return nil, fmt.Errorf("cannot adopt: write %s: %w", path, err)
	}
	a := &Adoption{Machine: mc, File: path, Replaces: r, Home: si.home, HomeOf: si.owner, Warning: warning}
	switch {
	case si.home:
		a.Text = fmt.Sprintf("machine %s adopted as the home of disk set %s, in place of %s: the %s disk set runs there as at home",
			here, st.DiskSet, r, st.Role)
	case si.owner != "":
		a.Text = fmt.Sprintf("machine %s adopted on disk set %s in place of %s, the home of %s: the %s disk set runs there as on %s (its home stays %s)",
			here, st.DiskSet, r, si.owner, st.Role, r, st.HomeHardware)
	default:
		a.Text = fmt.Sprintf("machine %s adopted on disk set %s in place of %s: the %s disk set runs there as on %s (its home stays %s)",
			here, st.DiskSet, r, st.Role, r, st.HomeHardware)
	}
	if st.Role == stamp.RolePrimary && !si.home {
		a.Text += ", a failover"
	}
	return a, nil
}

// instead names the machines an adoption could replace instead of inUse:
// the known ones other than here and the one the peer runs on, each with
// the node whose home it is, and the one these disks last booted on.
func instead(here, inUse, peerHW string, st *stamp.Stamp, machines, adopted *Machines, stateDir string) string {
	last := ""
	if res, err := readResult(filepath.Join(stateDir, LastName)); err == nil {
		last = res.Hardware
	}
	ids := map[string]bool{st.HomeHardware: true}
	for _, l := range []*Machines{machines, adopted} {
		if l != nil {
			for _, m := range l.Machine {
				ids[m.ID] = true
			}
		}
	}
	var out []string
	for id := range ids {
		if id == here || id == inUse || id == peerHW {
			continue
		}
		var notes []string
		si, known := standsFor(id, st.HomeHardware, "", machines, adopted)
		switch {
		case id == st.HomeHardware:
			notes = append(notes, "the home of these disks")
		case known && si.owner != "":
			notes = append(notes, "the home of "+si.owner)
		}
		if id == last {
			notes = append(notes, "these disks last ran there")
		}
		s := "--replaces " + id
		if len(notes) > 0 {
			s += " (" + strings.Join(notes, "; ") + ")"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return fmt.Sprintf("this cluster knows no other machine this one could take the place of (known: %s)",
			knownList(machines, adopted, st.HomeHardware))
	}
	sort.Strings(out)
	return "name the machine this one takes the place of: " + strings.Join(out, ", or ")
}

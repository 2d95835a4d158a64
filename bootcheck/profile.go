package bootcheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/safetoml"
)

// MachinesFile holds the hardware profiles of the cluster's machines. It is
// under /etc/sentry/cluster, which the configuration sync tracks: the
// primary writes it and every disk set carries it, so each knows both
// machines. AdoptedFile (in the state folder, never synced) lists machines
// an operator accepted on this disk set with `sentry bootcheck adopt`.
const (
	MachinesFile = "/etc/sentry/cluster/machines.toml"
	AdoptedName  = "adopted-machines.toml"
)

// MachinesSchema is the version of machines.toml this binary writes.
const MachinesSchema = 1

// Machine is one machine's hardware profile.
type Machine struct {
	ID     string     `toml:"id" json:"id"`
	Source string     `toml:"source" json:"source"`
	NICs   []hwid.NIC `toml:"nics" json:"nics"`
	// HomeOf is the node whose disk set was installed on this machine.
	HomeOf string    `toml:"home_of,omitempty" json:"home_of,omitempty"`
	Seen   time.Time `toml:"seen" json:"seen"`
	// Adopted and Replaces are set on machines accepted by adopt.
	Adopted  time.Time `toml:"adopted,omitempty" json:"adopted,omitzero"`
	Replaces string    `toml:"replaces,omitempty" json:"replaces,omitempty"`
}

// Machines is machines.toml.
type Machines struct {
	SchemaVersion int `toml:"schema_version" json:"schema_version"`
	// PrimaryAddresses are the primary's service addresses (CIDR): a
	// promoted secondary takes them.
	PrimaryAddresses []string  `toml:"primary_addresses" json:"primary_addresses"`
	Machine          []Machine `toml:"machine" json:"machines"`
}

// Find returns the profile of machine id.
func (m *Machines) Find(id string) (*Machine, bool) {
	if m == nil {
		return nil, false
	}
	for i := range m.Machine {
		if m.Machine[i].ID == id {
			return &m.Machine[i], true
		}
	}
	return nil, false
}

// Put adds or replaces a profile; it reports whether anything changed
// (the Seen and Adopted times alone are not a change).
func (m *Machines) Put(p Machine) bool {
	if old, ok := m.Find(p.ID); ok {
		same := old.Source == p.Source && old.HomeOf == p.HomeOf && old.Replaces == p.Replaces && slices.Equal(old.NICs, p.NICs)
		if same {
			return false
		}
		*old = p
		return true
	}
	m.Machine = append(m.Machine, p)
	slices.SortFunc(m.Machine, func(a, b Machine) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return true
}

// ErrNoProfiles is returned when machines.toml does not exist.
var ErrNoProfiles = errors.New("no machine profiles")

// ReadMachines reads machines.toml (or the adopted list, same format).
func ReadMachines(path string) (*Machines, error) {
	// machines.toml comes from the peer (the sync carries it) and is read
	// at boot: bounded before parsing (internal/safetoml).
	b, err := safetoml.ReadFile(path, safetoml.Peer())
	if errors.Is(err, os.ErrNotExist) {
		return &Machines{}, fmt.Errorf("%s: %w", path, ErrNoProfiles)
	}
	if err != nil {
		return nil, err
	}
	var m Machines
	md, err := safetoml.Decode(path, b, &m, safetoml.Peer())
	if err != nil {
		if errors.Is(err, safetoml.ErrLimit) {
			return nil, err
		}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", path, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.SchemaVersion > MachinesSchema {
		// A newer writer: use what this version knows, say so.
		return &m, fmt.Errorf("%s: schema_version %d is newer than this binary's %d (read what it knows)", path, m.SchemaVersion, MachinesSchema)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown key %q", path, und[0].String())
	}
	for i, mc := range m.Machine {
		if mc.ID == "" {
			return nil, fmt.Errorf("%s: machine %d: key \"id\" is empty", path, i+1)
		}
	}
	return &m, nil
}

// WriteMachines writes machines.toml atomically.
func WriteMachines(path string, m *Machines) error {
	m.SchemaVersion = MachinesSchema
	var b bytes.Buffer
	b.WriteString("# Hardware profiles of this cluster's machines. Written by the primary's\n# sentry agent; do not edit (use `sentry bootcheck adopt`).\n")
	if err := toml.NewEncoder(&b).Encode(m); err != nil {
		return err
	}
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "."
}

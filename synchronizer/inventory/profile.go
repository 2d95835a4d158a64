package inventory

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/internal/tomlpos"
)

// ProfileSchema is the version of the hardware profile files this binary
// writes and the newest it reads.
const ProfileSchema = 1

// profileEnd is the last line of every profile: a file without it was cut
// short (a TOML file cut at a line boundary still parses).
const profileEnd = "# end of profile"

// Profile is the hardware of one machine as a disk set needs to know it to
// judge whether it boots there (Compat): the PCI devices with their ids,
// modalias and bound driver, the physical NICs, the storage controllers,
// CPU and memory. The primary's agent writes one file per machine into the
// configuration repository (docs/parity.md), so every disk set knows both
// machines even when the other node is down. It is data only: no secret,
// nothing executable.
type Profile struct {
	SchemaVersion int    `toml:"schema_version" json:"schema_version"`
	MachineID     string `toml:"machine_id" json:"machine_id"`
	// Node is the node whose disk set ran on the machine when the profile
	// was taken (its drivers are the ones bound).
	Node string `toml:"node" json:"node"`
	// Taken is when the inventory the profile comes from was taken. A
	// profile is rewritten only when the hardware changes, so this is when
	// the machine was first seen as it is.
	Taken    time.Time `toml:"taken" json:"taken"`
	Hardware Hardware  `toml:"hardware" json:"hardware"`
}

// NewProfile is the profile of the machine inv was taken on, whose id is
// machineID. Of the NICs only the physical ones are kept: bridges, veths and
// tunnels come and go, and a profile changes only when the hardware does.
func NewProfile(inv *Inventory, machineID string) Profile {
	p := Profile{SchemaVersion: ProfileSchema, MachineID: machineID, Node: inv.Node, Taken: inv.Taken.UTC(), Hardware: inv.Hardware}
	p.Hardware.PCI = append([]PCIDevice(nil), inv.Hardware.PCI...)
	p.Hardware.Storage = append([]string(nil), inv.Hardware.Storage...)
	p.Hardware.NICs = nil
	for _, n := range inv.Hardware.NICs {
		if n.Physical {
			p.Hardware.NICs = append(p.Hardware.NICs, n)
		}
	}
	return p
}

// ProfileName is the file name of a machine's profile: the machine id with
// every character other than a letter, digit, '.', '_' or '-' made a '-'
// ("dmi:uuid=4c4c..." is "dmi-uuid-4c4c....toml"); a long id (a list of
// MACs) is cut and given a hash of the whole id.
func ProfileName(machineID string) string {
	var b strings.Builder
	for _, r := range machineID {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.TrimLeft(b.String(), ".")
	if len(name) > 100 || name == "" {
		sum := sha256.Sum256([]byte(machineID))
		if len(name) > 80 {
			name = name[:80]
		}
		name += "-" + hex.EncodeToString(sum[:6])
	}
	return name + ".toml"
}

// encodeProfile is the file's content.
func encodeProfile(p Profile) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Hardware profile of one machine of this cluster, written by the primary's\n" +
		"# sentry agent from its inventories (docs/parity.md). Data only: do not edit.\n")
	if err := toml.NewEncoder(&b).Encode(p); err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString(profileEnd + "\n")
	return b.Bytes(), nil
}

// sameMachine says whether two profiles describe the same machine, as the
// same node saw it: everything but the time they were taken.
func sameMachine(a, b Profile) bool {
	a.Taken, b.Taken = time.Time{}, time.Time{}
	ea, err1 := encodeProfile(a)
	eb, err2 := encodeProfile(b)
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}

// WriteProfile writes p to dir/ProfileName(p.MachineID), atomically (temp
// file, fsync, rename), unless the file there already describes the same
// machine: then nothing is written and changed is false, so that a new
// inventory of unchanged hardware makes no configuration commit. A file
// that cannot be read is replaced.
func WriteProfile(dir string, p Profile) (path string, changed bool, err error) {
	if err := checkProfileID(p.MachineID); err != nil {
		return "", false, err
	}
	p.SchemaVersion = ProfileSchema
	p.Taken = p.Taken.UTC()
	path = filepath.Join(dir, ProfileName(p.MachineID))
	if old, err := ReadProfile(path); err == nil && sameMachine(*old, p) {
		return path, false, nil
	}
	data, err := encodeProfile(p)
	if err != nil {
		return path, false, fmt.Errorf("hardware profile %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return path, false, err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return path, false, err
	}
	return path, true, nil
}

func checkProfileID(id string) error {
	if id == "" {
		return errors.New("hardware profile: no machine id")
	}
	if len(id) > 1024 || strings.ContainsAny(id, "\x00\n\r") {
		return fmt.Errorf("hardware profile: machine id %.40q is not one", id)
	}
	return nil
}

var tomlLineErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// ReadProfile reads a profile written by WriteProfile. Every error names
// the file, and the line when there is one: TOML syntax and types, an
// unknown key, a missing field, a file cut short.
func ReadProfile(path string) (*Profile, error) {
	// Profiles are synced from the primary: bounded before parsing
	// (internal/safetoml).
	data, err := safetoml.ReadFile(path, safetoml.Peer())
	if err != nil {
		return nil, err
	}
	if err := safetoml.Check(path, data, safetoml.Peer()); err != nil {
		return nil, err
	}
	loc := tomlpos.New(data)
	at := func(key string) string {
		if line, _ := loc.Find(key); line > 0 {
			return fmt.Sprintf("%s:%d", path, line)
		}
		return path
	}
	var p Profile
	md, err := toml.Decode(string(data), &p)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", path, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		// A value of the wrong type: "toml: line 8 (last key "k"): ...".
		if m := tomlLineErr.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s:%s: key %q: %s", path, m[1], m[2], m[3])
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		return nil, fmt.Errorf("%s: unknown key %q", at(loc.Indexed(k)), k)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if lines[len(lines)-1] != profileEnd {
		return nil, fmt.Errorf("%s:%d: the file ends without the line %q (cut short?)", path, len(lines), profileEnd)
	}
	switch {
	case p.SchemaVersion < 1:
		return nil, fmt.Errorf("%s: schema_version missing or below 1", at("schema_version"))
	case p.SchemaVersion > ProfileSchema:
		return nil, fmt.Errorf("%s: schema_version %d is newer than this binary's %d", at("schema_version"), p.SchemaVersion, ProfileSchema)
	case p.MachineID == "":
		return nil, fmt.Errorf("%s: machine_id missing", at("machine_id"))
	case filepath.Base(path) != ProfileName(p.MachineID):
		return nil, fmt.Errorf("%s: machine_id %q belongs in %s, not in this file", at("machine_id"), p.MachineID, ProfileName(p.MachineID))
	case p.Node == "":
		return nil, fmt.Errorf("%s: node missing", at("node"))
	case p.Taken.IsZero():
		return nil, fmt.Errorf("%s: taken missing", at("taken"))
	}
	slots := map[string]bool{}
	for i, d := range p.Hardware.PCI {
		key := fmt.Sprintf("hardware.pci[%d]", i+1)
		if !pciSlot.MatchString(d.Slot) {
			return nil, fmt.Errorf("%s: PCI device %d: slot %q is not a PCI address", at(key+".slot"), i+1, d.Slot)
		}
		if d.Vendor == "" || d.Device == "" || d.Modalias == "" {
			return nil, fmt.Errorf("%s: PCI device %s: vendor, device or modalias missing", at(key), d.Slot)
		}
		slots[d.Slot] = true
	}
	for _, s := range p.Hardware.Storage {
		if !slots[s] {
			return nil, fmt.Errorf("%s: storage controller %s is none of the PCI devices", at("hardware.storage"), s)
		}
	}
	return &p, nil
}

// ReadProfiles reads every profile (*.toml) in dir, sorted by machine id. A
// missing dir has none; a file that cannot be read is an error in errs, and
// the others are still returned.
func ReadProfiles(dir string) (profiles []*Profile, errs []error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, []error{err}
	}
	for _, n := range names {
		p, err := ReadProfile(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		profiles = append(profiles, p)
	}
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].MachineID < profiles[j].MachineID })
	return profiles, errs
}

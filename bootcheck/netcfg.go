package bootcheck

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sentryha/sentry/internal/hwid"
)

// NetworkDir is where the installed systemd-networkd configuration lives;
// RunNetworkDir is where bootcheck writes the configuration for the machine
// it found. Files there are read by systemd-networkd too, and the names
// bootcheck uses ("05-sentry-...") sort before an installer's, so they win.
// Paths.NetworkDir and Paths.RunNetworkDir name others (fixture trees).
const (
	NetworkDir    = "/etc/systemd/network"
	RunNetworkDir = "/run/systemd/network"
)

// runPrefix starts every file bootcheck writes into RunNetworkDir.
const runPrefix = "05-sentry-"

// kv is one "Key=Value" line of a unit-style file.
type kv struct{ Key, Value string }

// section is one "[Name]" section with its lines in order.
type section struct {
	Name string
	Keys []kv
}

// NetworkFile is a parsed systemd .network file. Only what bootcheck needs
// is interpreted ([Match] MACAddress= and Name=, and Address=); every other
// line is carried over as it is.
type NetworkFile struct {
	Path     string
	Sections []section
}

// ParseNetworkFile reads a .network file. A line that is neither a comment,
// a section header nor Key=Value is an error naming the file and line.
func ParseNetworkFile(path string) (*NetworkFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseNetwork(path, b)
}

func parseNetwork(path string, b []byte) (*NetworkFile, error) {
	f := &NetworkFile{Path: path}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		switch {
		case t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";"):
		case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]"):
			f.Sections = append(f.Sections, section{Name: t[1 : len(t)-1]})
		default:
			k, v, ok := strings.Cut(t, "=")
			if !ok || len(f.Sections) == 0 {
				return nil, fmt.Errorf("%s:%d: not a Key=Value line in a section: %q", path, line, t)
			}
			s := &f.Sections[len(f.Sections)-1]
			s.Keys = append(s.Keys, kv{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return f, sc.Err()
}

// values lists the values of key in every section called name
// (space-separated lists are split).
func (f *NetworkFile) values(name, key string) []string {
	var res []string
	for _, s := range f.Sections {
		if s.Name != name {
			continue
		}
		for _, l := range s.Keys {
			if l.Key == key {
				res = append(res, strings.Fields(l.Value)...)
			}
		}
	}
	return res
}

// MatchMACs are the MAC addresses the file's [Match] section names.
func (f *NetworkFile) MatchMACs() []string {
	var res []string
	for _, m := range f.values("Match", "MACAddress") {
		res = append(res, strings.ToLower(m))
	}
	return res
}

// MatchNames are the interface names (or globs) the [Match] section names.
func (f *NetworkFile) MatchNames() []string { return f.values("Match", "Name") }

// Addresses are the static addresses the file gives ([Network] Address=
// and [Address] Address=).
func (f *NetworkFile) Addresses() []string {
	return append(f.values("Network", "Address"), f.values("Address", "Address")...)
}

// matches says which NIC of nics the file applies to (-1 for none).
func (f *NetworkFile) matches(nics []hwid.NIC) int {
	macs, names := f.MatchMACs(), f.MatchNames()
	for i, n := range nics {
		if slices.Contains(macs, n.MAC) {
			return i
		}
		if len(macs) == 0 {
			for _, g := range names {
				if ok, _ := filepath.Match(g, n.Name); ok {
					return i
				}
			}
		}
	}
	return -1
}

// render writes the file with its [Match] section replaced by match and
// extra addresses added to [Network].
func (f *NetworkFile) render(header string, match []kv, extra []string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	fmt.Fprintf(&b, "[Match]\n")
	for _, l := range match {
		fmt.Fprintf(&b, "%s=%s\n", l.Key, l.Value)
	}
	have := f.Addresses()
	wroteExtra := false
	for _, s := range f.Sections {
		if s.Name == "Match" {
			continue
		}
		fmt.Fprintf(&b, "\n[%s]\n", s.Name)
		for _, l := range s.Keys {
			fmt.Fprintf(&b, "%s=%s\n", l.Key, l.Value)
		}
		if s.Name == "Network" && !wroteExtra {
			wroteExtra = true
			for _, a := range extra {
				if !slices.Contains(have, a) {
					fmt.Fprintf(&b, "Address=%s\n", a)
				}
			}
		}
	}
	if !wroteExtra && len(extra) > 0 {
		b.WriteString("\n[Network]\n")
		for _, a := range extra {
			if !slices.Contains(have, a) {
				fmt.Fprintf(&b, "Address=%s\n", a)
			}
		}
	}
	return b.Bytes()
}

// RoleNetworks reads the installed .network files that configure the NICs
// of the disk set's home machine (matched by MAC, or by name when the file
// names no MAC). They carry the role's addresses.
func RoleNetworks(dir string, home []hwid.NIC) ([]*NetworkFile, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.network"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var res []*NetworkFile
	for _, n := range names {
		f, err := ParseNetworkFile(n)
		if err != nil {
			return nil, err
		}
		if f.matches(home) >= 0 {
			res = append(res, f)
		}
	}
	return res, nil
}

// Plan is the network configuration bootcheck writes for this boot.
type Plan struct {
	// Files maps a file name in RunNetworkDir to its content.
	Files map[string][]byte `json:"-"`
	// Moves describes, per file, which NIC of the home machine maps to which
	// NIC of this one.
	Moves []string `json:"moves,omitempty"`
	// Addresses are the addresses this boot brings up, per NIC of this machine.
	Addresses map[string][]string `json:"addresses,omitempty"`
}

// AdaptNetwork maps the role's network files from the home machine's NICs
// to this machine's (the n-th NIC by MAC order to the n-th), adding extra
// addresses (the primary's service addresses after a promotion) to the
// first. The result matches this machine's NICs by MAC, so the role's
// addresses come up on whatever names this machine gives its NICs.
func AdaptNetwork(files []*NetworkFile, home, here []hwid.NIC, extra []string) (*Plan, error) {
	p := &Plan{Files: map[string][]byte{}, Addresses: map[string][]string{}}
	if len(here) == 0 {
		return nil, fmt.Errorf("this machine has no NIC to put the role's addresses on")
	}
	for i, f := range files {
		hi := f.matches(home)
		if hi >= len(here) {
			return nil, fmt.Errorf("%s configures the home machine's NIC %d (%s), and this machine has only %d NIC(s)",
				f.Path, hi+1, home[hi].Name, len(here))
		}
		nic := here[hi]
		var ex []string
		if i == 0 {
			ex = extra
		}
		hdr := fmt.Sprintf("# Written by sentry bootcheck for this boot, from %s:\n# the home machine's %s (%s) is this machine's %s (%s).\n",
			f.Path, home[hi].Name, home[hi].MAC, nic.Name, nic.MAC)
		name := fmt.Sprintf("%s%02d-%s", runPrefix, i, filepath.Base(f.Path))
		p.Files[name] = f.render(hdr, []kv{{"MACAddress", nic.MAC}}, ex)
		p.Moves = append(p.Moves, fmt.Sprintf("%s: %s (%s) -> %s (%s)", filepath.Base(f.Path), home[hi].Name, home[hi].MAC, nic.Name, nic.MAC))
		addrs := f.Addresses()
		for _, a := range ex {
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
		p.Addresses[nic.Name] = append(p.Addresses[nic.Name], addrs...)
	}
	if len(files) == 0 && len(extra) > 0 {
		f := &NetworkFile{Path: "(none)", Sections: []section{{Name: "Network", Keys: []kv{{"LinkLocalAddressing", "no"}}}}}
		p.Files[runPrefix+"00-promoted.network"] = f.render("# Written by sentry bootcheck: the primary's service addresses.\n",
			[]kv{{"MACAddress", here[0].MAC}}, extra)
		p.Addresses[here[0].Name] = extra
	}
	return p, nil
}

// SafeNetwork holds every NIC of this machine without an address: in safe
// mode the role's addresses must not come up (another node may hold them).
func SafeNetwork(here []hwid.NIC) *Plan {
	p := &Plan{Files: map[string][]byte{}}
	for i, n := range here {
		p.Files[fmt.Sprintf("%ssafe-%02d.network", runPrefix, i)] = []byte(fmt.Sprintf(
			"# Written by sentry bootcheck: safe mode, no role address on %s.\n[Match]\nMACAddress=%s\n\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
			n.Name, n.MAC))
	}
	return p
}

// WritePlan replaces bootcheck's files in dir with the plan's.
func WritePlan(dir string, p *Plan) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, runPrefix+"*"))
	for _, o := range old {
		if _, keep := p.Files[filepath.Base(o)]; !keep {
			if err := os.Remove(o); err != nil {
				return err
			}
		}
	}
	for name, content := range p.Files {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, content, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

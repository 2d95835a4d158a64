package bootcheck

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sentryha/sentry/internal/hwid"
)

// Coverage says whether the boot check's network adaptation covers the
// way a node configures its network, so that the role's addresses come up
// when its disks boot on the other machine.
type Coverage struct {
	// Method: "systemd-networkd", "ifupdown", "NetworkManager", or several
	// joined with "+"; "" when nothing configures a NIC.
	Method  string `json:"method"`
	Covered bool   `json:"covered"`
	Detail  string `json:"detail"`
}

// NetworkCoverage reads the network configuration under root (/ on a
// node): systemd-networkd's .network files (adapted by the boot check, by
// MAC), ifupdown's /etc/network/interfaces with its source lines
// (interfaces named there come up only where a NIC has that name: other
// lists the other machine's NICs), and NetworkManager's connections (not
// adapted).
func NetworkCoverage(root string, other []hwid.NIC) (Coverage, error) {
	var methods, problems, notes []string
	nd, err := filepath.Glob(filepath.Join(root, "etc/systemd/network/*.network"))
	if err != nil {
		return Coverage{}, err
	}
	if len(nd) > 0 {
		methods = append(methods, "systemd-networkd")
		notes = append(notes, fmt.Sprintf("%d .network file(s), adapted by MAC at boot", len(nd)))
	}
	ifaces, err := ifupdownInterfaces(filepath.Join(root, "etc/network/interfaces"), root, 0)
	if err != nil {
		return Coverage{}, err
	}
	if len(ifaces) > 0 {
		methods = append(methods, "ifupdown")
		names := map[string]bool{}
		for _, n := range other {
			names[n.Name] = true
		}
		var missing []string
		for _, i := range ifaces {
			if !names[i] {
				missing = append(missing, i)
			}
		}
		switch {
		case len(other) == 0:
			problems = append(problems, "ifupdown configures "+strings.Join(ifaces, ", ")+" by name, and the other machine's NICs are not known yet")
		case len(missing) > 0:
			problems = append(problems, fmt.Sprintf("ifupdown configures %s by name, and the other machine has no NIC of that name (it has %s): move the addresses to a systemd-networkd .network file matched by MAC, or give the NICs stable names with .link files",
				strings.Join(missing, ", "), nicNames(other)))
		default:
			notes = append(notes, "ifupdown's interfaces "+strings.Join(ifaces, ", ")+" exist on the other machine too")
		}
	}
	nm, _ := filepath.Glob(filepath.Join(root, "etc/NetworkManager/system-connections/*"))
	if len(nm) > 0 {
		methods = append(methods, "NetworkManager")
		problems = append(problems, fmt.Sprintf("NetworkManager has %d connection(s), which the boot check does not adapt", len(nm)))
	}
	c := Coverage{Method: strings.Join(methods, "+")}
	switch {
	case len(methods) == 0:
		c.Detail = "nothing configures a NIC (no .network file, no ifupdown interface, no NetworkManager connection)"
	case len(problems) > 0:
		c.Detail = strings.Join(problems, "; ")
	default:
		c.Covered = true
		c.Detail = strings.Join(notes, "; ")
	}
	return c, nil
}

// ifupdownInterfaces lists the interfaces (lo aside) that an ifupdown
// file configures, following its source and source-directory lines.
func ifupdownInterfaces(path, root string, depth int) ([]string, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%s: source lines nest too deep", path)
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []string
	add := func(l []string) {
		for _, n := range l {
			if n != "lo" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		switch fs[0] {
		case "iface":
			add(fs[1:2])
		case "auto", "allow-hotplug":
			add(fs[1:])
		case "source", "source-directory":
			pat := fs[1]
			if !filepath.IsAbs(pat) {
				pat = filepath.Join(filepath.Dir(path), pat)
			} else {
				pat = filepath.Join(root, pat)
			}
			var files []string
			if fs[0] == "source-directory" {
				ents, err := os.ReadDir(pat)
				if err != nil && !os.IsNotExist(err) {
					return nil, fmt.Errorf("%s:%d: %w", path, line, err)
				}
				for _, e := range ents {
					if !e.IsDir() && validPartName(e.Name()) {
						files = append(files, filepath.Join(pat, e.Name()))
					}
				}
			} else {
				files, _ = filepath.Glob(pat)
			}
			sort.Strings(files)
			for _, sf := range files {
				l, err := ifupdownInterfaces(sf, root, depth+1)
				if err != nil {
					return nil, err
				}
				add(l)
			}
		}
	}
	return out, sc.Err()
}

// validPartName is run-parts' rule for source-directory: letters,
// digits, underscores and hyphens only.
func validPartName(n string) bool {
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return n != ""
}

func nicNames(l []hwid.NIC) string {
	var out []string
	for _, n := range l {
		out = append(out, n.Name)
	}
	return strings.Join(out, ", ")
}

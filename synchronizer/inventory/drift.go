package inventory

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// DriftReport compares the primary's inventory with the secondary's.
type DriftReport struct {
	// State is in-step, drifted, or unknown when an inventory is missing
	// or older than the stale limit.
	State string `json:"state"`
	P     Side   `json:"p"`
	S     Side   `json:"s"`
	// InStep counts the installed packages that are the same on both.
	InStep int         `json:"packages_in_step"`
	Items  []DriftItem `json:"items"`
	// ModuleGaps are packages that a selected module needs and that
	// neither node has installed (see Modules). They are not drift between
	// the nodes, so they leave State as it is.
	ModuleGaps []string `json:"module_gaps,omitempty"`
}

// Side is one of the two inventories compared.
type Side struct {
	Node  string    `json:"node,omitempty"`
	Taken time.Time `json:"taken,omitzero"`
	// Age is how old the inventory was when compared, as "3h0m0s".
	Age string `json:"age,omitempty"`
	// State is "fresh", "stale" or "missing".
	State string `json:"state"`
}

// DriftItem is one difference, or one kernel fact that agrees.
type DriftItem struct {
	// Kind is only-on-p, only-on-s, version, arch, held, running-kernel,
	// boot-kernel, installed-kernel or apt-source.
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	P     string `json:"p"`
	S     string `json:"s"`
	State string `json:"state"`
	// Module is the selected module whose package this is, if any: the
	// service the difference touches.
	Module string `json:"module,omitempty"`
}

func side(inv *Inventory, now time.Time, staleAfter time.Duration) Side {
	if inv == nil {
		return Side{State: "missing"}
	}
	age := now.Sub(inv.Taken)
	s := Side{Node: inv.Node, Taken: inv.Taken, Age: age.Round(time.Second).String(), State: "fresh"}
	if staleAfter > 0 && age > staleAfter {
		s.State = "stale"
	}
	return s
}

// Drift compares p (the primary's inventory) with s (the secondary's) at
// now. An inventory that is missing makes the report unknown with no item;
// one older than staleAfter (0: never stale) makes every item unknown: what
// it says may no longer be so.
func Drift(p, s *Inventory, now time.Time, staleAfter time.Duration) DriftReport {
	r := DriftReport{P: side(p, now, staleAfter), S: side(s, now, staleAfter), Items: []DriftItem{}}
	if p == nil || s == nil {
		r.State = StateUnknown
		return r
	}
	add := func(kind, name, pv, sv string) {
		st := StateInStep
		if pv != sv {
			st = StateDrifted
		}
		r.Items = append(r.Items, DriftItem{Kind: kind, Name: name, P: pv, S: sv, State: st})
	}

	pp, sp := installedByName(p), installedByName(s)
	for _, name := range unionKeys(pp, sp) {
		a, b := pp[name], sp[name]
		switch {
		case len(b) == 0:
			for _, x := range a {
				add("only-on-p", x.Name, x.Version+" "+x.Arch, "")
			}
		case len(a) == 0:
			for _, x := range b {
				add("only-on-s", x.Name, "", x.Version+" "+x.Arch)
			}
		case len(a) == 1 && len(b) == 1:
			same := true
			if a[0].Arch != b[0].Arch {
				add("arch", name, a[0].Arch, b[0].Arch)
				same = false
			}
			if a[0].Version != b[0].Version {
				add("version", name, a[0].Version, b[0].Version)
				same = false
			}
			if a[0].Held() != b[0].Held() {
				add("held", name, a[0].Want(), b[0].Want())
				same = false
			}
			if same {
				r.InStep++
			}
		default: // multi-arch: compare arch by arch
			ak, bk := byKey(a), byKey(b)
			for _, key := range unionKeys(ak, bk) {
				x, y := ak[key], bk[key]
				switch {
				case y == nil:
					add("only-on-p", key, x.Version+" "+x.Arch, "")
				case x == nil:
					add("only-on-s", key, "", y.Version+" "+y.Arch)
				case x.Version != y.Version || x.Held() != y.Held():
					if x.Version != y.Version {
						add("version", key, x.Version, y.Version)
					}
					if x.Held() != y.Held() {
						add("held", key, x.Want(), y.Want())
					}
				default:
					r.InStep++
				}
			}
		}
	}

	add("running-kernel", "", p.RunningKernel, s.RunningKernel)
	add("boot-kernel", "", bootRelease(p), bootRelease(s))
	pk, sk := map[string]bool{}, map[string]bool{}
	for _, k := range p.Kernels {
		pk[k.Release] = true
	}
	for _, k := range s.Kernels {
		sk[k.Release] = true
	}
	for _, rel := range unionKeys(pk, sk) {
		add("installed-kernel", rel, present(pk[rel]), present(sk[rel]))
	}

	pa, sa := aptEntries(p), aptEntries(s)
	for _, e := range unionKeys(pa, sa) {
		if pa[e] != sa[e] {
			add("apt-source", e, present(pa[e]), present(sa[e]))
		}
	}

	r.State = StateInStep
	for _, it := range r.Items {
		if it.State == StateDrifted {
			r.State = StateDrifted
		}
	}
	if r.P.State != "fresh" || r.S.State != "fresh" {
		r.State = StateUnknown
		for i := range r.Items {
			r.Items[i].State = StateUnknown
		}
	}
	return r
}

func bootRelease(inv *Inventory) string {
	if k := inv.BootKernel(); k != nil {
		return k.Release
	}
	return ""
}

func present(b bool) string {
	if b {
		return "present"
	}
	return "absent"
}

func installedByName(inv *Inventory) map[string][]Package {
	m := make(map[string][]Package, len(inv.Packages))
	for _, p := range inv.Packages {
		if p.Installed() {
			m[p.Name] = append(m[p.Name], p)
		}
	}
	return m
}

func byKey(ps []Package) map[string]*Package {
	m := map[string]*Package{}
	for i := range ps {
		m[ps[i].Key()] = &ps[i]
	}
	return m
}

func aptEntries(inv *Inventory) map[string]bool {
	m := map[string]bool{}
	for _, s := range inv.Sources {
		for _, e := range s.Entries() {
			m[e] = true
		}
	}
	return m
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// Drifted are the items that are not in step.
func (r DriftReport) Drifted() []DriftItem {
	var out []DriftItem
	for _, it := range r.Items {
		if it.State != StateInStep {
			out = append(out, it)
		}
	}
	return out
}

// Text renders the report for a terminal: the state of each side, then the
// kernel facts, then the differences.
// Modules sets each package item's module (need: module name to its
// packages) and lists the packages a module needs that neither inventory
// has installed. Without both inventories it does nothing.
func (r *DriftReport) Modules(p, s *Inventory, need map[string][]string) {
	if p == nil || s == nil {
		return
	}
	owner := map[string]string{}
	var names []string
	for m := range need {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		for _, pkg := range need[m] {
			if _, ok := owner[pkg]; !ok {
				owner[pkg] = m
			}
		}
	}
	for i := range r.Items {
		switch r.Items[i].Kind {
		case "only-on-p", "only-on-s", "version", "arch", "held":
			r.Items[i].Module = owner[r.Items[i].Name]
		}
	}
	pp, sp := installedByName(p), installedByName(s)
	for _, m := range names {
		for _, pkg := range need[m] {
			if len(pp[pkg]) == 0 && len(sp[pkg]) == 0 {
				r.ModuleGaps = append(r.ModuleGaps, fmt.Sprintf("module %s needs package %s: installed on neither node", m, pkg))
			}
		}
	}
}

func (r DriftReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "package parity: %s\n", r.State)
	for _, x := range []struct {
		name string
		s    Side
	}{{"P", r.P}, {"S", r.S}} {
		if x.s.State == "missing" {
			fmt.Fprintf(&b, "  %s: no inventory\n", x.name)
			continue
		}
		fmt.Fprintf(&b, "  %s: %s, taken %s (%s ago, %s)\n", x.name, orUnknown(x.s.Node), x.s.Taken.Format(time.RFC3339), x.s.Age, x.s.State)
	}
	if r.P.State == "missing" || r.S.State == "missing" {
		return b.String()
	}
	fmt.Fprintf(&b, "  %d packages in step\n", r.InStep)
	for _, it := range r.Items {
		if it.State == StateInStep && !strings.HasSuffix(it.Kind, "-kernel") {
			continue
		}
		name := it.Name
		if name == "" {
			name = "-"
		}
		mod := ""
		if it.Module != "" {
			mod = "  (module " + it.Module + ")"
		}
		fmt.Fprintf(&b, "  %-8s %-16s %-32s P %-24s S %s%s\n", it.State, it.Kind, name, dash(it.P), dash(it.S), mod)
	}
	for _, g := range r.ModuleGaps {
		fmt.Fprintf(&b, "  warning: %s\n", g)
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

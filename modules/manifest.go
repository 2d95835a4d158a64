package modules

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/internal/tomlpos"
	"github.com/sentryha/sentry/verifier"
)

// Schema versions this binary reads. Every schema from 1 to CurrentSchema is
// read in full; a newer one is read with the keys of CurrentSchema, and each
// key it does not know is a Warning (docs/modules.md, "Compatibility").
const (
	OldestSchema  = 1
	CurrentSchema = 2
)

// Service kinds, in the order a Set lists its modules.
var ServiceKinds = []string{"web", "mail", "db", "file", "system"}

// Unit actions.
const (
	ActionReload  = "reload"
	ActionRestart = "restart"
)

// DefaultOrder is a unit's place in the reload order when the manifest
// gives none.
const DefaultOrder = 50

// Manifest is one module, whatever the schema it was written in: the
// decoded form the rest of the system uses.
type Manifest struct {
	Schema      int      `json:"schema"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Kind        string   `json:"kind"`
	Description string   `json:"description,omitempty"`
	Packages    []string `json:"packages"`
	// Tracked are the configuration paths that cross from P to S.
	Tracked []string `json:"tracked"`
	// NodeKeys are paths (or glob patterns) that stay per node.
	NodeKeys []string `json:"node_keys"`
	// Executables are programs under Tracked that may cross; each is a
	// file of one of Packages.
	Executables []string `json:"executables"`
	Units       []Unit   `json:"units"`
	Canary      Canary   `json:"canary"`
	Probes      []Probe  `json:"probes"`

	// Source is the file the manifest was read from ("builtin/NAME.toml"
	// for a built-in); Origin is builtin, modules.d or installed, "" for a
	// file parsed on its own.
	Source string `json:"source"`
	Origin string `json:"origin,omitempty"`

	raw  []byte
	loc  *tomlpos.Locator
	keys keyNames
}

// Unit is a systemd unit of a module and when it is reloaded.
type Unit struct {
	Name   string `json:"name"`
	Action string `json:"action"` // reload (reload-or-try-restart) or restart
	Order  int    `json:"order"`  // lower first, across all selected modules
	// Paths: a change under one of them reloads the unit.
	Paths  []string `json:"paths"`
	Module string   `json:"module,omitempty"` // set in a Set
}

// Canary is the data of a module's canaries: what the verifier's setup
// makes on each node and its probes use. Data only; nothing here is run.
type Canary struct {
	Page      string `json:"page,omitempty"`   // web page path
	Marker    string `json:"marker,omitempty"` // content the page holds
	Mailbox   string `json:"mailbox,omitempty"`
	DBUser    string `json:"db_user,omitempty"`
	DBName    string `json:"db_name,omitempty"`
	DBTable   string `json:"db_table,omitempty"`
	Share     string `json:"share,omitempty"`      // SMB share name
	SharePath string `json:"share_path,omitempty"` // the folder it serves
	SFTPUser  string `json:"sftp_user,omitempty"`
}

func (c Canary) empty() bool { return c == Canary{} }

// Probe is a probe of a compiled-in kind (verifier.KindNames) with its
// parameters. Values may hold placeholders (see ProbeEnv).
type Probe struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Timeout string `json:"timeout,omitempty"` // "" is the verifier's timeout
	// Params are the parameters as the manifest writes them, in text
	// form ("5433" for port = 5433), to show.
	Params map[string]string `json:"params"`
	// Typed are the parameters decoded into the kind's type and checked
	// when the manifest was read (placeholders not yet filled in).
	Typed verifier.Params `json:"-"`

	raw map[string]any // as decoded from TOML
}

// keyNames are how a schema spells the keys that errors name.
type keyNames struct {
	tracked    string // "tracked" (2), "paths" (1)
	probes     string // "probes" (2), "probe" (1)
	unitTables bool   // units are tables (2) or a list of names (1)
	flatParams bool   // probe parameters inline (1) or under params (2)
}

var (
	keysV1 = keyNames{tracked: "paths", probes: "probe", flatParams: true}
	keysV2 = keyNames{tracked: "tracked", probes: "probes", unitTables: true}
)

func (k keyNames) unit(i int, field string) string {
	if !k.unitTables {
		return "units"
	}
	return fmt.Sprintf("units[%d].%s", i+1, field)
}

func (k keyNames) probe(i int, field string) string {
	return fmt.Sprintf("%s[%d].%s", k.probes, i+1, field)
}

func (k keyNames) param(i int, name string) string {
	if k.flatParams {
		return k.probe(i, name)
	}
	return k.probe(i, "params."+name)
}

// The TOML shapes. Schema 2 is current.
type fileV2 struct {
	Schema      int       `toml:"schema"`
	Name        string    `toml:"name"`
	Version     string    `toml:"version"`
	Kind        string    `toml:"kind"`
	Description string    `toml:"description"`
	Packages    []string  `toml:"packages"`
	Tracked     []string  `toml:"tracked"`
	NodeKeys    []string  `toml:"node_keys"`
	Executables []string  `toml:"executables"`
	Units       []unitV2  `toml:"units"`
	Canary      canaryV2  `toml:"canary"`
	Probes      []probeV2 `toml:"probes"`
}

type unitV2 struct {
	Name   string   `toml:"name"`
	Action string   `toml:"action"`
	Order  *int     `toml:"order"`
	Paths  []string `toml:"paths"`
}

type canaryV2 struct {
	Page      string `toml:"page"`
	Marker    string `toml:"marker"`
	Mailbox   string `toml:"mailbox"`
	DBUser    string `toml:"db_user"`
	DBName    string `toml:"db_name"`
	DBTable   string `toml:"db_table"`
	Share     string `toml:"share"`
	SharePath string `toml:"share_path"`
	SFTPUser  string `toml:"sftp_user"`
}

type probeV2 struct {
	Name    string         `toml:"name"`
	Kind    string         `toml:"kind"`
	Timeout string         `toml:"timeout"`
	Params  map[string]any `toml:"params"`
}

var knownV2 = []string{
	"schema", "name", "version", "kind", "description", "packages", "tracked", "node_keys", "executables",
	"units", "units.name", "units.action", "units.order", "units.paths",
	"canary", "canary.page", "canary.marker", "canary.mailbox", "canary.db_user", "canary.db_name",
	"canary.db_table", "canary.share", "canary.share_path", "canary.sftp_user",
	"probes", "probes.name", "probes.kind", "probes.timeout", "probes.params",
}

// Schema 1: tracked paths are "paths", units a plain list reloaded in list
// order after the paths, probes a [[probe]] array with the parameters
// inline beside kind and name. No node keys, executables or canary.
type fileV1 struct {
	Schema      int              `toml:"schema"`
	Name        string           `toml:"name"`
	Version     string           `toml:"version"`
	Kind        string           `toml:"kind"`
	Description string           `toml:"description"`
	Packages    []string         `toml:"packages"`
	Paths       []string         `toml:"paths"`
	Units       []string         `toml:"units"`
	Probe       []map[string]any `toml:"probe"`
}

var knownV1 = []string{"schema", "name", "version", "kind", "description", "packages", "paths", "units", "probe"}

// Parse decodes a manifest and checks it on its own (not against the
// packages installed, see CheckExecutables, nor against other modules, see
// Load). file names the manifest in errors and warnings.
func Parse(file string, data []byte) (*Manifest, []Warning, error) {
	return parse(file, data, false)
}

// parse is Parse; with lenientKinds (Options.Follower) a probe of a kind
// this binary does not have is left out with a warning, and the rest of the
// module is used, so that a newer primary cannot make an older secondary
// drop all its modules. `sentry modules install` stays strict.
func parse(file string, data []byte, lenientKinds bool) (*Manifest, []Warning, error) {
	// Manifests come from the peer: bounded before parsing (internal/safetoml).
	if err := safetoml.Check(file, data, safetoml.Peer()); err != nil {
		return nil, nil, decodeError(file, data, nil, err)
	}
	loc := tomlpos.New(data)
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, nil, decodeError(file, data, loc, err)
	}
	sv, ok := raw["schema"]
	if !ok {
		return nil, nil, keyError(file, loc, "schema", "missing: write schema = %d (this binary reads schemas %d to %d)", CurrentSchema, OldestSchema, CurrentSchema)
	}
	n, ok := sv.(int64)
	if !ok || n < OldestSchema {
		return nil, nil, keyError(file, loc, "schema", "%v is not a schema version: write a whole number from %d up", sv, OldestSchema)
	}
	var (
		m     *Manifest
		warns []Warning
		err   error
	)
	if n == 1 {
		m, err = decodeV1(file, data, loc)
	} else {
		m, warns, err = decodeV2(file, data, loc, int(n))
	}
	if err != nil {
		return nil, nil, err
	}
	m.Source, m.raw, m.loc = file, data, loc
	if lenientKinds {
		warns = append(warns, m.dropUnknownKinds()...)
	}
	if err := m.validate(); err != nil {
		return nil, nil, err
	}
	return m, warns, nil
}

func decodeV2(file string, data []byte, loc *tomlpos.Locator, schema int) (*Manifest, []Warning, error) {
	var f fileV2
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, nil, decodeError(file, data, loc, err)
	}
	var warns []Warning
	for _, k := range undecoded(md, loc) {
		l, c := loc.Find(k)
		if schema == CurrentSchema {
			return nil, nil, &Error{File: file, Line: l, Col: c, Key: loc.Indexed(k), Message: "unknown key" + suggest(k, knownV2)}
		}
		warns = append(warns, Warning{File: file, Line: l, Col: c, Key: loc.Indexed(k),
			Message: fmt.Sprintf("unknown key of schema %d (this binary knows schemas %d to %d): ignored", schema, OldestSchema, CurrentSchema)})
	}
	m := &Manifest{
		Schema: schema, Name: f.Name, Version: f.Version, Kind: f.Kind, Description: f.Description,
		Packages: f.Packages, Tracked: f.Tracked, NodeKeys: f.NodeKeys, Executables: f.Executables,
		Canary: Canary(f.Canary), keys: keysV2,
	}
	for _, u := range f.Units {
		nu := Unit{Name: u.Name, Action: u.Action, Order: DefaultOrder, Paths: u.Paths}
		if u.Order != nil {
			nu.Order = *u.Order
		}
		if nu.Action == "" {
			nu.Action = ActionReload
		}
		if nu.Paths == nil {
			nu.Paths = append([]string{}, f.Tracked...)
		}
		m.Units = append(m.Units, nu)
	}
	for _, p := range f.Probes {
		m.Probes = append(m.Probes, Probe{Name: p.Name, Kind: p.Kind, Timeout: p.Timeout, Params: textForm(p.Params), raw: p.Params})
	}
	return m.normalize(), warns, nil
}

func decodeV1(file string, data []byte, loc *tomlpos.Locator) (*Manifest, error) {
	var f fileV1
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, decodeError(file, data, loc, err)
	}
	if und := undecoded(md, loc); len(und) > 0 {
		k := und[0]
		l, c := loc.Find(k)
		hint := suggest(k, knownV1)
		if hint == "" && contains(knownV2, k) {
			hint = " (it is a key of schema 2: write schema = 2)"
		}
		return nil, &Error{File: file, Line: l, Col: c, Key: loc.Indexed(k), Message: "unknown key in schema 1" + hint}
	}
	m := &Manifest{
		Schema: 1, Name: f.Name, Version: f.Version, Kind: f.Kind, Description: f.Description,
		Packages: f.Packages, Tracked: f.Paths, keys: keysV1,
	}
	for _, u := range f.Units {
		m.Units = append(m.Units, Unit{Name: u, Action: ActionReload, Order: DefaultOrder, Paths: append([]string{}, f.Paths...)})
	}
	for i, p := range f.Probe {
		pr := Probe{Params: map[string]string{}, raw: map[string]any{}}
		for _, k := range sortedKeys(p) {
			s, ok := p[k].(string)
			if !ok {
				return nil, keyError(file, loc, keysV1.probe(i, k), "must be a string (probe parameters are strings), not %T", p[k])
			}
			switch k {
			case "name":
				pr.Name = s
			case "kind":
				pr.Kind = s
			default:
				pr.Params[k], pr.raw[k] = s, s
			}
		}
		m.Probes = append(m.Probes, pr)
	}
	return m.normalize(), nil
}

// normalize gives every list and map a non-nil value, so the JSON form
// says [] and {} rather than null.
func (m *Manifest) normalize() *Manifest {
	for _, s := range []*[]string{&m.Packages, &m.Tracked, &m.NodeKeys, &m.Executables} {
		if *s == nil {
			*s = []string{}
		}
	}
	if m.Units == nil {
		m.Units = []Unit{}
	}
	for i := range m.Units {
		if m.Units[i].Paths == nil {
			m.Units[i].Paths = []string{}
		}
	}
	if m.Probes == nil {
		m.Probes = []Probe{}
	}
	for i := range m.Probes {
		if m.Probes[i].Params == nil {
			m.Probes[i].Params = map[string]string{}
		}
	}
	return m
}

var (
	nameRe    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	packageRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	unitRe    = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.(service|socket|target|timer|path|mount)$`)
	probeRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._/:@-]{0,63}$`)
)

func (m *Manifest) err(key, format string, args ...any) *Error {
	return keyError(m.Source, m.loc, key, format, args...)
}

// validate checks the manifest on its own.
func (m *Manifest) validate() error {
	k := m.keys
	switch {
	case m.Name == "":
		return m.err("name", "missing: every manifest names its module")
	case !nameRe.MatchString(m.Name):
		return m.err("name", "%q is not a valid module name: use lower-case letters, digits and '-', at most 63 characters", m.Name)
	case m.Version == "":
		return m.err("version", "missing: every manifest has a version, such as \"1.0.0\"")
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return m.err("version", "%v", err)
	}
	if !contains(ServiceKinds, m.Kind) {
		return m.err("kind", "%q is not one of %s", m.Kind, strings.Join(ServiceKinds, ", "))
	}
	for i, p := range m.Packages {
		if !packageRe.MatchString(p) {
			return m.err("packages", "entry %d: %q is not a Debian package name", i+1, p)
		}
	}
	for i, p := range m.Tracked {
		if msg := checkPath(p); msg != "" {
			return m.err(k.tracked, "entry %d: %s", i+1, msg)
		}
		for j, q := range m.Tracked[:i] {
			if overlaps(p, q) {
				return m.err(k.tracked, "entry %d: %q overlaps entry %d, %q", i+1, p, j+1, q)
			}
		}
	}
	for i, p := range m.NodeKeys {
		if msg := checkPath(p); msg != "" {
			return m.err("node_keys", "entry %d: %s", i+1, msg)
		}
		if _, err := path.Match(p, ""); err != nil {
			return m.err("node_keys", "entry %d: bad pattern %q: %v", i+1, p, err)
		}
	}
	for i, p := range m.Executables {
		if msg := checkPath(p); msg != "" {
			return m.err("executables", "entry %d: %s", i+1, msg)
		}
		if under(p, m.Tracked) == "" {
			return m.err("executables", "entry %d: %q is not under the module's tracked paths", i+1, p)
		}
	}
	seenUnit := map[string]bool{}
	for i, u := range m.Units {
		if !unitRe.MatchString(u.Name) {
			return m.err(k.unit(i, "name"), "%q is not a systemd unit name (such as \"nginx.service\")", u.Name)
		}
		if seenUnit[u.Name] {
			return m.err(k.unit(i, "name"), "unit %q is listed twice", u.Name)
		}
		seenUnit[u.Name] = true
		if u.Action != ActionReload && u.Action != ActionRestart {
			return m.err(k.unit(i, "action"), "%q is not one of reload, restart", u.Action)
		}
		if u.Order < 0 || u.Order > 999 {
			return m.err(k.unit(i, "order"), "%d is not from 0 to 999", u.Order)
		}
		for j, p := range u.Paths {
			if msg := checkPath(p); msg != "" {
				return m.err(k.unit(i, "paths"), "entry %d: %s", j+1, msg)
			}
			if !overlapsAny(p, m.Tracked) {
				return m.err(k.unit(i, "paths"), "entry %d: %q is neither under nor above a tracked path of the module", j+1, p)
			}
		}
	}
	if strings.ContainsAny(m.Canary.Marker, "<>&\"'\n\r") {
		return m.err("canary.marker", "%q: a marker holds no <, >, &, quotes or line breaks (the page holds it as it is, the http probe looks for it)", m.Canary.Marker)
	}
	for _, c := range []struct{ key, p string }{{"canary.page", m.Canary.Page}, {"canary.share_path", m.Canary.SharePath}} {
		if c.p == "" {
			continue
		}
		if msg := checkPath(c.p); msg != "" {
			return m.err(c.key, "%s", msg)
		}
	}
	seenProbe := map[string]bool{}
	for i, p := range m.Probes {
		if !probeRe.MatchString(p.Name) {
			return m.err(k.probe(i, "name"), "%q is not a probe name: 1 to 64 letters, digits, spaces and ._/:@-", p.Name)
		}
		if seenProbe[p.Name] {
			return m.err(k.probe(i, "name"), "probe %q is listed twice", p.Name)
		}
		seenProbe[p.Name] = true
		if !verifier.Known(p.Kind) {
			return m.err(k.probe(i, "kind"), "unknown probe kind %q: this binary knows %s", p.Kind, strings.Join(ProbeKinds(), ", "))
		}
		if p.Timeout != "" {
			if d, err := time.ParseDuration(p.Timeout); err != nil || d <= 0 {
				return m.err(k.probe(i, "timeout"), "invalid duration %q: write a number with a unit, such as \"20s\"", p.Timeout)
			}
		}
		typed, err := m.decodeParams(i)
		if err != nil {
			return err
		}
		for _, name := range sortedKeys(p.Params) {
			if err := checkPlaceholders(p.Params[name]); err != nil {
				return m.err(k.param(i, name), "%v", err)
			}
		}
		m.Probes[i].Typed = typed
	}
	return nil
}

// decodeParams decodes probe i's parameters into its kind's type: an
// unknown key, a value of the wrong type, a bad value or a missing
// parameter is an error at its key (at the probe, for a missing one).
func (m *Manifest) decodeParams(i int) (verifier.Params, error) {
	p := m.Probes[i]
	typed, err := verifier.DecodeParams(p.Kind, p.raw)
	var pe *verifier.ParamError
	if errors.As(err, &pe) {
		msg := pe.Message
		if msg == "missing" {
			msg = fmt.Sprintf("missing: the %s probe needs it", p.Kind)
		}
		return nil, m.err(m.keys.param(i, pe.Key), "%s", msg)
	}
	if err != nil {
		return nil, m.err(m.keys.probe(i, "kind"), "%v", err)
	}
	return typed, nil
}

// textForm is the text of each decoded parameter value.
func textForm(raw map[string]any) map[string]string {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch x := v.(type) {
		case string:
			out[k] = x
		case int64:
			out[k] = strconv.FormatInt(x, 10)
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

// dropUnknownKinds removes the probes of kinds this binary does not have,
// and those whose parameters it does not take (a key or a value a newer
// binary knows), each with a warning at its place in the manifest.
func (m *Manifest) dropUnknownKinds() []Warning {
	var warns []Warning
	kept := m.Probes[:0:0]
	for i, p := range m.Probes {
		key, msg := m.keys.probe(i, "kind"), ""
		if !verifier.Known(p.Kind) {
			msg = fmt.Sprintf("probe %q: kind %q is not known to this binary (it knows %s): not run on this node", p.Name, p.Kind, strings.Join(ProbeKinds(), ", "))
		} else if _, err := m.decodeParams(i); err != nil {
			msg = err.Error()
			var e *Error
			if errors.As(err, &e) {
				key, msg = e.Key, e.Message
			}
			msg = fmt.Sprintf("probe %q: %s: not run on this node", p.Name, msg)
		}
		if msg == "" {
			kept = append(kept, p)
			continue
		}
		l, c := m.loc.Find(key)
		warns = append(warns, Warning{File: m.Source, Line: l, Col: c, Key: key, Message: msg})
	}
	m.Probes = kept
	return warns
}

// ProbeKinds are the names of the compiled-in probe kinds, sorted.
func ProbeKinds() []string { return verifier.KindNames() }

// checkPath says what is wrong with a path a manifest names, or "".
func checkPath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q is not an absolute path", p)
	case path.Clean(p) != p || strings.Contains(p, "/../"):
		return fmt.Sprintf("%q is not a clean path (no '..', no trailing or double '/')", p)
	case p == "/":
		return "\"/\" would take the whole system; name folders or files under it"
	}
	return ""
}

// overlaps says whether one of a and b is the other or under it.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

func overlapsAny(p string, roots []string) bool {
	for _, r := range roots {
		if overlaps(p, r) {
			return true
		}
	}
	return false
}

// under returns the root that p is or is under, or "".
func under(p string, roots []string) string {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return r
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

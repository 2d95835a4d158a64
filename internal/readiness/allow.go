package readiness

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"

	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/internal/tomlpos"
)

// AllowFile is the name of the file of declared package exceptions, in the
// cluster's tracked folder (/etc/sentry/cluster/parity-allow.toml): synced
// from the primary to the secondary, so both nodes judge alike.
const AllowFile = "parity-allow.toml"

// Allowance is a difference between the two nodes' packages, kernels or
// firmware that the operator declared fine, with why:
//
//	[[allow]]
//	name = "firmware-realtek"   # a shell glob (path.Match) is allowed
//	kind = "package"            # optional: package, kernel, firmware, apt-source
//	reason = "only machine b has a Realtek NIC"
type Allowance struct {
	Name   string
	Kind   string // "" matches any kind
	Reason string
	Line   int // of its [[allow]] header
}

// allowKinds are the kinds an allowance may name. "kernel" matches every
// kernel difference (running-kernel, boot-kernel, installed-kernel), which
// may also be named alone; "firmware" matches a firmware difference and a
// Debian firmware package (firmware-*).
var allowKinds = []string{"package", "kernel", "running-kernel", "boot-kernel", "installed-kernel", "firmware", "apt-source"}

// Bounds of one allowance (the file itself is bounded before parsing:
// internal/safetoml's Peer limits, as it comes from the primary).
const (
	maxAllowName   = 512
	maxAllowReason = 512
)

var tomlLineErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// LoadAllowances reads the declared exceptions at path. A missing file is
// no allowances and no error. A bad file is an error naming the file, the
// line and the key ("/etc/sentry/cluster/parity-allow.toml:4:
// allow[1].reason: must not be empty"): TOML syntax or types, an unknown
// key, an empty name or reason, an unknown kind, a bad glob.
func LoadAllowances(file string) ([]Allowance, error) {
	data, err := safetoml.ReadFile(file, safetoml.Peer())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		var le *safetoml.Error
		if errors.As(err, &le) {
			return nil, err // names the file
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ParseAllowances(file, data)
}

// ParseAllowances parses data as a parity-allow.toml, naming file in
// errors.
func ParseAllowances(file string, data []byte) ([]Allowance, error) {
	if err := safetoml.Check(file, data, safetoml.Peer()); err != nil {
		return nil, err
	}
	loc := tomlpos.New(data)
	at := func(line int, key, msg string) error {
		if line > 0 {
			return fmt.Errorf("%s:%d: %s: %s", file, line, key, msg)
		}
		return fmt.Errorf("%s: %s: %s", file, key, msg)
	}
	var doc struct {
		Allow []struct {
			Name   *string `toml:"name"`
			Kind   string  `toml:"kind"`
			Reason *string `toml:"reason"`
		} `toml:"allow"`
	}
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line := pe.Position.Line
			if line == 0 {
				line, _ = tomlpos.LineCol(data, pe.Position.Start)
			}
			return nil, fmt.Errorf("%s:%d: %s", file, line, tomlpos.Clean(pe.Message, 200))
		}
		if m := tomlLineErr.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			l, _, key := loc.Near(m[2], line)
			if l == 0 {
				l = line
			}
			msg := tomlpos.Clean(m[3], 200)
			if strings.HasPrefix(m[3], "incompatible types") {
				msg = "must be a string"
				if key == "allow" {
					msg = "must be [[allow]] tables"
				}
			}
			return nil, at(l, key, msg)
		}
		return nil, fmt.Errorf("%s: %s", file, tomlpos.Clean(err.Error(), 200))
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := loc.Indexed(und[0].String())
		line, _ := loc.Find(k)
		return nil, at(line, tomlpos.Clean(k, 80), "unknown key (the keys are name, kind and reason)")
	}
	out := make([]Allowance, 0, len(doc.Allow))
	for i, a := range doc.Allow {
		table := fmt.Sprintf("allow[%d]", i+1)
		head, _ := loc.Find(table)
		keyErr := func(key, format string, args ...any) error {
			line, _ := loc.Find(table + "." + key)
			return at(line, table+"."+key, fmt.Sprintf(format, args...))
		}
		if a.Name == nil {
			return nil, at(head, table+".name", "missing: name the package, kernel or firmware")
		}
		if a.Reason == nil {
			return nil, at(head, table+".reason", "missing: say why the difference is fine")
		}
		name, reason, kind := strings.TrimSpace(*a.Name), strings.TrimSpace(*a.Reason), strings.TrimSpace(a.Kind)
		switch {
		case name == "":
			return nil, keyErr("name", "must not be empty")
		case len(name) > maxAllowName || !printable(name):
			return nil, keyErr("name", "%s: at most %d bytes, one line, printable", tomlpos.Quote(name), maxAllowName)
		}
		if _, err := path.Match(name, ""); err != nil {
			return nil, keyErr("name", "%s is not a valid glob: %v", tomlpos.Quote(name), err)
		}
		if kind != "" && !contains(allowKinds, kind) {
			return nil, keyErr("kind", "%s is not one of %s (or empty: any kind)", tomlpos.Quote(kind), strings.Join(allowKinds, ", "))
		}
		switch {
		case reason == "":
			return nil, keyErr("reason", "must not be empty")
		case len(reason) > maxAllowReason || !printable(reason):
			return nil, keyErr("reason", "%s: at most %d bytes, one line, printable", tomlpos.Quote(reason), maxAllowReason)
		}
		out = append(out, Allowance{Name: name, Kind: kind, Reason: reason, Line: head})
	}
	return out, nil
}

// Allow marks each difference that an allowance matches as Allowed, with
// that allowance's Reason: the first that matches wins. A difference
// already allowed keeps its reason.
func (pk *PackageFacts) Allow(as []Allowance) {
	if pk == nil {
		return
	}
	for i := range pk.Diffs {
		d := &pk.Diffs[i]
		if d.Allowed {
			continue
		}
		for _, a := range as {
			if a.Matches(*d) {
				d.Allowed, d.Reason = true, a.Reason
				break
			}
		}
	}
}

// Matches says whether the allowance covers the difference: its kind
// ("" any; "kernel" any kernel difference; "firmware" also a package
// named firmware-*) and its name, a glob matched against the difference's
// name, or for a multi-arch package ("libc6:i386") also its name without
// the architecture; a difference without a name (the running or boot
// kernel) is named by its kind ("running-kernel").
func (a Allowance) Matches(d PackageDiff) bool {
	name := d.Name
	if name == "" {
		name = d.Kind
	}
	if !a.kindMatches(d.Kind, name) {
		return false
	}
	if ok, _ := path.Match(a.Name, name); ok {
		return true
	}
	if base, _, found := strings.Cut(name, ":"); found && d.Kind == "package" {
		ok, _ := path.Match(a.Name, base)
		return ok
	}
	return false
}

func (a Allowance) kindMatches(kind, name string) bool {
	switch a.Kind {
	case "", kind:
		return true
	case "kernel":
		return strings.HasSuffix(kind, "kernel")
	case "firmware":
		return kind == "package" && strings.HasPrefix(name, "firmware-")
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// printable: one line, no control characters.
func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

package verifier

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/config"
)

// Params are a probe kind's typed parameters: a pointer to the kind's own
// struct (*HTTPParams, *TCPParams, ...), as DecodeParams, ParseParams and
// NewParams make it, with the kind's defaults filled in. The probe
// receives it checked (Check); Run refuses parameters of another kind's
// type.
//
// Each field's tag names its key and its checks, like blackbox_exporter's
// prober configs:
//
//	`param:"KEY[,required][,CHECK]..."`
//
// with the checks url (http or https, with a host), hostport (HOST:PORT),
// port (1 to 65535), status (100 to 599), percent (0 to 100), nonneg,
// positive, size (1 byte to 64 MiB), sha256 (64 hex digits, ':' allowed
// between them), abs (an absolute path), ident (an SQL name: letters,
// digits and _) and oneof=A|B. `param:"-"` is a field that no manifest
// and no --param sets (a test seam, such as the restic program).
//
// A string value holding "${" is a placeholder that the caller fills in on
// each node before the probe runs (modules: ${password} and the
// fingerprints); only a string field takes one, and its checks wait until
// it is filled in (Run checks again).
type Params interface{ probeParams() }

// ParamError is a bad, unknown or missing parameter.
type ParamError struct {
	Kind    string
	Key     string
	Message string // without the key: "missing", "70000 is not a port (1 to 65535)"
}

func (e *ParamError) Error() string {
	if strings.HasPrefix(e.Message, "missing") {
		return "parameter " + e.Key + " is " + e.Message
	}
	return "parameter " + e.Key + ": " + e.Message
}

// field is one parameter of a kind, from its struct tag.
type field struct {
	key      string
	index    int
	required bool
	checks   []string
}

// paramFields reads the tags of a params struct type.
func paramFields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("param")
		if tag == "" || tag == "-" {
			continue
		}
		parts := strings.Split(tag, ",")
		f := field{key: parts[0], index: i}
		for _, p := range parts[1:] {
			if p == "required" {
				f.required = true
			} else {
				f.checks = append(f.checks, p)
			}
		}
		switch sf.Type {
		case reflect.TypeFor[string](), reflect.TypeFor[int](), reflect.TypeFor[bool](), reflect.TypeFor[time.Duration]():
		default:
			panic(fmt.Sprintf("verifier: parameter %s of %s: type %s is not string, int, bool or time.Duration", f.key, t, sf.Type))
		}
		out = append(out, f)
	}
	return out
}

// ParamKeys are the keys a kind takes, sorted; nil for an unknown kind.
func ParamKeys(kind string) []string {
	k := kinds[kind]
	if k == nil {
		return nil
	}
	var out []string
	for _, f := range k.fields {
		out = append(out, f.key)
	}
	sort.Strings(out)
	return out
}

// NewParams returns kind's parameters with their defaults, nil for an
// unknown kind.
func NewParams(kind string) Params {
	if k := kinds[kind]; k != nil {
		return k.defaults()
	}
	return nil
}

// DecodeParams builds kind's parameters from a manifest's values over the
// kind's defaults: a string, an integer or a boolean as TOML decodes them
// (an integer, boolean or duration parameter also takes its text form, as
// "5432", "true" or "30s"). An unknown key, a value of the wrong type, a
// bad value or a missing required parameter is a *ParamError, the first by
// key order. Placeholders ("${...}") are left for the caller to fill in.
func DecodeParams(kind string, raw map[string]any) (Params, error) {
	k := kinds[kind]
	if k == nil {
		return nil, fmt.Errorf("unknown probe kind %q (known: %s)", kind, strings.Join(KindNames(), ", "))
	}
	p := k.defaults()
	v := reflect.ValueOf(p).Elem()
	keys := make([]string, 0, len(raw))
	for key := range raw {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		f, ok := k.field(key)
		if !ok {
			return nil, &ParamError{kind, key, fmt.Sprintf("unknown parameter of the %s probe%s: it takes %s",
				kind, config.Suggest(key, ParamKeys(kind)), strings.Join(ParamKeys(kind), ", "))}
		}
		if err := setField(v.Field(f.index), raw[key]); err != nil {
			return nil, &ParamError{kind, key, err.Error()}
		}
	}
	if err := k.check(p, false); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseParams builds kind's parameters from their text form (key to
// value), as DecodeParams does.
func ParseParams(kind string, kv map[string]string) (Params, error) {
	raw := make(map[string]any, len(kv))
	for k, v := range kv {
		raw[k] = v
	}
	return DecodeParams(kind, raw)
}

// ParseFlagParams builds kind's parameters from `--param KEY=VALUE`
// arguments (sentry verify --kind); an error names the flag and the key.
func ParseFlagParams(kind string, args []string) (Params, error) {
	kv := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want KEY=VALUE", a)
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("--param %s: given twice", k)
		}
		kv[k] = v
	}
	p, err := ParseParams(kind, kv)
	if pe, ok := err.(*ParamError); ok {
		if strings.HasPrefix(pe.Message, "missing") {
			return nil, fmt.Errorf("--param %s: %s; give --param %s=VALUE", pe.Key, pe.Message, pe.Key)
		}
		return nil, fmt.Errorf("--param %s: %s", pe.Key, pe.Message)
	}
	return p, err
}

// Check checks parameters made in Go (a Spec built by hand, or a manifest's
// after its placeholders were filled in): each field's checks, then the
// kind's own (Checker).
func Check(kind string, p Params) error {
	k := kinds[kind]
	if k == nil {
		return fmt.Errorf("unknown probe kind %q (known: %s)", kind, strings.Join(KindNames(), ", "))
	}
	if reflect.TypeOf(p) != k.typ {
		return fmt.Errorf("parameters of type %T are not those of the %s probe (%s)", p, kind, k.typ)
	}
	return k.check(p, true)
}

// Checker is a params struct that checks its fields together (one of two
// required, one that needs another), after each field's own checks.
type Checker interface{ Check() error }

// Placeholder says whether a value holds a placeholder to be filled in.
func Placeholder(s string) bool { return strings.Contains(s, "${") }

// ExpandParams returns a copy of p whose string parameters are passed
// through fill; a value fill refuses (ok false) goes back to the kind's
// default.
func ExpandParams(kind string, p Params, fill func(string) (string, bool)) Params {
	k := kinds[kind]
	if k == nil || p == nil || reflect.TypeOf(p) != k.typ {
		return p
	}
	out := reflect.New(k.typ.Elem())
	out.Elem().Set(reflect.ValueOf(p).Elem())
	def := reflect.ValueOf(k.defaults()).Elem()
	for _, f := range k.fields {
		fv := out.Elem().Field(f.index)
		if fv.Kind() != reflect.String {
			continue
		}
		if s, ok := fill(fv.String()); ok {
			fv.SetString(s)
		} else {
			fv.Set(def.Field(f.index))
		}
	}
	return out.Interface().(Params)
}

func (k *kindDef) field(key string) (field, bool) {
	for _, f := range k.fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// check runs the fields' checks and the kind's; filled says the
// placeholders were filled in (else a field holding one is not checked).
func (k *kindDef) check(p Params, filled bool) error {
	v := reflect.ValueOf(p).Elem()
	for _, f := range k.fields {
		fv := v.Field(f.index)
		if fv.Kind() == reflect.String && !filled && Placeholder(fv.String()) {
			continue
		}
		if f.required && fv.IsZero() {
			return &ParamError{k.name, f.key, "missing"}
		}
		for _, c := range f.checks {
			if msg := checkValue(c, fv); msg != "" {
				return &ParamError{k.name, f.key, msg}
			}
		}
	}
	if c, ok := p.(Checker); ok {
		if !filled && k.anyPlaceholder(v) {
			return nil
		}
		if err := c.Check(); err != nil {
			if pe, ok := err.(*ParamError); ok && pe.Kind == "" {
				pe.Kind = k.name
			}
			return err
		}
	}
	return nil
}

func (k *kindDef) anyPlaceholder(v reflect.Value) bool {
	for _, f := range k.fields {
		if fv := v.Field(f.index); fv.Kind() == reflect.String && Placeholder(fv.String()) {
			return true
		}
	}
	return false
}

// setField sets a parameter from a decoded value.
func setField(fv reflect.Value, val any) error {
	s, isString := val.(string)
	if isString && s == "" {
		return nil // "" is the default, as if not given
	}
	if isString && Placeholder(s) && fv.Kind() != reflect.String {
		return fmt.Errorf("%q: a placeholder fills only a text parameter", s)
	}
	switch fv.Interface().(type) {
	case string:
		if !isString {
			return fmt.Errorf("must be a string, not %s", tomlType(val))
		}
		fv.SetString(s)
	case time.Duration:
		if !isString {
			return fmt.Errorf("must be a duration as a string, such as \"30s\", not %s", tomlType(val))
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration: write a number with a unit, such as \"30s\"", s)
		}
		fv.SetInt(int64(d))
	case int:
		switch x := val.(type) {
		case int64:
			fv.SetInt(x)
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				return fmt.Errorf("%q is not a whole number", x)
			}
			fv.SetInt(int64(n))
		default:
			return fmt.Errorf("must be a whole number, not %s", tomlType(val))
		}
	case bool:
		switch x := val.(type) {
		case bool:
			fv.SetBool(x)
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil || (x != "true" && x != "false") {
				return fmt.Errorf("%q is not true or false", x)
			}
			fv.SetBool(b)
		default:
			return fmt.Errorf("must be true or false, not %s", tomlType(val))
		}
	}
	return nil
}

// tomlType names the type of a decoded TOML value.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date"
	}
	return fmt.Sprintf("%T", v)
}

// maxFileSize bounds what a file probe writes and holds in memory.
const maxFileSize = 64 << 20

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// checkValue says what is wrong with a field's value for a check, or "".
// An empty string (not given, no default) passes: required says whether
// it is needed. A number is checked whatever it is (every kind whose
// number must be positive has a default that is).
func checkValue(check string, fv reflect.Value) string {
	if fv.Kind() == reflect.String && fv.String() == "" {
		return ""
	}
	switch fv.Interface().(type) {
	case string:
		return checkString(check, fv.String())
	case time.Duration:
		if d := time.Duration(fv.Int()); check == "positive" && d <= 0 {
			return fmt.Sprintf("%s is not a positive duration", d)
		}
	case int:
		n := fv.Int()
		switch check {
		case "port":
			if n < 1 || n > 65535 {
				return fmt.Sprintf("%d is not a port (1 to 65535)", n)
			}
		case "status":
			if n < 100 || n > 599 {
				return fmt.Sprintf("%d is not an HTTP status (100 to 599)", n)
			}
		case "percent":
			if n < 0 || n > 100 {
				return fmt.Sprintf("%d is not a percentage (0 to 100)", n)
			}
		case "nonneg":
			if n < 0 {
				return fmt.Sprintf("%d is negative", n)
			}
		case "positive":
			if n <= 0 {
				return fmt.Sprintf("%d is not a positive number", n)
			}
		case "size":
			if n < 1 || n > maxFileSize {
				return fmt.Sprintf("%d is not a size from 1 to %d bytes", n, maxFileSize)
			}
		}
	}
	return ""
}

func checkString(check, s string) string {
	switch {
	case check == "url":
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Sprintf("%q is not an http or https URL with a host", s)
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Sprintf("%q: port %s is not from 1 to 65535", s, port)
			}
		}
	case check == "hostport":
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return fmt.Sprintf("%q is not HOST:PORT", s)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q: port %s is not from 1 to 65535", s, port)
		}
	case check == "sha256":
		h := strings.ReplaceAll(s, ":", "")
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return fmt.Sprintf("%q is not a SHA-256 fingerprint (64 hex digits, ':' between pairs allowed)", s)
		}
	case check == "ident":
		if !identRe.MatchString(s) {
			return fmt.Sprintf("%q is not a table name: letters, digits and _, at most 64, not starting with a digit", s)
		}
	case check == "abs":
		if !filepath.IsAbs(s) {
			return fmt.Sprintf("%q is not an absolute path", s)
		}
	case strings.HasPrefix(check, "oneof="):
		opts := strings.Split(strings.TrimPrefix(check, "oneof="), "|")
		for _, o := range opts {
			if s == o {
				return ""
			}
		}
		return fmt.Sprintf("%q is not one of %s", s, strings.Join(opts, ", "))
	}
	return ""
}

package main

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/config"
)

const packagedConfig = "../../packaging/sentry.toml"

// commentedKey is a key commented out at its default: "#key = value"
// (an explanatory comment has a space after the #).
var commentedKey = regexp.MustCompile(`(?m)^#([a-z_]+ = )`)

// uncomment is the packaged file with every commented-out key set.
func uncomment(data []byte) []byte {
	return commentedKey.ReplaceAll(data, []byte("$1"))
}

// tomlKeys lists the dotted keys of the leaves of a TOML document.
func tomlKeys(t *testing.T, data []byte) []string {
	t.Helper()
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			keys = append(keys, prefix+k)
		}
	}
	walk("", m)
	sort.Strings(keys)
	return keys
}

// configKeys lists the dotted keys of config.Config's leaves.
func configKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(config.Duration{}) {
			keys = append(keys, configKeys(f.Type, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}

// emptySlicesNil is c with its empty slices nil: `paths = []` decodes to
// an empty slice, the default is nil, and both mean the same.
func emptySlicesNil(c config.Config) config.Config {
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if v.Field(i).CanSet() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			if v.Len() == 0 && !v.IsNil() {
				v.Set(reflect.Zero(v.Type()))
			}
		}
	}
	walk(reflect.ValueOf(&c).Elem())
	return c
}

// The conffile as shipped configures what no file would: every key is
// commented out.
func TestPackagedConfigIsTheDefault(t *testing.T) {
	data, err := os.ReadFile(packagedConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(packagedConfig, data)
	if err != nil {
		t.Fatalf("the packaged configuration is invalid: %v", err)
	}
	want := config.Default()
	want.Path = packagedConfig
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("the packaged configuration is not the default:\n got %+v\nwant %+v", *cfg, want)
	}
	if keys := tomlKeys(t, data); len(keys) != 0 {
		t.Errorf("keys set in the packaged configuration (each should be commented out): %v", keys)
	}
}

// Each commented-out value is the key's default, and every key of the
// configuration is there (node.name, whose default is the host name, as
// an example only).
func TestPackagedConfigCommentsEveryKeyAtItsDefault(t *testing.T) {
	data, err := os.ReadFile(packagedConfig)
	if err != nil {
		t.Fatal(err)
	}
	set := uncomment(data)
	cfg, err := config.Parse(packagedConfig+" (uncommented)", set)
	if err != nil {
		t.Fatalf("with every key uncommented, the packaged configuration is invalid: %v", err)
	}
	want := config.Default()
	want.Path = packagedConfig + " (uncommented)"
	if !reflect.DeepEqual(emptySlicesNil(*cfg), emptySlicesNil(want)) {
		t.Errorf("with every key uncommented, the packaged configuration is not the default:\n got %+v\nwant %+v", *cfg, want)
	}
	have := map[string]bool{}
	for _, k := range tomlKeys(t, set) {
		have[k] = true
	}
	if !regexp.MustCompile(`(?m)^\[node\]\n(#.*\n)*# name = "`).Match(data) {
		t.Errorf("[node] has no example name (# name = \"...\")")
	}
	have["node.name"] = true
	for _, k := range configKeys(reflect.TypeOf(config.Config{}), "") {
		if !have[k] {
			t.Errorf("key %s is missing from packaging/sentry.toml", k)
		}
		delete(have, k)
	}
	for k := range have {
		t.Errorf("packaging/sentry.toml has %s, which config.Config does not", k)
	}

	// And each key docs/configuration.md documents.
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|").FindAllSubmatch(doc, -1) {
		k := string(m[1])
		if !strings.Contains(k, ".") {
			continue
		}
		sect, name, _ := strings.Cut(k, ".")
		if i := strings.LastIndex(k, "."); i >= 0 {
			sect, name = k[:i], k[i+1:]
		}
		if !regexp.MustCompile(`(?m)^\[` + regexp.QuoteMeta(sect) + `\]\n(#.*\n|\n)*?#\s?` + regexp.QuoteMeta(name) + ` = `).Match(data) {
			t.Errorf("docs/configuration.md documents %s; packaging/sentry.toml has no %q under [%s]", k, name, sect)
		}
	}
}

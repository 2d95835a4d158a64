package modules

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden")

// Every testdata/bad-*.toml must be listed here with its exact message, and
// every entry must exist. Each bad file is loaded as an operator's module,
// beside testdata/office.toml and the built-ins, with testdata/dpkg as the
// dpkg database.
var badFiles = map[string]string{
	"bad-syntax.toml":               `testdata/bad-syntax.toml:2:19: key "name": strings cannot contain newlines`,
	"bad-unknown-key.toml":          `testdata/bad-unknown-key.toml:5:1: key "packges": unknown key (did you mean "packages"?)`,
	"bad-unknown-table-key.toml":    `testdata/bad-unknown-table-key.toml:12:1: key "units[2].oder": unknown key (did you mean "units.order"?)`,
	"bad-missing-name.toml":         `testdata/bad-missing-name.toml: key "name": missing: every manifest names its module`,
	"bad-missing-version.toml":      `testdata/bad-missing-version.toml: key "version": missing: every manifest has a version, such as "1.0.0"`,
	"bad-missing-schema.toml":       `testdata/bad-missing-schema.toml: key "schema": missing: write schema = 2 (this binary reads schemas 1 to 2)`,
	"bad-version.toml":              `testdata/bad-version.toml:3:1: key "version": "1.0" is not a version: write MAJOR.MINOR.PATCH with numbers, such as "1.2.0"`,
	"bad-kind.toml":                 `testdata/bad-kind.toml:4:1: key "kind": "dns" is not one of web, mail, db, file, system`,
	"bad-probe-kind.toml":           `testdata/bad-probe-kind.toml:13:1: key "probes[2].kind": unknown probe kind "icmp": this binary knows backup, disk, http, mail, mysql, postgres, raid, sftp, smb, systemd, tcp`,
	"bad-schema1-probe-kind.toml":   `testdata/bad-schema1-probe-kind.toml:9:1: key "probe[1].kind": unknown probe kind "icmp": this binary knows backup, disk, http, mail, mysql, postgres, raid, sftp, smb, systemd, tcp`,
	"bad-relative-path.toml":        `testdata/bad-relative-path.toml:5:1: key "tracked": entry 2: "etc/office-app2" is not an absolute path`,
	"bad-dotdot-path.toml":          `testdata/bad-dotdot-path.toml:5:1: key "tracked": entry 1: "/etc/office-app/../shadow" is not a clean path (no '..', no trailing or double '/')`,
	"bad-executable.toml":           `testdata/bad-executable.toml:7:1: key "executables": entry 2: "/etc/office-app/hooks/backup" is not a file of the module's packages (office-app, office-tools, as listed in testdata/dpkg/var/lib/dpkg/info)`,
	"bad-executable-untracked.toml": `testdata/bad-executable-untracked.toml:7:1: key "executables": entry 1: "/usr/bin/office-app" is not under the module's tracked paths`,
	"bad-duplicate-path.toml":       `testdata/office.toml:7:1: key "tracked": tracked path "/etc/office" overlaps "/etc/office/extra", tracked by module office-extra (testdata/bad-duplicate-path.toml:5:1)`,
	"bad-duplicate-unit.toml":       `testdata/bad-duplicate-unit.toml:8:1: key "units[1].name": unit "nginx.service" is also claimed by module web-nginx (builtin/web-nginx.toml:11:1)`,
	"bad-duplicate-name.toml":       `testdata/office.toml:3:1: key "name": module "office-web" is also defined by testdata/bad-duplicate-name.toml:2:1; modules.d holds one file per module`,
	"bad-placeholder.toml":          `testdata/bad-placeholder.toml:12:1: key "probes[1].params.host": unknown placeholder ${secret}: known are ${password}, ${tls_fingerprint:PATH}, ${ssh_fingerprint:PATH}`,
	"bad-type.toml":                 `testdata/bad-type.toml:5:1: key "packages": incompatible types: TOML value has type string; destination has type slice`,
	"bad-schema1-unknown-key.toml":  `testdata/bad-schema1-unknown-key.toml:5:1: key "tracked": unknown key in schema 1 (it is a key of schema 2: write schema = 2)`,
	"bad-canary-marker.toml":        `testdata/bad-canary-marker.toml:8:1: key "canary.marker": "<b>ok</b>": a marker holds no <, >, &, quotes or line breaks (the page holds it as it is, the http probe looks for it)`,
	"bad-unit-path.toml":            `testdata/bad-unit-path.toml:9:1: key "units[1].paths": entry 1: "/etc/other" is neither under nor above a tracked path of the module`,
	// Probe parameters, decoded into the kind's type when the manifest is read.
	"bad-param-unknown.toml":          `testdata/bad-param-unknown.toml:9:1: key "probes[1].params.markr": unknown parameter of the http probe (did you mean "marker"?): it takes host, insecure, marker, status, url`,
	"bad-param-type.toml":             `testdata/bad-param-type.toml:13:1: key "probes[1].params.port": must be a whole number, not a boolean`,
	"bad-param-string-type.toml":      `testdata/bad-param-string-type.toml:9:1: key "probes[1].params.marker": must be a string, not an integer`,
	"bad-param-port.toml":             `testdata/bad-param-port.toml:13:1: key "probes[1].params.port": 70000 is not a port (1 to 65535)`,
	"bad-param-url.toml":              `testdata/bad-param-url.toml:9:1: key "probes[1].params.url": "127.0.0.1:8081/health" is not an http or https URL with a host`,
	"bad-param-address.toml":          `testdata/bad-param-address.toml:9:1: key "probes[1].params.address": "127.0.0.1" is not HOST:PORT`,
	"bad-param-duration.toml":         `testdata/bad-param-duration.toml:12:1: key "probes[1].params.max_age": -26h0m0s is not a positive duration`,
	"bad-param-missing.toml":          `testdata/bad-param-missing.toml:10:1: key "probes[1].params.to": missing: the mail probe needs it`,
	"bad-param-oneof.toml":            `testdata/bad-param-oneof.toml:9:1: key "probes[1].params.smtp_tls": "ssl" is not one of starttls, none`,
	"bad-param-placeholder-type.toml": `testdata/bad-param-placeholder-type.toml:9:1: key "probes[1].params.port": "${password}": a placeholder fills only a text parameter`,
	"bad-schema1-param.toml":          `testdata/bad-schema1-param.toml:10:1: key "probe[1].min_free_percent": "ten" is not a whole number`,
}

// testdataOptions puts files (from testdata) in a fresh modules.d.
func testdataOptions(t *testing.T, files ...string) Options {
	t.Helper()
	root := t.TempDir()
	opts := OptionsAt(root)
	opts.DpkgRoot = "testdata/dpkg"
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		copyFile(t, filepath.Join("testdata", f), filepath.Join(opts.Dir, f))
	}
	return opts
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.toml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := badFiles[name]
			if !ok {
				t.Fatalf("%s has no expected message in badFiles", name)
			}
			opts := testdataOptions(t, name, "office.toml")
			set, _, err := Load(opts)
			if err == nil {
				t.Fatalf("Load = %v, want an error", set.Modules())
			}
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid and config.ErrInvalid", err)
			}
			if got := strings.ReplaceAll(err.Error(), opts.Dir, "testdata"); got != want {
				t.Errorf("message\n got: %s\nwant: %s", got, want)
			}
		})
	}
	for name := range badFiles {
		if !seen[name] {
			t.Errorf("badFiles lists %s, which is not in testdata", name)
		}
	}
}

// The golden files pin the decoded form of each schema: run with -update
// after changing a manifest or the decoder, and read the diff.
func TestGolden(t *testing.T) {
	for _, schema := range []string{"schema1", "schema2", "schema3"} {
		t.Run(schema, func(t *testing.T) {
			src := filepath.Join("testdata", "golden", schema+".toml")
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			m, warns, err := Parse(src, data)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.CheckExecutables("testdata/dpkg"); err != nil {
				t.Fatal(err)
			}
			if warns == nil {
				warns = []Warning{}
			}
			got, err := json.MarshalIndent(struct {
				Manifest *Manifest `json:"manifest"`
				Warnings []Warning `json:"warnings"`
			}{m, warns}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", schema+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s decodes differently from %s:\n%s", src, golden, got)
			}
		})
	}
}

package modules

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/tomlpos"
	"github.com/sentryha/sentry/verifier"
)

func TestPlaceholders(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
	env := ProbeEnv{Password: "s3cret", Timeout: 5 * time.Second, Root: root}
	spec := env.Spec(Probe{Name: "p", Kind: "mail", Timeout: "2s", Params: map[string]string{
		"password":        "${password}",
		"from":            "user:${password}@host",
		"tls_fingerprint": "${tls_fingerprint:/etc/cert.pem}",
		"imap":            "${tls_fingerprint:/etc/none.pem}",
		"user":            "${ssh_fingerprint:/etc/none.pub|unknown}",
		"to":              "x",
	}})
	want := &verifier.MailParams{
		Password: "s3cret",
		From:     "user:s3cret@host",
		// sha256 of the bytes 00 00 00 (base64 "AAAA")
		TLSFingerprint: "709e80c88487a2411e1ee4dfb9f22a861492d20c4765150c0c794abd70f8147c",
		IMAP:           "127.0.0.1:143", // not filled in: the default
		User:           "unknown",
		To:             "x",
		SMTP:           "127.0.0.1:25", SMTPTLS: "starttls", VisibleWithin: 30 * time.Second,
	}
	if !reflect.DeepEqual(spec.Params, want) {
		t.Errorf("params = %+v\nwant %+v", spec.Params, want)
	}
	if spec.Timeout != 2*time.Second {
		t.Errorf("timeout = %v", spec.Timeout)
	}

	for v, ok := range map[string]bool{
		"${password}": true, "a${password}b": true, "${tls_fingerprint:/x}": true, "${ssh_fingerprint:/x|y}": true,
		"${pasword}": false, "${password": false, "${tls_fingerprint:x}": false, "${password:/x}": false, "${tls_fingerprint:/a/../b}": false,
	} {
		if err := checkPlaceholders(v); (err == nil) != ok {
			t.Errorf("checkPlaceholders(%q) = %v", v, err)
		}
	}
}

func TestVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"1.0.0", "1.0.0", 0}, {"1.2.0", "1.10.0", -1}, {"2.0.0", "1.99.99", 1}, {"0.0.1", "0.0.0", 1}} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compare(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	for _, bad := range []string{"1.0", "1.0.0.0", "01.0.0", "v1.0.0", "1.0.0-rc1", ""} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
	if n, v, err := ParseRef("web-nginx@1.2.3"); err != nil || n != "web-nginx" || v != "1.2.3" {
		t.Errorf("ParseRef = %q %q %v", n, v, err)
	}
	if _, _, err := ParseRef("web-nginx@latest"); err == nil {
		t.Error("ParseRef accepted @latest")
	}
}

func TestLocatorArrays(t *testing.T) {
	l := tomlpos.New([]byte("a = 1\n[[p]]\nk = 1\n[[p]]\nk = 2\n[p.q]\nz = 3\n  [t]\n  \"x.y\" = 1\n"))
	for key, want := range map[string][2]int{
		"a": {1, 1}, "p": {2, 1}, "p[1].k": {3, 1}, "p[2].k": {5, 1}, "p.k": {3, 1},
		"p[2].q.z": {7, 1}, "p[2].q.nope": {6, 1}, "t.x.y": {9, 3}, "p[3].k": {2, 1}, "nope": {0, 0},
	} {
		if l, c := l.Find(key); [2]int{l, c} != want {
			t.Errorf("find(%q) = %d:%d, want %v", key, l, c, want)
		}
	}
	if got := l.Indexed("p.q.z"); got != "p[2].q.z" {
		t.Errorf("indexed = %q", got)
	}
	if ln, _, k := l.Near("p.k", 6); ln != 5 || k != "p[2].k" {
		t.Errorf("near = %d %q", ln, k)
	}
}

// Parameters are written with their TOML types (port = 5433, insecure =
// true) or, as manifests were before they had types, as strings: both
// decode to the same typed parameters, checked when the manifest is read.
func TestTypedParams(t *testing.T) {
	const head = "schema = 2\nname = \"office-app\"\nversion = \"1.0.0\"\nkind = \"web\"\n\n[[probes]]\nname = \"db\"\nkind = \"postgres\"\n"
	typed, _, err := Parse("typed.toml", []byte(head+`params = { user = "u", database = "d", port = 5433, table = "t" }`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := Parse("text.toml", []byte(head+`params = { user = "u", database = "d", port = "5433", table = "t" }`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &verifier.DBParams{Host: "127.0.0.1", Port: 5433, User: "u", Database: "d", Table: "t"}
	for _, m := range []*Manifest{typed, text} {
		if !reflect.DeepEqual(m.Probes[0].Typed, want) {
			t.Errorf("%s: %+v, want %+v", m.Source, m.Probes[0].Typed, want)
		}
		// The text form (shown by sentry modules show --json) is the same.
		if m.Probes[0].Params["port"] != "5433" {
			t.Errorf("%s: params %v", m.Source, m.Probes[0].Params)
		}
	}
	spec := ProbeEnv{Timeout: time.Second}.Spec(typed.Probes[0])
	if !reflect.DeepEqual(spec.Params, want) || spec.Params == typed.Probes[0].Typed {
		t.Errorf("spec params %+v: not an equal copy of %+v", spec.Params, want)
	}
}

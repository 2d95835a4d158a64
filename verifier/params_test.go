package verifier

import (
	"context"
	"reflect"
	"testing"
)

// kv is a probe's parameters in their text form, as --param gives them.
type kv map[string]string

// mustParams parses the text form for kind, as `sentry verify --param` does.
func mustParams(t testing.TB, kind string, p kv) Params {
	t.Helper()
	out, err := ParseParams(kind, p)
	if err != nil {
		t.Fatalf("%s parameters %v: %v", kind, p, err)
	}
	return out
}

// testParams are the parameters of the kinds tests register.
type testParams struct {
	Fail string `param:"fail"`
}

func (*testParams) probeParams() {}

// testKind registers a kind for one test.
func testKind(t *testing.T, name string, fn func(context.Context, *testParams, *Recorder) error) {
	t.Helper()
	register(name, testParams{}, fn)
	t.Cleanup(func() { delete(kinds, name) })
}

// `sentry verify --kind K --param KEY=VALUE`: the same checks as a
// manifest's, each error naming the flag and the key.
func TestParseFlagParams(t *testing.T) {
	for _, c := range []struct {
		kind string
		args []string
		want string // the error; "" for none
	}{
		{"http", []string{"url=http://127.0.0.1/", "status=404", "insecure=true"}, ""},
		{"http", []string{"url"}, `--param "url": want KEY=VALUE`},
		{"http", []string{"=x"}, `--param "=x": want KEY=VALUE`},
		{"http", []string{"url=http://a/", "url=http://b/"}, `--param url: given twice`},
		{"http", nil, `--param url: missing; give --param url=VALUE`},
		{"http", []string{"url=http://a/", "markr=ok"}, `--param markr: unknown parameter of the http probe (did you mean "marker"?): it takes host, insecure, marker, status, url`},
		{"http", []string{"url=ftp://a/"}, `--param url: "ftp://a/" is not an http or https URL with a host`},
		{"http", []string{"url=http://a:99999/"}, `--param url: "http://a:99999/": port 99999 is not from 1 to 65535`},
		{"http", []string{"url=http://a/", "status=abc"}, `--param status: "abc" is not a whole number`},
		{"http", []string{"url=http://a/", "status=700"}, `--param status: 700 is not an HTTP status (100 to 599)`},
		{"http", []string{"url=http://a/", "insecure=yes"}, `--param insecure: "yes" is not true or false`},
		{"tcp", []string{"address=127.0.0.1:0"}, `--param address: "127.0.0.1:0": port 0 is not from 1 to 65535`},
		{"postgres", []string{"user=u", "database=d", "port=70000"}, `--param port: 70000 is not a port (1 to 65535)`},
		{"postgres", []string{"user=u", "database=d", "port=${password}"}, `--param port: "${password}": a placeholder fills only a text parameter`},
		{"backup", []string{"max_age=1h"}, `--param path: missing (or restic_repo, for a restic repository); give --param path=VALUE`},
		{"backup", []string{"restic_repo=/srv/r"}, `--param restic_password_file: missing (restic_repo needs it); give --param restic_password_file=VALUE`},
		{"backup", []string{"path=/srv", "max_age=-1h"}, `--param max_age: -1h0m0s is not a positive duration`},
		{"backup", []string{"path=/srv", "max_age=1 day"}, `--param max_age: "1 day" is not a duration: write a number with a unit, such as "30s"`},
		{"backup", []string{"path=srv"}, `--param path: "srv" is not an absolute path`},
		{"disk", []string{"min_free_percent=-1"}, `--param min_free_percent: -1 is not a percentage (0 to 100)`},
		{"raid", []string{"min_arrays=-1"}, `--param min_arrays: -1 is negative`},
		{"mail", []string{"to=c@localhost", "user=c", "tls_fingerprint=AB:CD"}, `--param tls_fingerprint: "AB:CD" is not a SHA-256 fingerprint (64 hex digits, ':' between pairs allowed)`},
		{"mail", []string{"to=c@localhost", "user=c", "smtp_tls=ssl"}, `--param smtp_tls: "ssl" is not one of starttls, none`},
		{"mail", []string{"to=c@localhost", "user=c", "visible_within=0s"}, `--param visible_within: 0s is not a positive duration`},
		{"smb", []string{"share=s", "user=u", "size=0"}, `--param size: 0 is not a size from 1 to 67108864 bytes`},
		{"sftp", []string{"user=u", "host_key=SHA256:x", "size=1000000000"}, `--param size: 1000000000 is not a size from 1 to 67108864 bytes`},
		{"mysql", []string{"user=u", "database=d", "table=t`; DROP TABLE x"}, "--param table: \"t`; DROP TABLE x\" is not a table name: letters, digits and _, at most 64, not starting with a digit"},
	} {
		_, err := ParseFlagParams(c.kind, c.args)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s %q:\n got: %s\nwant: %s", c.kind, c.args, got, c.want)
		}
	}
}

// A manifest's values come typed from TOML or in their text form (schema
// 1, and manifests written when parameters were strings): both decode the
// same; a value of the wrong type is refused.
func TestDecodeParamsTypes(t *testing.T) {
	typed, err := DecodeParams("postgres", map[string]any{"user": "u", "database": "d", "port": int64(5433)})
	if err != nil {
		t.Fatal(err)
	}
	text := mustParams(t, "postgres", kv{"user": "u", "database": "d", "port": "5433"})
	want := &DBParams{Host: "127.0.0.1", Port: 5433, User: "u", Database: "d", Table: CanaryDB}
	if !reflect.DeepEqual(typed, want) || !reflect.DeepEqual(text, want) {
		t.Errorf("typed %+v, text %+v, want %+v", typed, text, want)
	}
	if p, err := DecodeParams("http", map[string]any{"url": "http://a/", "insecure": true}); err != nil || !p.(*HTTPParams).Insecure {
		t.Errorf("insecure = true: %+v %v", p, err)
	}
	for _, c := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"url": int64(1)}, "parameter url: must be a string, not an integer"},
		{map[string]any{"url": "http://a/", "status": 2.5}, "parameter status: must be a whole number, not a float"},
		{map[string]any{"url": "http://a/", "insecure": int64(1)}, "parameter insecure: must be true or false, not an integer"},
		{map[string]any{"url": []any{"http://a/"}}, "parameter url: must be a string, not an array"},
	} {
		if _, err := DecodeParams("http", c.raw); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %s", c.raw, err, c.want)
		}
	}
	if _, err := DecodeParams("icmp", nil); err == nil {
		t.Error("an unknown kind decoded")
	}
}

// Parameters made in Go are checked by Run before the probe runs; those of
// another kind's type are refused.
func TestRunChecksParams(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{Kind: "tcp", Params: &TCPParams{}}, "parameter address is missing"},
		{Spec{Kind: "tcp", Params: &TCPParams{Address: "nowhere"}}, `parameter address: "nowhere" is not HOST:PORT`},
		{Spec{Kind: "tcp", Params: &HTTPParams{URL: "http://a/"}}, "parameters of type *verifier.HTTPParams are not those of the tcp probe (*verifier.TCPParams)"},
		{Spec{Kind: "mail", Params: &MailParams{To: "c@localhost", User: "c", TLSFingerprint: "${tls_fingerprint:/x}"}}, `parameter tls_fingerprint: "${tls_fingerprint:/x}" is not a SHA-256 fingerprint (64 hex digits, ':' between pairs allowed)`},
	} {
		r := Run(context.Background(), c.spec, nil)
		if r.OK || r.Message != c.want || len(r.Phases) != 0 {
			t.Errorf("%T: %+v, want %q", c.spec.Params, r, c.want)
		}
	}
}

// ExpandParams fills the placeholders of string parameters; one that
// cannot be filled goes back to the kind's default.
func TestExpandParams(t *testing.T) {
	p, err := ParseParams("sftp", kv{"user": "u", "password": "${password}", "host_key": "${key}", "dir": "${none}"})
	if err != nil {
		t.Fatal(err)
	}
	fill := map[string]string{"${password}": "pw", "${key}": "SHA256:abc"}
	got := ExpandParams("sftp", p, func(s string) (string, bool) {
		if !Placeholder(s) {
			return s, true
		}
		v, ok := fill[s]
		return v, ok
	})
	want := &SFTPParams{Address: "127.0.0.1:22", User: "u", Password: "pw", HostKey: "SHA256:abc",
		HostKeyAlgorithm: defaultHostKeyAlgorithm, Dir: ".", Size: defaultFileSize}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("expanded %+v, want %+v", got, want)
	}
	if p.(*SFTPParams).Password != "${password}" {
		t.Errorf("ExpandParams changed its argument: %+v", p)
	}
}

package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestParseHostStatus(t *testing.T) {
	data, err := os.ReadFile("testdata/host-status")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := ParseStatus("testdata/host-status", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Count(data, []byte("\nPackage: ")) + 1; len(pkgs) != want {
		t.Errorf("%d packages, the file has %d stanzas", len(pkgs), want)
	}
	byName := map[string]Package{}
	for _, p := range pkgs {
		byName[p.Key()] = p
	}
	want := Package{Name: "adduser", Version: "3.134", Arch: "all", Status: "install ok installed"}
	if got := byName["adduser:all"]; got != want {
		t.Errorf("adduser = %+v, want %+v", got, want)
	}
	if got := byName["fakeroot:amd64"]; got.Version == "" || !got.Installed() || got.Held() {
		t.Errorf("fakeroot = %+v", got)
	}
}

func TestParseStatusFields(t *testing.T) {
	in := "Package: postgresql-15\nStatus: hold ok installed\nArchitecture: amd64\nSource: postgresql-15\nVersion: 15.6-0+deb12u1\nDescription: db\n long text: with a colon\n .\n\n" +
		"Package: nginx\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.22.1-9\n\n" +
		"Package: gone\nStatus: purge ok not-installed\n\n"
	pkgs, err := ParseStatus("s", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "postgresql-15", Version: "15.6-0+deb12u1", Arch: "amd64", Status: "hold ok installed", Source: "postgresql-15"},
		{Name: "nginx", Version: "1.22.1-9", Arch: "amd64", Status: "deinstall ok config-files"},
		{Name: "gone", Status: "purge ok not-installed"},
	}
	if fmt.Sprint(pkgs) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", pkgs, want)
	}
	if !pkgs[0].Held() || !pkgs[0].Installed() || pkgs[1].Installed() || pkgs[1].Want() != "deinstall" {
		t.Errorf("Held/Installed/Want wrong: %+v", pkgs)
	}
}

func TestParseStatusCorrupt(t *testing.T) {
	host, err := os.ReadFile("testdata/host-status")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(host), "\n")
	firstLines := func(n int) []byte { return []byte(strings.Join(lines[:n], "")) }
	zeroed := append([]byte(nil), host...)
	off := len(firstLines(299)) // line 300 starts here
	copy(zeroed[off:off+4096], make([]byte, 4096))
	ok := "Package: ok\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n\n"

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"cut after line 1234, inside fakeroot's stanza", firstLines(1234),
			`testdata/host-status:1234: package "fakeroot": file ends without the blank line after its last stanza (truncated?)`},
		{"cut in the middle of line 1234", firstLines(1234)[:len(firstLines(1234))-5],
			`testdata/host-status:1234: file ends in the middle of a line (truncated?)`},
		{"zero-filled block from line 300", zeroed,
			`testdata/host-status:300: NUL byte (zero-filled block?)`},
		{"empty", nil, `testdata/host-status:1: is empty: no package at all (truncated?)`},
		{"no version", []byte(ok + "Package: foo\nStatus: install ok installed\nArchitecture: amd64\n\n"),
			`testdata/host-status:6: package "foo": field "Version" missing`},
		{"no architecture", []byte(ok + "Package: foo\nStatus: install ok installed\nVersion: 2\n\n"),
			`testdata/host-status:6: package "foo": field "Architecture" missing`},
		{"no status", []byte(ok + "Package: foo\nVersion: 2\nArchitecture: all\n\n"),
			`testdata/host-status:6: package "foo": field "Status" missing`},
		{"no package", []byte(ok + "Status: install ok installed\nVersion: 2\n\n"),
			`testdata/host-status:6: field "Package" missing in the stanza starting here`},
		{"bad status", []byte(ok + "Package: foo\nVersion: 2\nStatus: install ok sideways\nArchitecture: all\n\n"),
			`testdata/host-status:8: package "foo": field "Status" is "install ok sideways", not "<want> <flag> <state>"`},
		{"bad version", []byte(ok + "Package: foo\nStatus: install ok installed\nVersion: v2.0\nArchitecture: all\n\n"),
			`testdata/host-status:8: package "foo": field "Version" "v2.0": does not start with a digit`},
		{"bad package name", []byte(ok + "Package: Foo_Bar\nStatus: install ok installed\nVersion: 2\nArchitecture: all\n\n"),
			`testdata/host-status:6: field "Package" "Foo_Bar" is not a package name`},
		{"duplicate", []byte(ok + ok),
			`testdata/host-status:6: package "ok": listed twice (first at line 1)`},
		{"field twice", []byte("Package: foo\nVersion: 1\nVersion: 2\n\n"),
			`testdata/host-status:3: package "foo": field "Version" given twice`},
		{"no colon", []byte(ok + "Package: foo\nthis is not a field\n\n"),
			`testdata/host-status:7: package "foo": line is not "Field: value": "this is not a field"`},
		{"continuation first", []byte(ok + " orphan continuation\n\n"),
			`testdata/host-status:6: continuation line with no field before it`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStatus("testdata/host-status", tc.data)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%v does not wrap ErrCorrupt", err)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"1:1.0", "2.0", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0+b1", -1},
		{"1.0-2", "1.0-10", -1},
		{"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
		{"6.1.0-18-amd64", "6.1.0-9-amd64", 1},
		{"6.12.9-amd64", "6.1.0-18-amd64", 1},
		{"1.0a", "1.0", 1},
		{"1.0~", "1.0", -1},
		{"9.2p1-2+deb12u2", "9.2p1-2+deb12u3", -1},
	}
	for _, tc := range tests {
		got := CompareVersions(tc.a, tc.b)
		if (got < 0 && tc.want >= 0) || (got > 0 && tc.want <= 0) || (got == 0 && tc.want != 0) {
			t.Errorf("CompareVersions(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// formatStatus writes packages back as a status file, for the round trip.
func formatStatus(pkgs []Package) []byte {
	var b bytes.Buffer
	for _, p := range pkgs {
		fmt.Fprintf(&b, "Package: %s\nStatus: %s\n", p.Name, p.Status)
		if p.Arch != "" {
			fmt.Fprintf(&b, "Architecture: %s\n", p.Arch)
		}
		if p.Source != "" {
			fmt.Fprintf(&b, "Source: %s\n", p.Source)
		}
		if p.Version != "" {
			fmt.Fprintf(&b, "Version: %s\n", p.Version)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// FuzzParseStatus: ParseStatus never panics, every error names the file and
// a line inside it, and what it accepts writes back and parses the same.
func FuzzParseStatus(f *testing.F) {
	host, err := os.ReadFile("testdata/host-status")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(host[:4000])
	f.Add([]byte("Package: a1\nStatus: install ok installed\nArchitecture: all\nVersion: 1:2.0~rc1-3\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseStatus("f", data)
		if err != nil {
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *StatusError", err)
			}
			if n := bytes.Count(data, []byte("\n")) + 1; se.Line < 1 || se.Line > n {
				t.Fatalf("line %d outside the input's %d lines: %v", se.Line, n, err)
			}
			return
		}
		again, err := ParseStatus("f", formatStatus(pkgs))
		if err != nil {
			t.Fatalf("written back, does not parse: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(pkgs) {
			t.Fatalf("round trip changed\n%+v\n%+v", pkgs, again)
		}
	})
}

package readiness

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeAllow(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), AllowFile)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadAllowances(t *testing.T) {
	p := writeAllow(t, `# declared differences between the two machines
[[allow]]
name = "firmware-realtek"      # only machine b has the NIC
kind = "package"
reason = "only machine b has a Realtek NIC"

[[allow]]
name = "linux-image-*"
kind = "kernel"
reason = "  b boots the backports kernel for its RAID controller  "

[[allow]]
name = "intel-microcode"
reason = "a has an AMD CPU"
`)
	got, err := LoadAllowances(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Allowance{
		{Name: "firmware-realtek", Kind: "package", Reason: "only machine b has a Realtek NIC", Line: 2},
		{Name: "linux-image-*", Kind: "kernel", Reason: "b boots the backports kernel for its RAID controller", Line: 7},
		{Name: "intel-microcode", Reason: "a has an AMD CPU", Line: 12},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%+v\nwant %+v", got, want)
	}

	if got, err := LoadAllowances(filepath.Join(t.TempDir(), AllowFile)); err != nil || got != nil {
		t.Errorf("a missing file: %+v %v", got, err)
	}
	if got, err := LoadAllowances(writeAllow(t, "# nothing declared\n")); err != nil || len(got) != 0 {
		t.Errorf("an empty file: %+v %v", got, err)
	}
}

func TestLoadAllowancesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string // want: the error after "FILE"
	}{
		{"empty reason", "[[allow]]\nname = \"x\"\nkind = \"package\"\nreason = \"\"\n", ":4: allow[1].reason: must not be empty"},
		{"blank reason", "[[allow]]\nname = \"x\"\nreason = \"x\"\n[[allow]]\nname = \"y\"\nreason = \"   \"\n", ":6: allow[2].reason: must not be empty"},
		{"missing reason", "[[allow]]\nname = \"x\"\n\n[[allow]]\nname = \"y\"\n", ":1: allow[1].reason: missing: say why the difference is fine"},
		{"missing name", "[[allow]]\nname = \"x\"\nreason = \"r\"\n[[allow]]\nreason = \"r\"\n", ":4: allow[2].name: missing: name the package, kernel or firmware"},
		{"empty name", "[[allow]]\nname = \"\"\nreason = \"r\"\n", ":2: allow[1].name: must not be empty"},
		{"bad glob", "[[allow]]\nname = \"firmware-[realtek\"\nreason = \"r\"\n", `:2: allow[1].name: "firmware-[realtek" is not a valid glob: syntax error in pattern`},
		{"bad kind", "[[allow]]\nname = \"x\"\nkind = \"pkg\"\nreason = \"r\"\n",
			`:3: allow[1].kind: "pkg" is not one of package, kernel, running-kernel, boot-kernel, installed-kernel, firmware, apt-source (or empty: any kind)`},
		{"unknown key", "[[allow]]\nname = \"x\"\nreason = \"r\"\n[[allow]]\nname = \"y\"\nreson = \"r\"\n", ":6: allow[2].reson: unknown key (the keys are name, kind and reason)"},
		{"unknown table", "[[allowed]]\nname = \"x\"\n", ":1: allowed[1]: unknown key (the keys are name, kind and reason)"},
		{"wrong type", "[[allow]]\nname = \"x\"\nreason = \"r\"\n[[allow]]\nname = 5\n", ":5: allow[2].name: must be a string"},
		{"not tables", "allow = \"x\"\n", ":1: allow: must be [[allow]] tables"},
		{"syntax", "[[allow]]\nname = \"x\nreason = \"r\"\n", ":2: strings cannot contain newlines"},
		{"control character", "[[allow]]\nname = \"x\"\nreason = \"a\\u001b[2Jb\"\n", `:3: allow[1].reason: "a\x1b[2Jb": at most 512 bytes, one line, printable`},
		{"long reason", "[[allow]]\nname = \"x\"\nreason = \"" + strings.Repeat("r", 600) + "\"\n", `:3: allow[1].reason: "rrrr`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeAllow(t, tc.text)
			got, err := LoadAllowances(p)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !strings.HasPrefix(err.Error(), p+tc.want) {
				t.Errorf("error %s\n want %s%s", err, p, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\n\x1b") {
				t.Errorf("the error is not one safe line: %q", err)
			}
		})
	}
	// A file far too large is refused before parsing, naming it.
	big := writeAllow(t, strings.Repeat("# padding\n", 200000))
	if _, err := LoadAllowances(big); err == nil || !strings.Contains(err.Error(), big) {
		t.Errorf("a 2 MB file: %v", err)
	}
	// A folder in the file's place.
	dir := filepath.Join(t.TempDir(), AllowFile)
	os.Mkdir(dir, 0o755)
	if _, err := LoadAllowances(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a folder: %v", err)
	}
}

func TestAllow(t *testing.T) {
	as := []Allowance{
		{Name: "firmware-realtek", Kind: "package", Reason: "only b has a Realtek NIC"},
		{Name: "firmware-*", Kind: "firmware", Reason: "firmware follows the hardware"},
		{Name: "6.1.0-*", Kind: "kernel", Reason: "b keeps an older kernel to fall back on"},
		{Name: "running-kernel", Reason: "b reboots next week"},
		{Name: "libfoo", Reason: "multi-arch on a only"},
		{Name: "deb http://repo.example.org/debian bookworm main", Kind: "apt-source", Reason: "a local mirror"},
		{Name: "ed*", Kind: "package", Reason: "first wins"},
		{Name: "editor", Reason: "never reached"},
	}
	pk := PackageFacts{At: time.Now(), Diffs: []PackageDiff{
		{Kind: "package", Name: "firmware-realtek", Secondary: "20230210-5"},
		{Kind: "package", Name: "firmware-bnx2", Primary: "20230210-5"},
		{Kind: "firmware", Name: "rtl_nic/rtl8168h-2.fw", Secondary: "present"},
		{Kind: "installed-kernel", Name: "6.1.0-17-amd64", Primary: "absent", Secondary: "present"},
		{Kind: "installed-kernel", Name: "6.5.0-0.deb12.4-amd64", Primary: "absent", Secondary: "present"},
		{Kind: "running-kernel", Primary: "6.1.0-18-amd64", Secondary: "6.1.0-17-amd64"},
		{Kind: "boot-kernel", Primary: "6.1.0-18-amd64", Secondary: "6.1.0-17-amd64"},
		{Kind: "package", Name: "libfoo:i386", Primary: "1.0 i386"},
		{Kind: "apt-source", Name: "deb http://repo.example.org/debian bookworm main", Primary: "present", Secondary: "absent"},
		{Kind: "package", Name: "editor", Primary: "1", Secondary: "2"},
		{Kind: "package", Name: "nginx", Primary: "1.22", Secondary: "1.24"},
		{Kind: "package", Name: "kept", Primary: "1", Allowed: true, Reason: "already"},
	}}
	pk.Allow(as)
	want := []string{
		"only b has a Realtek NIC",
		"firmware follows the hardware", // kind firmware covers Debian's firmware-* packages
		"",                              // a firmware file: the glob firmware-* does not match its name
		"b keeps an older kernel to fall back on",
		"",                    // another kernel series
		"b reboots next week", // a difference without a name is named by its kind
		"",
		"multi-arch on a only", // the name without the architecture
		"a local mirror",
		"first wins",
		"",
		"already", // allowed before: kept
	}
	for i, d := range pk.Diffs {
		if d.Reason != want[i] || d.Allowed != (want[i] != "") {
			t.Errorf("%s %q: allowed=%v %q, want %q", d.Kind, d.Name, d.Allowed, d.Reason, want[i])
		}
	}
	var nilFacts *PackageFacts
	nilFacts.Allow(as)
}

// TestAllowedPackagesPass: the packages check counts allowed differences
// as passing and says how many there are.
func TestAllowedPackagesPass(t *testing.T) {
	now := time.Now()
	in := &Input{Now: now, Packages: PackageFacts{At: now, Diffs: []PackageDiff{
		{Kind: "package", Name: "firmware-realtek", Secondary: "20230210-5"},
		{Kind: "package", Name: "nginx", Primary: "1.22", Secondary: "1.24"},
	}}}
	find := func() Finding {
		for _, f := range Default().Evaluate(in).Findings {
			if f.Check == "packages" {
				return f
			}
		}
		t.Fatal("no packages finding")
		return Finding{}
	}
	in.Packages.Allow([]Allowance{{Name: "firmware-realtek", Reason: "only b has a Realtek NIC"}})
	if f := find(); f.State != Fail || !strings.Contains(f.Reason, "1 difference(s): package nginx") || strings.Contains(f.Reason, "realtek") {
		t.Errorf("%s %q", f.State, f.Reason)
	}
	in.Packages.Allow([]Allowance{{Name: "nginx", Kind: "package", Reason: "b tests the new nginx"}})
	if f := find(); f.State != Pass || f.Reason != "in step (2 difference(s) declared allowed)" {
		t.Errorf("%s %q", f.State, f.Reason)
	}
}

// TestAllowDocExample: the example of docs/configuration.md is a good file.
func TestAllowDocExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Declared package differences (parity-allow.toml)")
	_, rest, ok2 := strings.Cut(rest, "```toml\n")
	example, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no parity-allow.toml example in docs/configuration.md")
	}
	as, err := ParseAllowances("docs/configuration.md", []byte(example))
	if err != nil || len(as) != 2 || as[0].Name != "firmware-realtek" || as[0].Reason == "" {
		t.Fatalf("%+v %v", as, err)
	}
}

package apttrust

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadSourcesOptions(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "sources.list"), []byte(
		"deb [ arch=amd64 signed-by=/usr/share/keyrings/a.gpg,/etc/apt/keyrings/b.asc check-valid-until=no ] http://deb.example.invalid/debian bookworm main contrib # a comment\n"+
			"deb-src http://deb.example.invalid/debian bookworm main\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sources.list.d", "x.sources"), []byte(
		"# a stanza with the key inline\n"+
			"Types: deb\nURIs: https://apt.example.invalid/repo\nSuites: stable\nComponents: main\n"+
			"Check-Date: no\nArchitectures: amd64\n arm64\n"+
			"Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n bWFkZSB1cA==\n =abcd\n -----END PGP PUBLIC KEY BLOCK-----\n"+
			"\nTypes: deb\nURIs: file:/srv/repo\nSuites: ./\nSigned-By: /etc/apt/keyrings/c.gpg\n 0123456789ABCDEF0123456789ABCDEF01234567\nEnabled: no\n"), 0o644)
	got, err := ReadSources(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{
		{File: filepath.Join(dir, "sources.list"), Line: 1, Types: []string{"deb"}, URIs: []string{"http://deb.example.invalid/debian"},
			Suites: []string{"bookworm"}, Components: []string{"main", "contrib"},
			SignedBy: "/usr/share/keyrings/a.gpg,/etc/apt/keyrings/b.asc", Options: map[string]string{"arch": "amd64", "check-valid-until": "no"}},
		{File: filepath.Join(dir, "sources.list"), Line: 2, Types: []string{"deb-src"}, URIs: []string{"http://deb.example.invalid/debian"},
			Suites: []string{"bookworm"}, Components: []string{"main"}},
		{File: filepath.Join(dir, "sources.list.d", "x.sources"), Line: 2, Types: []string{"deb"}, URIs: []string{"https://apt.example.invalid/repo"},
			Suites: []string{"stable"}, Components: []string{"main"},
			SignedBy: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbWFkZSB1cA==\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----",
			Options:  map[string]string{"check-date": "no", "architectures": "amd64 arm64"}},
		{File: filepath.Join(dir, "sources.list.d", "x.sources"), Line: 16, Types: []string{"deb"}, URIs: []string{"file:/srv/repo"},
			Suites: []string{"./"}, Disabled: true, SignedBy: "/etc/apt/keyrings/c.gpg\n0123456789ABCDEF0123456789ABCDEF01234567"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadSources:\n got %#v\nwant %#v", got, want)
	}
	if got[0].boolOption("check-valid-until", true) || !got[1].boolOption("check-valid-until", true) || got[2].boolOption("check-date", true) {
		t.Error("boolOption")
	}
	if b, err := dearmor([]byte(got[2].SignedBy)); err != nil || string(b) != "made up" {
		t.Errorf("the inline block dearmored: %q %v", b, err)
	}
	ks := (&keyrings{sets: map[string]*keyset{}, o: Options{EtcDir: dir}.withDefaults()}).get("/x/debian-archive-removed-keys.gpg," + "ABCD")
	if ks.err == nil || ks.err.Error() != "/x/debian-archive-removed-keys.gpg: a keyring of removed keys is never trusted" {
		t.Errorf("a removed keyring named: %v", ks.err)
	}
}

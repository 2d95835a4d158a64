package agent

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/synchronizer/inventory"
)

func TestSlimInventory(t *testing.T) {
	inv := &inventory.Inventory{
		Kernels: []inventory.Kernel{{Release: "6.1.0-1-amd64",
			Aliases: []inventory.Alias{
				{Pattern: "pci:v00008086d00001521sv*sd*bc*sc*i*", Module: "igb"},
				{Pattern: "pci:v00008086d000010D3sv*sd*bc*sc*i*", Module: "e1000e"},
				{Pattern: "pci:v000010ECd00008168sv*sd*bc*sc*i*", Module: "r8169"},
			},
			Modules: []inventory.Module{
				{Name: "igb", Path: "kernel/igb.ko", Deps: []string{"dca"}},
				{Name: "dca", Path: "kernel/dca.ko"},
				{Name: "e1000e", Path: "kernel/e1000e.ko"},
				{Name: "r8169", Path: "kernel/r8169.ko", Firmware: []string{"rtl_nic/rtl8168h-2.fw"}, FirmwareKnown: true},
			}}},
		Firmware:         []string{"rtl_nic/rtl8168h-2.fw", "other.bin"},
		FirmwarePackages: map[string]string{"rtl_nic/rtl8168h-2.fw": "firmware-realtek"},
	}
	slim := slimInventory(inv, []string{"pci:v00008086d00001521sv00008086sd00000001bc02sc00i00"})
	k := slim.Kernels[0]
	if len(k.Aliases) != 1 || k.Aliases[0].Module != "igb" {
		t.Fatalf("aliases kept: %+v", k.Aliases)
	}
	var mods []string
	for _, m := range k.Modules {
		mods = append(mods, m.Name)
	}
	if strings.Join(mods, " ") != "igb dca" {
		t.Fatalf("modules kept: %v, want igb and its dependency dca", mods)
	}
	if len(slim.Firmware) != 0 || slim.FirmwarePackages != nil {
		t.Fatalf("firmware of modules not kept stays: %v %v", slim.Firmware, slim.FirmwarePackages)
	}
	if len(inv.Kernels[0].Aliases) != 3 {
		t.Fatal("slimInventory changed the inventory it was given")
	}
	slim = slimInventory(inv, []string{"pci:v000010ECd00008168sv00001043sd00008677bc02sc00i00"})
	if len(slim.Firmware) != 1 || slim.FirmwarePackages["rtl_nic/rtl8168h-2.fw"] != "firmware-realtek" {
		t.Fatalf("firmware of a kept module: %v %v", slim.Firmware, slim.FirmwarePackages)
	}
}

func TestFailedPackages(t *testing.T) {
	out := `dpkg: error processing archive /var/lib/sentry/debs/foo_1.0_all.deb (--install):
 trying to overwrite '/usr/bin/x', which is also in package bar 2.0
dpkg: error processing package baz:amd64 (--install):
 dependency problems - leaving unconfigured`
	got := failedPackages(out)
	if !got["foo"] || !got["baz"] || len(got) != 2 {
		t.Fatalf("failedPackages = %v, want foo and baz", got)
	}
}

// signedRepo makes a flat repository signed with a new key in dir and
// points the agent's apt paths at it; it returns the .deb's path.
func signedRepo(t *testing.T) (string, string) {
	t.Helper()
	for _, c := range []string{"gpg", GpgvCmd} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("the signed-index test needs %s (apt-get install gpg gpgv)", c)
		}
	}
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	home := filepath.Join(dir, "gnupg")
	for _, d := range []string{repo, home, filepath.Join(dir, "etc/sources.list.d"), filepath.Join(dir, "keyrings"), filepath.Join(dir, "lists")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(repo, "hello_1.0_all.deb")
	if err := os.WriteFile(deb, []byte("!<arch>\nnot really a deb, only its hash counts here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(deb)
	sum := sha256.Sum256(b)
	pk := fmt.Sprintf("Package: hello\nVersion: 1.0\nArchitecture: all\nFilename: ./hello_1.0_all.deb\nSize: %d\nSHA256: %x\n\n", len(b), sum)
	os.WriteFile(filepath.Join(repo, "Packages"), []byte(pk), 0o644)
	psum := sha256.Sum256([]byte(pk))
	os.WriteFile(filepath.Join(repo, "Release"), []byte(fmt.Sprintf("Suite: ./\nSHA256:\n %x %d Packages\n", psum, len(pk))), 0o644)
	gpg := func(args ...string) {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
	}
	gpg("--quick-gen-key", "test repo <test@sentry.invalid>", "ed25519", "sign", "never")
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	gpg("--clearsign", "--output", filepath.Join(repo, "InRelease"), filepath.Join(repo, "Release"))
	gpg("--armor", "--output", filepath.Join(dir, "keyrings", "test.asc"), "--export", "test@sentry.invalid")
	os.WriteFile(filepath.Join(dir, "etc/sources.list"), []byte("deb file:"+repo+" ./\n"), 0o644)
	oldEtc, oldKeys, oldLists := AptEtc, AptKeyrings, AptLists
	AptEtc, AptKeyrings, AptLists = filepath.Join(dir, "etc"), []string{filepath.Join(dir, "keyrings")}, filepath.Join(dir, "lists")
	t.Cleanup(func() { AptEtc, AptKeyrings, AptLists = oldEtc, oldKeys, oldLists })
	return repo, deb
}

func TestSignedIndex(t *testing.T) {
	repo, deb := signedRepo(t)
	hello := DebRequest{Name: "hello", Arch: "all", Version: "1.0"}
	index, errs := signedIndex()
	if len(errs) > 0 {
		t.Fatalf("signedIndex: %v", errs)
	}
	sum, trusted, err := checkDeb(deb, hello, index, nil)
	if err != nil || trusted != "signed index "+filepath.Join(repo, "InRelease") {
		t.Fatalf("checkDeb of the listed file: %q, %v", trusted, err)
	}
	// The same bytes under another version are not what the index says.
	if _, _, err := checkDeb(deb, DebRequest{Name: "hello", Arch: "all", Version: "2.0"}, index, nil); err == nil || !strings.Contains(err.Error(), "but as hello=1.0") {
		t.Fatalf("checkDeb of a wrong version: %v", err)
	}
	// A file no index lists: refused, unless its hash is approved.
	other := filepath.Join(t.TempDir(), "hello_1.0_all.deb")
	os.WriteFile(other, []byte("something else"), 0o644)
	osum, _, err := checkDeb(other, hello, index, nil)
	if err == nil || !strings.Contains(err.Error(), "--approve "+osum) {
		t.Fatalf("checkDeb of an unlisted file: %v", err)
	}
	if _, trusted, err := checkDeb(other, hello, index, map[string]bool{osum: true}); err != nil || trusted != "approved by the operator" {
		t.Fatalf("checkDeb of an approved file: %q, %v", trusted, err)
	}
	if sum == osum {
		t.Fatal("two files with one hash")
	}
	// Packages changed after signing: its entries are not trusted.
	b, _ := os.ReadFile(filepath.Join(repo, "Packages"))
	os.WriteFile(filepath.Join(repo, "Packages"), bytes.Replace(b, []byte("Version: 1.0"), []byte("Version: 1.1"), 1), 0o644)
	index, errs = signedIndex()
	if len(index) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "SHA-256 differs") {
		t.Fatalf("a tampered Packages file: index %v, errors %v", index, errs)
	}
	// InRelease signed by a key apt does not trust.
	os.WriteFile(filepath.Join(repo, "Packages"), b, 0o644)
	AptKeyrings = []string{t.TempDir()}
	os.WriteFile(filepath.Join(AptKeyrings[0], "empty.gpg"), nil, 0o644)
	if index, errs = signedIndex(); len(index) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "does not verify") {
		t.Fatalf("an untrusted key: index %v, errors %v", index, errs)
	}
}

func TestReleaseSHA256(t *testing.T) {
	rel := "Suite: bookworm\nMD5Sum:\n 0123 10 main/binary-amd64/Packages\nSHA256:\n ABCDEF 12 main/binary-amd64/Packages\n abcd 3 main/binary-amd64/Packages.gz\nAcquire-By-Hash: yes\n"
	m := releaseSHA256([]byte(rel))
	if len(m) != 2 || m["main/binary-amd64/Packages"] != "abcdef" || m["main/binary-amd64/Packages.gz"] != "abcd" {
		t.Fatalf("releaseSHA256 = %v", m)
	}
}

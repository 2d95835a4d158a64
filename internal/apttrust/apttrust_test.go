package apttrust

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture is a node's apt in a temporary folder: root/etc/apt,
// root/var/lib/apt/lists, root/usr/share/keyrings; and a GNUPGHOME with
// the test's keys, each named <name>@sentry.invalid.
type fixture struct {
	t                    *testing.T
	home                 string
	etc, lists, usrShare string
	o                    Options
}

func newFixture(t *testing.T, keys ...string) *fixture {
	t.Helper()
	for _, c := range []string{"gpg", "gpgv", "gpgconf"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("the apt trust tests need %s (apt-get install gpg gpgv)", c)
		}
	}
	root := t.TempDir()
	f := &fixture{t: t, home: filepath.Join(root, "gnupg"), etc: filepath.Join(root, "etc/apt"),
		lists: filepath.Join(root, "var/lib/apt/lists"), usrShare: filepath.Join(root, "usr/share/keyrings")}
	for _, d := range []string{f.home, f.etc + "/sources.list.d", f.etc + "/trusted.gpg.d", f.etc + "/keyrings", f.lists, f.usrShare} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GNUPGHOME", f.home)
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", f.home, "--kill", "all").Run() })
	for _, k := range keys {
		f.gpg("--quick-gen-key", k+" <"+k+"@sentry.invalid>", "ed25519", "sign", "never")
	}
	f.o = Options{EtcDir: f.etc, ListsDir: f.lists, TempDir: t.TempDir()}
	return f
}

func (f *fixture) gpg(args ...string) []byte {
	f.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", f.home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		f.t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
	}
	return out
}

// export writes key's public key to path: armored when path ends in .asc.
func (f *fixture) export(key, path string) {
	f.t.Helper()
	args := []string{"--output", path, "--export", key + "@sentry.invalid"}
	if strings.HasSuffix(path, ".asc") {
		args = append([]string{"--armor"}, args...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.gpg(args...)
}

func (f *fixture) fingerprint(key string) string {
	f.t.Helper()
	for _, l := range strings.Split(string(f.gpg("--with-colons", "--fingerprint", key+"@sentry.invalid")), "\n") {
		if strings.HasPrefix(l, "fpr:") {
			return strings.Split(l, ":")[9]
		}
	}
	f.t.Fatalf("no fingerprint of %s", key)
	return ""
}

func (f *fixture) write(path, text string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// repo makes a flat repository (for a file: source) of one .deb,
// hello_1.0_all.deb, its Release with the extra fields given, clearsigned
// into InRelease by the keys named.
func (f *fixture) repo(extra string, signers ...string) (repo, deb string) {
	f.t.Helper()
	repo = filepath.Join(f.t.TempDir(), "repo")
	deb = filepath.Join(repo, "hello_1.0_all.deb")
	f.write(deb, "!<arch>\nnot really a deb, only its hash counts here\n")
	b, _ := os.ReadFile(deb)
	pk := fmt.Sprintf("Package: hello\nVersion: 1.0\nArchitecture: all\nFilename: ./hello_1.0_all.deb\nSize: %d\nSHA256: %x\n\n", len(b), sha256.Sum256(b))
	f.write(filepath.Join(repo, "Packages"), pk)
	f.write(filepath.Join(repo, "Release"), fmt.Sprintf("Suite: ./\n%sSHA256:\n %x %d Packages\n", extra, sha256.Sum256([]byte(pk)), len(pk)))
	var args []string
	for _, s := range signers {
		args = append(args, "--local-user", s+"@sentry.invalid")
	}
	f.gpg(append(args, "--clearsign", "--output", filepath.Join(repo, "InRelease"), filepath.Join(repo, "Release"))...)
	return repo, deb
}

// toLists copies a repository's InRelease and Packages into apt's lists
// as apt names them for the source "deb uri ./".
func (f *fixture) toLists(repo, uri string) string {
	f.t.Helper()
	prefix := filepath.Join(f.lists, strings.TrimSuffix(listName(metaIndexURI(uri, "./", "InRelease")), "InRelease"))
	for _, n := range []string{"InRelease", "Packages"} {
		b, err := os.ReadFile(filepath.Join(repo, n))
		if err != nil {
			f.t.Fatal(err)
		}
		f.write(prefix+n, string(b))
	}
	return prefix + "InRelease"
}

var hello = Package{Name: "hello", Arch: "all", Version: "1.0"}

// check is what the node's signed indexes say of deb as hello 1.0.
func (f *fixture) check(deb string) (trusted string, errs []error, err error) {
	f.t.Helper()
	ix, errs := f.o.SignedIndex()
	_, trusted, err = ix.Check(deb, hello, nil)
	return trusted, errs, err
}

// wantTrusted fails unless deb is vouched for by the index inRelease.
func (f *fixture) wantTrusted(deb, inRelease string) {
	f.t.Helper()
	trusted, errs, err := f.check(deb)
	if err != nil || trusted != "signed index "+inRelease {
		f.t.Fatalf("not trusted: %v (index errors %v)", err, errs)
	}
}

// wantRefused fails unless deb is in no signed index, and an index error
// says want.
func (f *fixture) wantRefused(deb, want string) {
	f.t.Helper()
	trusted, errs, err := f.check(deb)
	if err == nil || !strings.Contains(err.Error(), "is in no signed apt index") {
		f.t.Fatalf("trusted (%s), want refused", trusted)
	}
	for _, e := range errs {
		if strings.Contains(e.Error(), want) {
			f.t.Logf("refused: %v", e)
			return
		}
	}
	f.t.Fatalf("index errors %v, want one saying %q", errs, want)
}

func TestSignedIndex(t *testing.T) {
	f := newFixture(t, "test")
	f.export("test", f.etc+"/trusted.gpg.d/test.asc")
	repo, deb := f.repo("", "test")
	f.write(f.etc+"/sources.list", "deb file:"+repo+" ./\n")
	ix, errs := f.o.SignedIndex()
	if len(errs) > 0 {
		t.Fatalf("SignedIndex: %v", errs)
	}
	sum, trusted, err := ix.Check(deb, hello, nil)
	if err != nil || trusted != "signed index "+filepath.Join(repo, "InRelease") {
		t.Fatalf("Check of the listed file: %q, %v", trusted, err)
	}
	// The same bytes under another version are not what the index says.
	if _, _, err := ix.Check(deb, Package{Name: "hello", Arch: "all", Version: "2.0"}, nil); err == nil || !strings.Contains(err.Error(), "but as hello=1.0") {
		t.Fatalf("Check of a wrong version: %v", err)
	}
	// A file no index lists: refused, unless its hash is approved.
	other := filepath.Join(t.TempDir(), "hello_1.0_all.deb")
	os.WriteFile(other, []byte("something else"), 0o644)
	osum, _, err := ix.Check(other, hello, nil)
	if err == nil || !strings.Contains(err.Error(), "--approve "+osum) {
		t.Fatalf("Check of an unlisted file: %v", err)
	}
	if _, trusted, err := ix.Check(other, hello, map[string]bool{osum: true}); err != nil || trusted != "approved by the operator" {
		t.Fatalf("Check of an approved file: %q, %v", trusted, err)
	}
	if sum == osum {
		t.Fatal("two files with one hash")
	}
	// Packages changed after signing: its entries are not trusted.
	b, _ := os.ReadFile(filepath.Join(repo, "Packages"))
	os.WriteFile(filepath.Join(repo, "Packages"), bytes.Replace(b, []byte("Version: 1.0"), []byte("Version: 1.1"), 1), 0o644)
	ix, errs = f.o.SignedIndex()
	if ix.Len() != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "SHA-256 differs") {
		t.Fatalf("a tampered Packages file: index %v, errors %v", ix.bySum, errs)
	}
	// InRelease signed by a key apt does not trust.
	os.WriteFile(filepath.Join(repo, "Packages"), b, 0o644)
	os.Remove(f.etc + "/trusted.gpg.d/test.asc")
	os.WriteFile(f.etc+"/trusted.gpg.d/empty.gpg", nil, 0o644)
	if ix, errs = f.o.SignedIndex(); ix.Len() != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "does not verify") {
		t.Fatalf("an untrusted key: index %v, errors %v", ix.bySum, errs)
	}
	// No key at all: said so.
	os.Remove(f.etc + "/trusted.gpg.d/empty.gpg")
	if ix, errs = f.o.SignedIndex(); ix.Len() != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "no apt keyring in "+f.etc+"/trusted.gpg or "+f.etc+"/trusted.gpg.d") {
		t.Fatalf("no key: index %v, errors %v", ix.bySum, errs)
	}
	// The legacy keyring, /etc/apt/trusted.gpg, is trusted as apt does.
	f.export("test", f.etc+"/trusted.gpg")
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
}

// Issue 20, finding 9: an index is checked with the keys its source's
// signed-by names, not with every key of the node. Before, an index signed
// by key B for a source signed-by=A was trusted (B being in trusted.gpg.d).
func TestSignedByHonoured(t *testing.T) {
	f := newFixture(t, "a", "b")
	f.export("a", f.usrShare+"/a.gpg")
	f.export("b", f.etc+"/trusted.gpg.d/b.gpg")
	repo, deb := f.repo("", "b")
	f.write(f.etc+"/sources.list", "deb [arch=amd64 signed-by="+f.usrShare+"/a.gpg] file:"+repo+" ./\n")
	f.wantRefused(deb, filepath.Join(repo, "InRelease")+": signature does not verify with the signed-by of its source "+f.etc+"/sources.list:1 ("+f.usrShare+"/a.gpg)")

	// The same for apt's list of an http source (deb822 this time).
	os.Remove(f.etc + "/sources.list")
	uri := "http://deb.example.invalid/debian"
	list := f.toLists(repo, uri)
	f.write(f.etc+"/sources.list.d/example.sources", "Types: deb\nURIs: "+uri+"\nSuites: ./\nSigned-By: "+f.usrShare+"/a.gpg\n")
	f.wantRefused(deb, list+": signature does not verify with the signed-by of its source")

	// Signed by A: trusted, through the source's keyring only.
	repo, deb = f.repo("", "a")
	list = f.toLists(repo, uri)
	f.wantTrusted(deb, list)
	// A list no source names is checked with apt's trusted keys (B's).
	os.Remove(f.etc + "/sources.list.d/example.sources")
	f.wantRefused(deb, list+": signature does not verify with the apt keyrings")
}

// Issue 20, finding 9: a key in /usr/share/keyrings (a vendor's) vouches
// only for the sources that name it. Before, every key there vouched for
// every index.
func TestVendorKeyOnlyThroughSignedBy(t *testing.T) {
	f := newFixture(t, "vendor", "debian")
	f.export("vendor", f.usrShare+"/vendor.gpg")
	f.export("debian", f.etc+"/trusted.gpg.d/debian.gpg")
	repo, deb := f.repo("", "vendor")
	f.write(f.etc+"/sources.list", "deb file:"+repo+" ./\n")
	f.wantRefused(deb, "signature does not verify with the apt keyrings (trusted.gpg, trusted.gpg.d)")
	f.write(f.etc+"/sources.list", "deb [signed-by="+f.usrShare+"/vendor.gpg] file:"+repo+" ./\n")
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
}

// Issue 20, finding 9: a keyring of removed keys is never trusted, named
// by signed-by or in trusted.gpg.d (even through a symlink). Before,
// debian-archive-removed-keys.gpg in /usr/share/keyrings vouched.
func TestRemovedKeysNeverTrusted(t *testing.T) {
	f := newFixture(t, "old")
	removed := f.usrShare + "/debian-archive-removed-keys.gpg"
	f.export("old", removed)
	repo, deb := f.repo("", "old")
	f.write(f.etc+"/sources.list", "deb [signed-by="+removed+"] file:"+repo+" ./\n")
	f.wantRefused(deb, removed+": a keyring of removed keys is never trusted")

	f.write(f.etc+"/sources.list", "deb file:"+repo+" ./\n")
	f.export("old", f.etc+"/trusted.gpg.d/debian-archive-removed-keys.gpg")
	f.wantRefused(deb, "no apt keyring in")
	os.Remove(f.etc + "/trusted.gpg.d/debian-archive-removed-keys.gpg")
	if err := os.Symlink(removed, f.etc+"/trusted.gpg.d/debian-archive-old.gpg"); err != nil {
		t.Fatal(err)
	}
	f.wantRefused(deb, "no apt keyring in")
}

// Issue 20, finding 9: /etc/apt/keyrings is read through signed-by, a .asc
// key dearmored, as apt does. Before, it was never read.
func TestEtcAptKeyringsThroughSignedBy(t *testing.T) {
	f := newFixture(t, "local")
	f.export("local", f.etc+"/keyrings/local.asc")
	repo, deb := f.repo("", "local")
	f.write(f.etc+"/sources.list.d/local.sources", "Types: deb\nURIs: file:"+repo+"\nSuites: ./\nSigned-By: "+f.etc+"/keyrings/local.asc\n")
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
	// Not named: not trusted, though in /etc/apt/keyrings.
	f.write(f.etc+"/sources.list.d/local.sources", "Types: deb\nURIs: file:"+repo+"\nSuites: ./\n")
	f.wantRefused(deb, "not verified: no apt keyring in "+f.etc+"/trusted.gpg or")
	// A missing keyring: said so.
	f.write(f.etc+"/sources.list.d/local.sources", "Types: deb\nURIs: file:"+repo+"\nSuites: ./\nSigned-By: "+f.etc+"/keyrings/gone.gpg\n")
	f.wantRefused(deb, "signed-by keyring: open "+f.etc+"/keyrings/gone.gpg: no such file or directory")
}

// Issue 20, finding 9: a deb822 Signed-By with the key inline (an armored
// block, its empty line written " ."). Before, it was ignored.
func TestInlineSignedBy(t *testing.T) {
	f := newFixture(t, "inline", "other")
	f.export("other", f.etc+"/trusted.gpg.d/other.gpg")
	var field strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(f.gpg("--armor", "--export", "inline@sentry.invalid")), "\n"), "\n") {
		if l == "" {
			l = "."
		}
		field.WriteString(" " + l + "\n")
	}
	repo, deb := f.repo("", "inline")
	src := "Types: deb\nURIs: file:" + repo + "\nSuites: ./\nSigned-By:\n" + field.String()
	f.write(f.etc+"/sources.list.d/inline.sources", src)
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
	repo2, deb2 := f.repo("", "other")
	f.write(f.etc+"/sources.list.d/inline.sources", strings.Replace(src, repo, repo2, 1))
	f.wantRefused(deb2, "signature does not verify with the signed-by of its source "+f.etc+"/sources.list.d/inline.sources:1 (its key block)")
}

// Signed-by with fingerprints: keys of apt's trusted keyrings, only those
// named.
func TestSignedByFingerprint(t *testing.T) {
	f := newFixture(t, "a", "b")
	f.export("a", f.etc+"/trusted.gpg.d/a.gpg")
	f.export("b", f.etc+"/trusted.gpg.d/b.gpg")
	repo, deb := f.repo("", "b")
	f.write(f.etc+"/sources.list", "deb [signed-by="+f.fingerprint("a")+"] file:"+repo+" ./\n")
	f.wantRefused(deb, "signed by no key its signed-by names ("+f.fingerprint("a"))
	f.write(f.etc+"/sources.list", "deb [signed-by="+strings.ToLower(f.fingerprint("b"))+"!] file:"+repo+" ./\n")
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
}

// As apt: an index signed by two keys, one of which signed-by does not
// hold, is trusted by the other's good signature.
func TestTwoSignaturesOneKnown(t *testing.T) {
	f := newFixture(t, "a", "b")
	f.export("a", f.etc+"/keyrings/a.gpg")
	repo, deb := f.repo("", "a", "b")
	f.write(f.etc+"/sources.list", "deb [signed-by="+f.etc+"/keyrings/a.gpg] file:"+repo+" ./\n")
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
}

// Issue 20, finding 9: a Release past its Valid-Until is refused (unless
// the source says check-valid-until=no, as apt). Before, it was trusted.
func TestValidUntilExpired(t *testing.T) {
	f := newFixture(t, "a")
	f.export("a", f.etc+"/trusted.gpg.d/a.gpg")
	now := time.Date(2024, 2, 10, 9, 54, 56, 0, time.UTC)
	f.o.Now = func() time.Time { return now }
	repo, deb := f.repo("Date: Sat, 03 Feb 2024 09:54:56 UTC\nValid-Until: Sat, 10 Feb 2024 09:00:00 UTC\n", "a")
	f.write(f.etc+"/sources.list", "deb file:"+repo+" ./\n")
	f.wantRefused(deb, filepath.Join(repo, "InRelease")+": expired on Sat, 10 Feb 2024 09:00:00 UTC (Valid-Until), 54m56s ago: not used")
	now = time.Date(2024, 2, 10, 8, 0, 0, 0, time.UTC)
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
	now = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	f.write(f.etc+"/sources.list", "deb [check-valid-until=no] file:"+repo+" ./\n")
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
	// A Valid-Until apt cannot read is refused.
	repo, deb = f.repo("Valid-Until: next week\n", "a")
	f.write(f.etc+"/sources.list", "deb file:"+repo+" ./\n")
	f.wantRefused(deb, `Valid-Until "next week": not a date`)
	// The real clock: a day ago.
	f.o.Now = nil
	repo, deb = f.repo("Valid-Until: "+time.Now().Add(-24*time.Hour).UTC().Format(time.RFC1123)+"\n", "a")
	f.write(f.etc+"/sources.list", "deb file:"+repo+" ./\n")
	f.wantRefused(deb, "(Valid-Until)")
}

// Issue 20, finding 9: a Release dated ahead of the clock by more than
// MaxFuture (apt's 10 s) is refused, unless check-date=no.
func TestDateInFuture(t *testing.T) {
	f := newFixture(t, "a")
	f.export("a", f.etc+"/trusted.gpg.d/a.gpg")
	now := time.Date(2024, 2, 10, 9, 54, 56, 0, time.UTC)
	f.o.Now = func() time.Time { return now }
	repo, deb := f.repo("Date: Sat, 10 Feb 2024 11:54:56 UTC\n", "a")
	f.write(f.etc+"/sources.list", "deb file:"+repo+" ./\n")
	f.wantRefused(deb, "dated Sat, 10 Feb 2024 11:54:56 UTC (Date), 2h0m0s ahead of this node's clock")
	now = now.Add(2*time.Hour - 5*time.Second) // within the skew
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
	now = now.Add(-time.Hour)
	f.write(f.etc+"/sources.list.d/x.sources", "Types: deb\nURIs: file:"+repo+"\nSuites: ./\nCheck-Date: no\n")
	os.Remove(f.etc + "/sources.list")
	f.wantTrusted(deb, filepath.Join(repo, "InRelease"))
}

// Two sources of one index must agree on signed-by (apt refuses them).
func TestSourcesDisagreeOnSignedBy(t *testing.T) {
	f := newFixture(t, "a")
	f.export("a", f.etc+"/keyrings/a.gpg")
	f.export("a", f.etc+"/trusted.gpg.d/a.gpg")
	repo, deb := f.repo("", "a")
	f.write(f.etc+"/sources.list", "deb [signed-by="+f.etc+"/keyrings/a.gpg] file:"+repo+" ./\ndeb-src file:"+repo+" ./\n")
	f.wantRefused(deb, "its sources "+f.etc+"/sources.list:1 and "+f.etc+"/sources.list:2 disagree on signed-by")
}

// Issue 13, defect 8: a dearmored keyring that cannot be written fails the
// verification; gpgv never runs with a keyring cut short or missing.
func TestKeyringWriteFails(t *testing.T) {
	f := newFixture(t, "test")
	f.export("test", f.etc+"/trusted.gpg.d/test.asc")
	repo, _ := f.repo("", "test")
	f.write(f.etc+"/sources.list", "deb file:"+repo+" ./\n")
	dir := t.TempDir()
	marker := filepath.Join(dir, "gpgv-ran")
	f.o.Gpgv = filepath.Join(dir, "gpgv")
	if err := os.WriteFile(f.o.Gpgv, []byte("#!/bin/sh\ntouch "+marker+"\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmps := filepath.Join(dir, "tmp")
	os.Mkdir(tmps, 0o700)
	f.o.createTemp = func(string, string) (*os.File, error) {
		fl, err := os.CreateTemp(tmps, "sentry-keyring-*.gpg")
		if err != nil {
			return nil, err
		}
		fl.Close()
		return os.Open(fl.Name()) // read only: the write fails
	}
	ix, errs := f.o.SignedIndex()
	if ix.Len() != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "test.asc: its dearmored copy for gpgv was not written") {
		t.Fatalf("with an unwritable keyring copy: index %v, errors %v", ix.bySum, errs)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("gpgv ran without the keyring")
	}
	if ents, _ := os.ReadDir(tmps); len(ents) != 0 {
		t.Errorf("the keyring copy stays: %v", ents)
	}
	// No file at all for the copy: the same.
	f.o.createTemp = nil
	f.o.TempDir = filepath.Join(dir, "nowhere")
	if ix, errs := f.o.SignedIndex(); ix.Len() != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "test.asc: no file for its dearmored copy") {
		t.Fatalf("with no folder for the keyring copy: index %v, errors %v", ix.bySum, errs)
	}
}

// The local repositories' files of a package, and an error (ErrSources)
// when the sources cannot be read.
func TestLocalFiles(t *testing.T) {
	f := newFixture(t)
	repo := filepath.Join(t.TempDir(), "repo")
	f.write(filepath.Join(repo, "dists/stable/main/binary-amd64/Packages"), "Package: hello\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/main/h/hello/hello_1.0_amd64.deb\n\n")
	f.write(f.etc+"/sources.list", "deb file://"+repo+" stable main\n# deb file:/elsewhere stable main\n")
	got, err := f.o.LocalFiles(Package{Name: "hello", Arch: "amd64", Version: "1.0"})
	if err != nil || len(got) != 1 || got[0] != filepath.Join(repo, "pool/main/h/hello/hello_1.0_amd64.deb") {
		t.Fatalf("LocalFiles: %v %v", got, err)
	}
	f.write(f.etc+"/sources.list.d/bad.list", "deb [arch=amd64 file:/x stable\n")
	if _, err := f.o.LocalFiles(hello); err == nil || err.Error() != "the local apt repositories are not known: corrupt apt sources: "+f.etc+"/sources.list.d/bad.list:1: options not closed with ]" {
		t.Fatalf("LocalFiles with corrupt sources: %v", err)
	}
}

func TestReleaseSHA256(t *testing.T) {
	rel := "Suite: bookworm\nMD5Sum:\n 0123 10 main/binary-amd64/Packages\nSHA256:\n ABCDEF 12 main/binary-amd64/Packages\n abcd 3 main/binary-amd64/Packages.gz\nAcquire-By-Hash: yes\n"
	m := releaseSHA256([]byte(rel))
	if len(m) != 2 || m["main/binary-amd64/Packages"] != "abcdef" || m["main/binary-amd64/Packages.gz"] != "abcd" {
		t.Fatalf("releaseSHA256 = %v", m)
	}
	f := releaseFields([]byte(rel))
	if f["Suite"] != "bookworm" || f["Acquire-By-Hash"] != "yes" || len(f) != 4 {
		t.Fatalf("releaseFields = %v", f)
	}
}

func TestParseReleaseDate(t *testing.T) {
	want := time.Date(2024, 2, 3, 9, 54, 56, 0, time.UTC)
	for _, s := range []string{"Sat, 03 Feb 2024 09:54:56 UTC", "Sat, 3 Feb 2024 09:54:56 UTC", "Sat, 03 Feb 2024 09:54:56 GMT", "Sat, 03 Feb 2024 09:54:56 +0000", " Sat, 03 Feb 2024 09:54:56 UTC "} {
		if got, err := parseReleaseDate(s); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"Sat, 03 Feb 2024 09:54:56 CET", "Sat, 03 Feb 2024 09:54:56 +0100", "2024-02-03T09:54:56Z", ""} {
		if got, err := parseReleaseDate(s); err == nil {
			t.Errorf("%q read as %v", s, got)
		}
	}
}

// apt's names of its list files (URItoFileName).
func TestListName(t *testing.T) {
	for _, c := range []struct{ uri, suite, want string }{
		{"http://deb.debian.org/debian", "bookworm", "deb.debian.org_debian_dists_bookworm_InRelease"},
		{"http://deb.debian.org/debian/", "bookworm-updates", "deb.debian.org_debian_dists_bookworm-updates_InRelease"},
		{"https://user:secret@apt.example.invalid:8443/repo", "stable", "apt.example.invalid:8443_repo_dists_stable_InRelease"},
		{"http://download.example.invalid/repositories/home:/x/Debian_12", "/", "download.example.invalid_repositories_home:_x_Debian%5f12_InRelease"},
		{"file:/srv/repo", "./", "_srv_repo_._InRelease"},
		{"file:///srv/repo", "./", "_srv_repo_._InRelease"},
		{"tor+http://mirror.example.invalid/debian", "stable", "mirror.example.invalid_debian_dists_stable_InRelease"},
		{"http://apt.example.invalid/debian", "a~b", "apt.example.invalid_debian_dists_a%7eb_InRelease"},
	} {
		if got := listName(metaIndexURI(c.uri, c.suite, "InRelease")); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.uri, c.suite, got, c.want)
		}
	}
}

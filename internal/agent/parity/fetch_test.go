package parity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/apttrust"
	"github.com/sentryha/sentry/internal/stamp"
)

// buildDeb makes a real .deb (dpkg-deb --build) of package name, version
// and architecture, with one data file holding content.
func buildDeb(t *testing.T, dir, name, version, arch, content string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "pkg")
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share/doc", name), 0o755)
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Sentry tests <t@sentry.invalid>\nDescription: a test package\n", name, version, arch)
	os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(control), 0o644)
	os.WriteFile(filepath.Join(root, "usr/share/doc", name, "note"), []byte(content), 0o644)
	out := filepath.Join(dir, name+"_"+version+"_"+arch+".deb")
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, out).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, b)
	}
	return out
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fetchFixture is a node's apt as the lookup sees it: an empty cache, a
// local repository, apt's lists signed by a test key that vouch for
// hello=1.0, and a fake apt-get (a shell script) that "downloads" the
// files it is given and logs each run.
type fetchFixture struct {
	cache, repo, log string
	aptGet, fetchDir string // the fake apt-get, and Options.f.fetchDir
	etc              string // apt's /etc/apt
	signed           string // the .deb the signed lists list
}

func newFetchFixture(t *testing.T) *fetchFixture {
	t.Helper()
	for _, c := range []string{"gpg", "gpgv", "dpkg-deb"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("the fetch test needs %s (apt-get install gpg gpgv dpkg)", c)
		}
	}
	dir := t.TempDir()
	f := &fetchFixture{cache: filepath.Join(dir, "archives"), repo: filepath.Join(dir, "repo"), log: filepath.Join(dir, "apt-get.log"), etc: filepath.Join(dir, "etc")}
	lists, home, etc, pool := filepath.Join(dir, "lists"), filepath.Join(dir, "gnupg"), f.etc, filepath.Join(dir, "pool")
	keys := filepath.Join(etc, "trusted.gpg.d") // trusted for every source without signed-by
	t.Setenv("GNUPGHOME", home)
	for _, d := range []string{f.cache, f.repo, lists, home, keys, filepath.Join(etc, "sources.list.d"), pool} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	f.signed = buildDeb(t, pool, "hello", "1.0", "all", "signed")
	unsigned := buildDeb(t, t.TempDir(), "hello", "1.0", "all", "the same package, other bytes")
	os.Rename(unsigned, filepath.Join(pool, "other_hello_1.0_all.deb"))

	// apt's lists: an InRelease signed by a test key that apt trusts
	// (etc/trusted.gpg.d; no source names the list), listing the
	// Packages file that lists the signed .deb.
	pk := fmt.Sprintf("Package: hello\nVersion: 1.0\nArchitecture: all\nFilename: pool/main/h/hello/hello_1.0_all.deb\nSHA256: %s\n\n", sha256File(t, f.signed))
	prefix := filepath.Join(lists, "deb.example.invalid_debian_dists_test_")
	os.WriteFile(prefix+"main_binary-all_Packages", []byte(pk), 0o644)
	psum := sha256.Sum256([]byte(pk))
	os.WriteFile(filepath.Join(dir, "Release"), []byte(fmt.Sprintf("Suite: test\nSHA256:\n %x %d main/binary-all/Packages\n", psum, len(pk))), 0o644)
	gpg := func(args ...string) {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
	}
	gpg("--quick-gen-key", "test lists <lists@sentry.invalid>", "ed25519", "sign", "never")
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	gpg("--clearsign", "--output", prefix+"InRelease", filepath.Join(dir, "Release"))
	gpg("--armor", "--output", filepath.Join(keys, "test.asc"), "--export", "lists@sentry.invalid")

	// The fake apt-get: "download hello=1.0" copies the signed file,
	// "download hello=1.2" a file that is hello 1.0 (its control fields
	// say so); anything else fails as apt does.
	script := fmt.Sprintf(`#!/bin/sh
echo "$PWD $*" >> %q
[ "$1" = download ] || exit 100
case "$2" in
hello=1.0) cp %q ./hello_1.0_all.deb ;;
hello=1.2) cp %q ./hello_1.2_all.deb ;;
*) echo "E: Version '${2#*=}' for '${2%%%%=*}' was not found" >&2; exit 100 ;;
esac
`, f.log, f.signed, filepath.Join(pool, "other_hello_1.0_all.deb"))
	aptGet := filepath.Join(dir, "apt-get")
	if err := os.WriteFile(aptGet, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(etc, "sources.list"), []byte("deb file:"+f.repo+" ./\n"), 0o644)

	f.aptGet, f.fetchDir = aptGet, filepath.Join(dir, "cache-sentry")
	o := DefaultOptions()
	o.AptArchives, o.AptGet, o.DebFetchDir = f.cache, aptGet, f.fetchDir
	o.Apt = apttrust.Options{EtcDir: etc, ListsDir: lists, TempDir: t.TempDir()}
	o.HardwareDir = testOptions.HardwareDir
	testOptions = o
	t.Cleanup(func() { testOptions = Options{} })
	return f
}

// runs is what the fake apt-get was asked: per run, its folder and
// arguments.
func (f *fetchFixture) runs() [][]string {
	b, _ := os.ReadFile(f.log)
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, strings.Fields(l))
		}
	}
	return out
}

func (f *fetchFixture) fetchDirs(t *testing.T) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(f.fetchDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return ents
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// debForPeer is the file HandleDeb sends for d.
func debForPeer(ctx context.Context, a *testParity, d DebRequest) (string, func(), error) {
	return a.apt.forPeer(ctx, d, a.deps.Self().Role == stamp.RolePrimary)
}

// The primary looks in its apt cache, then its local repositories, and
// only then runs apt-get download.
func TestDebForPeerOrder(t *testing.T) {
	f := newFetchFixture(t)
	a, logs := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, nil, nil)
	hello := DebRequest{Name: "hello", Arch: "all", Version: "1.0"}
	ctx := context.Background()

	// Nowhere here: fetched into a private folder under f.fetchDir,
	// checked against the signed lists.
	path, cleanup, err := debForPeer(ctx, a, hello)
	if err != nil {
		t.Fatalf("fetch: %v\n%s", err, logs)
	}
	if runs := f.runs(); len(runs) != 1 || len(runs[0]) != 3 || runs[0][1] != "download" || runs[0][2] != "hello=1.0" || !strings.HasPrefix(runs[0][0], f.fetchDir+"/deb-") {
		t.Fatalf("apt-get runs %q, want one download hello=1.0 in a folder under %s", runs, f.fetchDir)
	}
	if filepath.Dir(filepath.Dir(path)) != f.fetchDir || sha256File(t, path) != sha256File(t, f.signed) {
		t.Fatalf("fetched file %s", path)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the fetch folder is not private: %v %v", fi.Mode(), err)
	}
	for _, want := range []string{"fetching it", "package fetched", "command=\"" + f.aptGet + " download hello=1.0\"", "fetched package checked"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}
	cleanup()
	if ents := f.fetchDirs(t); len(ents) != 0 {
		t.Errorf("left in %s after cleanup: %v", f.fetchDir, ents)
	}

	// In a local repository: taken from there, no apt-get.
	os.Remove(f.log)
	copyFile(t, f.signed, filepath.Join(f.repo, "hello_1.0_all.deb"))
	os.WriteFile(filepath.Join(f.repo, "Packages"), []byte("Package: hello\nVersion: 1.0\nArchitecture: all\nFilename: ./hello_1.0_all.deb\n\n"), 0o644)
	if path, _, err := debForPeer(ctx, a, hello); err != nil || path != filepath.Join(f.repo, "hello_1.0_all.deb") || len(f.runs()) != 0 {
		t.Fatalf("with the file in the local repository: %s, %v, apt-get runs %q", path, err, f.runs())
	}
	// In the apt cache: taken from there first.
	copyFile(t, f.signed, filepath.Join(f.cache, "hello_1.0_all.deb"))
	if path, _, err := debForPeer(ctx, a, hello); err != nil || path != filepath.Join(f.cache, "hello_1.0_all.deb") || len(f.runs()) != 0 {
		t.Fatalf("with the file in the cache: %s, %v, apt-get runs %q", path, err, f.runs())
	}

	// A secondary does not fetch.
	os.Remove(filepath.Join(f.cache, "hello_1.0_all.deb"))
	os.Remove(filepath.Join(f.repo, "hello_1.0_all.deb"))
	sec, _ := parityAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB, nil, nil)
	if _, _, err := debForPeer(ctx, sec, hello); err == nil || !strings.Contains(err.Error(), "no .deb of hello:all=1.0") || len(f.runs()) != 0 {
		t.Fatalf("on the secondary: %v, apt-get runs %q", err, f.runs())
	}
}

func TestDebForPeerFetchFails(t *testing.T) {
	f := newFetchFixture(t)
	a, logs := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, nil, nil)
	ctx := context.Background()

	// apt-get has no such version: the error names package and version,
	// and what apt-get said.
	_, _, err := debForPeer(ctx, a, DebRequest{Name: "hello", Arch: "all", Version: "2.0"})
	if err == nil || !strings.Contains(err.Error(), "package hello version 2.0") || !strings.Contains(err.Error(), "E: Version '2.0' for 'hello' was not found") {
		t.Fatalf("a failed download: %v", err)
	}
	if !strings.Contains(logs.String(), "apt-get download failed") {
		t.Errorf("the failure is not logged:\n%s", logs)
	}
	// A file that is not the package asked for (its control fields say
	// 1.0): refused.
	_, _, err = debForPeer(ctx, a, DebRequest{Name: "hello", Arch: "all", Version: "1.2"})
	if err == nil || !strings.Contains(err.Error(), "is hello:all=1.0, not hello:all=1.2") {
		t.Fatalf("a download of another version: %v", err)
	}
	// The right package, but bytes no signed index lists: not sent.
	os.WriteFile(f.aptGet, []byte(fmt.Sprintf("#!/bin/sh\ncp %q ./hello_1.0_all.deb\n", filepath.Join(filepath.Dir(f.signed), "other_hello_1.0_all.deb"))), 0o755)
	_, _, err = debForPeer(ctx, a, DebRequest{Name: "hello", Arch: "all", Version: "1.0"})
	if err == nil || !strings.Contains(err.Error(), "not sent") || !strings.Contains(err.Error(), "in no signed apt index") {
		t.Fatalf("an unlisted download: %v", err)
	}
	if ents := f.fetchDirs(t); len(ents) != 0 {
		t.Errorf("failed fetches left %v in %s", ents, f.fetchDir)
	}
}

// The peer's request, end to end on the primary: fetched, sent with its
// SHA-256, and the fetched file removed after.
func TestHandleDebFetches(t *testing.T) {
	f := newFetchFixture(t)
	a, _ := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, nil, nil)
	rec := httptest.NewRecorder()
	a.HandleDeb(rec, httptest.NewRequest(http.MethodPost, "/v1/parity/deb", strings.NewReader(`{"name":"hello","arch":"all","version":"1.0"}`)))
	if rec.Code != http.StatusOK || rec.Header().Get("X-Sentry-Deb-SHA256") != sha256File(t, f.signed) || rec.Header().Get("X-Sentry-Deb-Filename") != "hello_1.0_all.deb" {
		t.Fatalf("answer %d %v", rec.Code, rec.Header())
	}
	if sum := sha256.Sum256(rec.Body.Bytes()); hex.EncodeToString(sum[:]) != sha256File(t, f.signed) {
		t.Fatal("the body is not the fetched file")
	}
	if ents := f.fetchDirs(t); len(ents) != 0 {
		t.Errorf("the fetched file stays after sending: %v", ents)
	}
	rec = httptest.NewRecorder()
	a.HandleDeb(rec, httptest.NewRequest(http.MethodPost, "/v1/parity/deb", strings.NewReader(`{"name":"hello","arch":"all","version":"3.0"}`)))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "package hello version 3.0") {
		t.Fatalf("a package apt-get cannot fetch: %d %s", rec.Code, rec.Body)
	}
}

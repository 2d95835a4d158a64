package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/lab"
)

// previousRelease is the release before peer protocol 3 (it speaks 2):
// the mixed pairs run its agent on one node, built from this checkout's
// history. previousVersion is the version it reports, its version in the
// package history (packaging/previous-release).
const (
	previousRelease = "aa90d47"
	previousVersion = "0.1.0"
)

// previousReleaseBin is the sentry binary of previousRelease, built once
// and kept in the lab's cache folder (lab.DefaultCacheDir/old-<commit>-<version>/
// sentry): the source comes out of this checkout's git history (git
// archive, untarred into a folder beside it), and `go build` makes it
// with this machine's Go and module cache. SENTRY_E2E_PREVIOUS names a
// binary built elsewhere instead. (safe.directory: the tests run as root
// in a checkout another user may own.)
func previousReleaseBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SENTRY_E2E_PREVIOUS"); p != "" {
		return p
	}
	dir := filepath.Join(lab.DefaultCacheDir, "old-"+previousRelease+"-"+previousVersion)
	bin := filepath.Join(dir, "sentry")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin
	}
	out, err := exec.Command("git", "-c", "safe.directory=*", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("the previous release is built from this checkout's history: git rev-parse: %v", err)
	}
	root := strings.TrimSpace(string(out))
	if err := exec.Command("git", "-c", "safe.directory=*", "-C", root, "cat-file", "-e", previousRelease+"^{commit}").Run(); err != nil {
		t.Fatalf("commit %s is not in this checkout (a shallow clone? git fetch --unshallow), or set SENTRY_E2E_PREVIOUS to its sentry binary", previousRelease)
	}
	// Built in a folder of its own, then renamed: a build cut short
	// leaves no binary that looks finished.
	tmp := dir + ".tmp"
	src := filepath.Join(tmp, "src")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := gitExport(root, previousRelease, src); err != nil {
		t.Fatalf("exporting %s: %v", previousRelease, err)
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(tmp, "sentry"),
		"-ldflags", "-X main.version="+previousVersion, "./sentry")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sentry %s: %v\n%s", previousRelease, err, b)
	}
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("built sentry %s into %s", previousRelease, bin)
	return bin
}

// gitExport writes the tree of commit in repository root into dir:
// `git archive commit | tar -x -C dir`.
func gitExport(root, commit, dir string) error {
	archive := exec.Command("git", "-c", "safe.directory=*", "-C", root, "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", dir)
	pr, pw := io.Pipe()
	var aerr, terr strings.Builder
	archive.Stdout, archive.Stderr = pw, &aerr
	untar.Stdin, untar.Stderr = pr, &terr
	if err := untar.Start(); err != nil {
		return err
	}
	err := archive.Run()
	pw.CloseWithError(err)
	if werr := untar.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("tar: %w: %s", werr, terr.String())
	}
	if err != nil && aerr.Len() > 0 {
		err = fmt.Errorf("%w: %s", err, aerr.String())
	}
	return err
}

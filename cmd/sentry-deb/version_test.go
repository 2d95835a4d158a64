package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dpkgLess says whether dpkg sorts a below b.
func dpkgLess(t *testing.T, a, b string) bool {
	t.Helper()
	err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run()
	if err == nil {
		return true
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return false
	}
	t.Fatalf("dpkg --compare-versions %s lt %s: %v", a, b, err)
	return false
}

func needDpkg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
}

// checkAscending checks that dpkg sorts vs in the order given, each one
// strictly above the one before, and that each is a version dpkg takes.
func checkAscending(t *testing.T, vs []string) {
	t.Helper()
	for i, v := range vs {
		if err := debVersion(v); err != nil {
			t.Errorf("version %d: %v", i, err)
		}
		if i > 0 && !dpkgLess(t, vs[i-1], v) {
			t.Errorf("dpkg does not sort %s below %s", vs[i-1], v)
		}
		if i > 0 && dpkgLess(t, v, vs[i-1]) {
			t.Errorf("dpkg sorts %s below %s", v, vs[i-1])
		}
	}
}

func TestFormatVersionSortsInDpkgOrder(t *testing.T) {
	needDpkg(t)
	day := func(s string) time.Time {
		d, err := time.Parse("2006-01-02", s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	vs := []string{
		"0.0.9",
		FormatVersion("0.1.0", day("2026-11-01"), 0, "aa90d47"), // the release itself
		FormatVersion("0.1.0", day("2026-11-01"), 1, "fffffff"),
		FormatVersion("0.1.0", day("2026-11-01"), 2, "0000000"), // a lower sha, a later commit
		FormatVersion("0.1.0", day("2026-11-01"), 9, "abcdef0"),
		FormatVersion("0.1.0", day("2026-11-01"), 10, "1234567"), // 10 after 9, not after 1
		FormatVersion("0.1.0", day("2026-11-02"), 11, "0a0a0a0"),
		FormatVersion("0.1.0", day("2027-01-01"), 119, "c944490"),
		"0.1.1",
		FormatVersion("0.1.1", day("2027-01-02"), 1, "9999999"),
		"0.2.0",
		"0.10.0",
		"1.0.0",
	}
	if vs[1] != "0.1.0" {
		t.Errorf("the release commit's version is %q, want 0.1.0", vs[1])
	}
	if want := "0.1.0+git20261101.1.fffffff"; vs[2] != want {
		t.Errorf("FormatVersion = %q, want %q", vs[2], want)
	}
	checkAscending(t, vs)
}

func TestParsePreviousRelease(t *testing.T) {
	data, err := os.ReadFile("../../" + PreviousReleaseFile)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := ParsePreviousRelease(data)
	if err != nil {
		t.Fatalf("%s: %v", PreviousReleaseFile, err)
	}
	t.Logf("%s: release %s, commit %s", PreviousReleaseFile, rel.Version, rel.Commit)
	for _, bad := range []string{
		"",
		"# only a comment\n",
		"0.1.0\n",
		"v0.1.0 aa90d47\n",
		"0.1.0 xyz\n",
		"0.1.0 aa90d47\n0.2.0 bb90d47\n",
		"0.1.0 aa90d47 extra\n",
	} {
		if _, err := ParsePreviousRelease([]byte(bad)); err == nil {
			t.Errorf("ParsePreviousRelease(%q): no error", bad)
		}
	}
}

// gitRepo is a repository in a temporary folder whose commits have the
// dates given.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("", "init", "-q", "-b", "main")
	return r
}

func (r *gitRepo) git(date string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir, "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	if date != "" {
		cmd.Env = append(cmd.Env, "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit makes a commit on date (RFC 3339) and returns its short id.
func (r *gitRepo) commit(date, file, content string) string {
	r.t.Helper()
	p := filepath.Join(r.dir, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git(date, "add", "-A")
	r.git(date, "commit", "-q", "-m", "change "+file)
	return r.git("", "rev-parse", "--short=7", "HEAD")
}

func (r *gitRepo) version() string {
	r.t.Helper()
	c, err := VersionOf(r.dir)
	if err != nil {
		r.t.Fatalf("VersionOf: %v", err)
	}
	return c.Version
}

func TestVersionOfGitHistory(t *testing.T) {
	needDpkg(t)
	r := newGitRepo(t)
	r.commit("2026-10-30T12:00:00Z", "a", "before the release\n")
	rel := r.commit("2026-10-31T23:30:00+02:00", "b", "the release\n")
	// The file recording the release comes in a later commit.
	c1 := r.commit("2026-11-01T09:00:00Z", PreviousReleaseFile, "# the previous release\n0.1.0 "+rel+"\n")
	var got []string
	got = append(got, r.version())
	c2 := r.commit("2026-11-01T10:00:00Z", "c", "one more\n")
	got = append(got, r.version())
	c3 := r.commit("2026-11-03T23:59:59-05:00", "d", "a late one (UTC: the 4th)\n")
	got = append(got, r.version())
	want := []string{
		"0.1.0+git20261101.1." + c1,
		"0.1.0+git20261101.2." + c2,
		"0.1.0+git20261104.3." + c3,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("version %d: %q, want %q", i, got[i], want[i])
		}
	}

	// The release commit itself, checked out: 0.1.0 (its file not there
	// yet is no matter: the version comes from the checkout's HEAD and
	// the file read from the working tree's top).
	r.git("", "checkout", "-q", rel)
	os.MkdirAll(filepath.Join(r.dir, "packaging"), 0o755)
	os.WriteFile(filepath.Join(r.dir, PreviousReleaseFile), []byte("0.1.0 "+rel+"\n"), 0o644)
	if v := r.version(); v != "0.1.0" {
		t.Errorf("the release commit: version %q, want 0.1.0", v)
	}
	os.Remove(filepath.Join(r.dir, PreviousReleaseFile))
	r.git("", "checkout", "-q", "main")

	// A tagged release is its tag; a commit after it counts from it,
	// although the file still names 0.1.0.
	r.git("", "tag", "v0.2.0")
	if v := r.version(); v != "0.2.0" {
		t.Errorf("the commit tagged v0.2.0: version %q, want 0.2.0", v)
	}
	got = append(got, r.version())
	c4 := r.commit("2026-11-05T08:00:00Z", "e", "after the tag\n")
	v := r.version()
	if want := "0.2.0+git20261105.1." + c4; v != want {
		t.Errorf("after the tag: version %q, want %q", v, want)
	}
	got = append(got, v)
	checkAscending(t, append([]string{"0.1.0"}, got...))
}

func TestVersionOfRefusesAReleaseNotBehindHead(t *testing.T) {
	r := newGitRepo(t)
	r.commit("2026-11-01T09:00:00Z", PreviousReleaseFile, "0.1.0 1234567\n")
	if c, err := VersionOf(r.dir); err == nil {
		t.Fatalf("VersionOf with an unknown release commit: %q, no error", c.Version)
	}
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PreviousReleaseFile records the previous release's version and commit,
// relative to the repository's top folder.
const PreviousReleaseFile = "packaging/previous-release"

// Release is a released version and its commit.
type Release struct {
	Version string
	Commit  string
}

// releaseVersion is a release's version: digits and dots, starting and
// ending with a digit (0.1.0, 1.2).
var releaseVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// ParsePreviousRelease reads the file's one line "VERSION COMMIT" (blank
// lines and # comments aside).
func ParsePreviousRelease(data []byte) (Release, error) {
	var rels []Release
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return Release{}, fmt.Errorf("line %d: want \"VERSION COMMIT\", got %q", n, line)
		}
		if !releaseVersion.MatchString(f[0]) {
			return Release{}, fmt.Errorf("line %d: version %q is not digits and dots (0.1.0)", n, f[0])
		}
		if !regexp.MustCompile(`^[0-9a-f]{7,40}$`).MatchString(f[1]) {
			return Release{}, fmt.Errorf("line %d: commit %q is not a hexadecimal commit id", n, f[1])
		}
		rels = append(rels, Release{Version: f[0], Commit: f[1]})
	}
	if len(rels) != 1 {
		return Release{}, fmt.Errorf("want one release line, found %d", len(rels))
	}
	return rels[0], nil
}

// FormatVersion is the version of a commit n commits after the release
// base, made on date (UTC), with the short commit id sha:
// BASE+gitYYYYMMDD.N.SHA. n 0 is the release itself: BASE. dpkg sorts
// the versions of later commits higher (the date first, then n), all of
// them above BASE and below the next release.
func FormatVersion(base string, date time.Time, n int, sha string) string {
	if n == 0 {
		return base
	}
	return fmt.Sprintf("%s+git%s.%d.%s", base, date.UTC().Format("20060102"), n, sha)
}

// Commit is what the version of a build says of its commit.
type Commit struct {
	Version string
	// Time is the commit's time: the package's files carry it, so that
	// two builds of a commit are the same package.
	Time time.Time
	// Short is the commit's short id.
	Short string
}

// git runs git in dir and returns its output, trimmed.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// VersionOf is the package version of the commit checked out in repo
// (HEAD): a tag vX.Y.Z on it makes it X.Y.Z; else the newest of the
// release recorded in PreviousReleaseFile and the newest vX.Y.Z tag behind
// HEAD is the base of FormatVersion.
func VersionOf(repo string) (Commit, error) {
	top, err := git(repo, "rev-parse", "--show-toplevel")
	if err != nil {
		return Commit{}, err
	}
	var c Commit
	if c.Short, err = git(top, "rev-parse", "--short=7", "HEAD"); err != nil {
		return Commit{}, err
	}
	ts, err := git(top, "show", "-s", "--format=%ct", "HEAD")
	if err != nil {
		return Commit{}, err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Commit{}, fmt.Errorf("commit time %q: %v", ts, err)
	}
	c.Time = time.Unix(sec, 0).UTC()

	// A release: its tag.
	if tags, err := git(top, "tag", "--points-at", "HEAD", "--list", "v[0-9]*"); err == nil {
		for _, t := range strings.Fields(tags) {
			if v := strings.TrimPrefix(t, "v"); releaseVersion.MatchString(v) {
				c.Version = v
				return c, nil
			}
		}
	}

	data, err := os.ReadFile(filepath.Join(top, PreviousReleaseFile))
	if err != nil {
		return Commit{}, err
	}
	rel, err := ParsePreviousRelease(data)
	if err != nil {
		return Commit{}, fmt.Errorf("%s: %w", PreviousReleaseFile, err)
	}
	base, baseCommit := rel.Version, rel.Commit
	if _, err := git(top, "merge-base", "--is-ancestor", baseCommit, "HEAD"); err != nil {
		return Commit{}, fmt.Errorf("%s: release %s (commit %s) is not behind HEAD (a shallow clone?): %w", PreviousReleaseFile, base, baseCommit, err)
	}
	// A release tagged after the one recorded (the file not updated yet).
	if tag, err := git(top, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", "HEAD"); err == nil {
		if v := strings.TrimPrefix(tag, "v"); releaseVersion.MatchString(v) {
			if _, err := git(top, "merge-base", "--is-ancestor", baseCommit, tag+"^{commit}"); err == nil {
				base, baseCommit = v, tag+"^{commit}"
			}
		}
	}
	count, err := git(top, "rev-list", "--count", baseCommit+"..HEAD")
	if err != nil {
		return Commit{}, err
	}
	n, err := strconv.Atoi(count)
	if err != nil {
		return Commit{}, fmt.Errorf("commit count %q: %v", count, err)
	}
	c.Version = FormatVersion(base, c.Time, n, c.Short)
	return c, nil
}

// errNoVersion is returned for a version dpkg would not take.
var errNoVersion = errors.New("not a Debian version")

// debVersion checks v against Debian policy's upstream_version rule (no
// epoch, no revision): it starts with a digit and holds only
// alphanumerics and . + ~.
func debVersion(v string) error {
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(v) {
		return fmt.Errorf("%q: %w", v, errNoVersion)
	}
	return nil
}

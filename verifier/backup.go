package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// BackupParams are the backup probe's parameters: path, restic_repo or
// both (one of them is required).
type BackupParams struct {
	Path       string `param:"path,abs"`
	ResticRepo string `param:"restic_repo"`
	// ResticPasswordFile is the file restic reads the repository's
	// password from: required with restic_repo.
	ResticPasswordFile string        `param:"restic_password_file,abs"`
	MaxAge             time.Duration `param:"max_age,positive"` // default 26h
	// Restic is the restic program run for a restic_repo, looked up in
	// PATH unless it has a slash; not a manifest key (tests set it).
	Restic string `param:"-"`
}

func (*BackupParams) probeParams() {}

const defaultMaxAge = 26 * time.Hour

// Check: path or restic_repo, and restic_repo with its password file.
func (p *BackupParams) Check() error {
	if p.Path == "" && p.ResticRepo == "" {
		return &ParamError{Key: "path", Message: "missing (or restic_repo, for a restic repository)"}
	}
	if p.ResticRepo != "" && p.ResticPasswordFile == "" {
		return &ParamError{Key: "restic_password_file", Message: "missing (restic_repo needs it)"}
	}
	return nil
}

// probeBackup fails when the newest backup is older than max_age: the
// newest file under path, the newest snapshot of a restic repository, or
// both when both are given.
//
// restic runs as `RESTIC_REPOSITORY=REPO restic --password-file FILE --no-lock --no-cache
// snapshots --latest 1 --json` under the probe's deadline: the password is
// never on a command line, in the environment or in a log, and the probe
// leaves no lock in the repository (a probe cut off at its deadline would
// otherwise leave a stale one that blocks a prune).
func probeBackup(ctx context.Context, p *BackupParams, rec *Recorder) error {
	path, repo, pwFile, maxAge := p.Path, p.ResticRepo, p.ResticPasswordFile, p.MaxAge
	if path != "" {
		if err := rec.Phase("newest file", func() error { return newestFile(ctx, path, maxAge, rec) }); err != nil {
			return err
		}
	}
	if repo != "" {
		return rec.Phase("restic snapshots", func() error { return newestSnapshot(ctx, p.Restic, repo, pwFile, maxAge, rec) })
	}
	return nil
}

func newestFile(ctx context.Context, path string, maxAge time.Duration, rec *Recorder) error {
	var newest time.Time
	err := filepath.WalkDir(path, func(q string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if newest.IsZero() {
		return fmt.Errorf("no file under %s", path)
	}
	age := time.Since(newest)
	rec.Set("age", age.Round(time.Minute).String())
	if age > maxAge {
		return fmt.Errorf("the newest backup under %s is %s old (more than %s)", path, age.Round(time.Minute), maxAge)
	}
	return nil
}

// resticSnapshot is the part of restic's JSON snapshot the probe reads.
type resticSnapshot struct {
	Time     time.Time `json:"time"`
	ShortID  string    `json:"short_id"`
	Hostname string    `json:"hostname"`
}

// maxResticOutput bounds what the probe keeps of restic's output.
const maxResticOutput = 4 << 20

func newestSnapshot(ctx context.Context, restic, repo, pwFile string, maxAge time.Duration, rec *Recorder) error {
	shown := redactURL(repo)
	if restic == "" {
		restic = "restic"
	}
	bin, err := exec.LookPath(restic)
	if err != nil {
		return fmt.Errorf("restic_repo is set but restic is not installed (%s: %v): apt-get install restic", restic, unwrapExec(err))
	}
	// The repository goes in the environment, not on the command line: a
	// URL may carry a password, and any local account can read argv.
	cmd := exec.CommandContext(ctx, bin, "--password-file", pwFile, "--no-lock", "--no-cache",
		"snapshots", "--latest", "1", "--json")
	cmd.Env = append(resticEnv(os.Environ()), "RESTIC_REPOSITORY="+repo)
	cmd.WaitDelay = time.Second
	var stdout, stderr capped
	stdout.n, stderr.n = maxResticOutput, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	rec.Log().Debug("restic snapshots", "restic", bin, "repo", shown, "password_file", pwFile)
	err = cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("restic did not answer about %s: %w", shown, ctx.Err())
	}
	if err != nil {
		line := firstLine(stderr.String())
		if line == "" {
			line = "(nothing on stderr)"
		}
		rec.Log().Debug("restic failed", "err", err, "stderr", redactURL(stderr.String()))
		return fmt.Errorf("restic %s: %s (repository %s)", unwrapExec(err), redactURL(line), shown)
	}
	if stdout.over {
		return fmt.Errorf("restic's answer about %s is longer than %d bytes", shown, maxResticOutput)
	}
	snaps, err := parseSnapshots(stdout.Bytes())
	if err != nil {
		return fmt.Errorf("restic's answer about %s: %w", shown, err)
	}
	if len(snaps) == 0 {
		return fmt.Errorf("no snapshot in the restic repository %s", shown)
	}
	newest := snaps[0]
	for _, s := range snaps[1:] {
		if s.Time.After(newest.Time) {
			newest = s
		}
	}
	age := time.Since(newest.Time)
	if age < 0 {
		age = 0 // a clock ahead of this one: the snapshot is fresh
	}
	rec.Set("snapshot", newest.ShortID)
	rec.Set("snapshot_age", age.Round(time.Second).String())
	if age > maxAge {
		return fmt.Errorf("the newest snapshot in %s (%s of %s, at %s) is %s old (more than %s)",
			shown, newest.ShortID, newest.Hostname, newest.Time.UTC().Format(time.RFC3339), age.Round(time.Second), maxAge)
	}
	return nil
}

// parseSnapshots reads `restic snapshots --json`: a list of snapshots, or
// (with grouping, as some restic versions default to) a list of groups
// each with its snapshots.
func parseSnapshots(b []byte) ([]resticSnapshot, error) {
	var items []struct {
		resticSnapshot
		Snapshots []resticSnapshot `json:"snapshots"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &items); err != nil {
		return nil, fmt.Errorf("not a JSON list of snapshots: %w", err)
	}
	var out []resticSnapshot
	for _, it := range items {
		for _, s := range it.Snapshots {
			if !s.Time.IsZero() {
				out = append(out, s)
			}
		}
		if !it.Time.IsZero() {
			out = append(out, it.resticSnapshot)
		}
	}
	return out, nil
}

// resticEnv is the environment restic runs with: this process's, without
// the RESTIC_ variables that would name another repository or password.
func resticEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "RESTIC_PASSWORD") || strings.HasPrefix(kv, "RESTIC_REPOSITORY") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// urlPassword matches the password of a URL's user info (rest:https://u:p@host/).
var urlPassword = regexp.MustCompile(`(://[^/@:\s]*):[^/@\s]*@`)

// redactURL hides a password written into a repository URL.
func redactURL(s string) string { return urlPassword.ReplaceAllString(s, "$1:***@") }

// firstLine is the first line of restic's stderr that says why (a
// "Fatal:" line), else its first non-empty line.
func firstLine(s string) string {
	first := ""
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "Fatal:") {
			return l
		}
		if first == "" {
			first = l
		}
	}
	return first
}

// unwrapExec turns an exec error into its short form ("exit status 1").
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// capped is a buffer that keeps the first n bytes and notes the rest.
type capped struct {
	bytes.Buffer
	n    int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.n - c.Len(); len(p) > room {
		c.over = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

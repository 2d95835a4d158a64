// Package restic runs restic against one repository, the way Sentry must:
// the repository in the environment and the password in a file (never on
// a command line, where any local account reads it), a URL's password
// hidden in every message, output bounded, no cache written. The backup
// probe (verifier) reads the newest snapshot with it; the weekly restore
// test (Test) checks a slice of the data and restores a sample of files.
package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Repo is one repository and how restic reaches it.
type Repo struct {
	// Bin is the restic program, looked up in PATH unless it has a slash
	// ("" is "restic").
	Bin string
	// URL is the repository (a path, sftp:..., rest:https://u:p@host/...).
	URL string
	// PasswordFile holds the repository's password.
	PasswordFile string
}

// Shown is the repository as messages name it: a URL's password hidden.
func (r Repo) Shown() string { return RedactURL(r.URL) }

// MaxOutput bounds what is kept of restic's standard output.
const MaxOutput = 4 << 20

// Error is restic's failure: the command, how it ended and the line of its
// standard error that says why.
type Error struct {
	Command string // "check", "restore", ...
	Repo    string // shown (redacted)
	Exit    string // "exit status 1"
	Line    string // the Fatal: line, else the first line of stderr
	Stderr  string // all of stderr (bounded, redacted), for the log
}

func (e *Error) Error() string {
	return fmt.Sprintf("restic %s: %s: %s (repository %s)", e.Command, e.Exit, e.Line, e.Repo)
}

// Locked says whether restic failed because the repository is locked.
func (e *Error) Locked() bool {
	return strings.Contains(e.Stderr, "repository is already locked") || strings.Contains(e.Stderr, "unable to create lock")
}

// Run runs `restic --password-file F --no-cache [--no-lock] ARGS...` and
// returns its standard output. Without noLock restic takes its own lock.
func (r Repo) Run(ctx context.Context, noLock bool, args ...string) ([]byte, error) {
	return r.RunTo(ctx, nil, noLock, args...)
}

// RunTo is Run with standard output written to w (nil: returned, up to
// MaxOutput).
func (r Repo) RunTo(ctx context.Context, w io.Writer, noLock bool, args ...string) ([]byte, error) {
	name := r.Bin
	if name == "" {
		name = "restic"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("restic is not installed (%s: %v): apt-get install restic", name, unwrapExec(err))
	}
	full := []string{"--password-file", r.PasswordFile, "--no-cache"}
	if noLock {
		full = append(full, "--no-lock")
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(Env(os.Environ()), "RESTIC_REPOSITORY="+r.URL)
	cmd.WaitDelay = time.Second
	var stdout, stderr Capped
	stdout.N, stderr.N = MaxOutput, 64<<10
	cmd.Stderr = &stderr
	if w != nil {
		cmd.Stdout = w
	} else {
		cmd.Stdout = &stdout
	}
	err = cmd.Run()
	what := "(no command)"
	if len(args) > 0 {
		what = args[0]
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("restic %s did not finish on %s: %w", what, r.Shown(), ctx.Err())
	}
	if err != nil {
		line := FirstLine(stderr.String())
		if line == "" {
			line = "(nothing on stderr)"
		}
		return nil, &Error{Command: what, Repo: r.Shown(), Exit: unwrapExec(err).Error(), Line: RedactURL(line), Stderr: RedactURL(stderr.String())}
	}
	if stdout.Over {
		return nil, fmt.Errorf("restic %s: its answer about %s is longer than %d bytes", what, r.Shown(), MaxOutput)
	}
	return stdout.Bytes(), nil
}

// Snapshot is the part of restic's JSON snapshot Sentry reads.
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Paths    []string  `json:"paths"`
}

// Newest is the newest snapshot (ok false: the repository has none).
func (r Repo) Newest(ctx context.Context) (Snapshot, bool, error) {
	out, err := r.Run(ctx, true, "snapshots", "--latest", "1", "--json")
	if err != nil {
		return Snapshot{}, false, err
	}
	snaps, err := ParseSnapshots(out)
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("restic's answer about %s: %w", r.Shown(), err)
	}
	if len(snaps) == 0 {
		return Snapshot{}, false, nil
	}
	newest := snaps[0]
	for _, s := range snaps[1:] {
		if s.Time.After(newest.Time) {
			newest = s
		}
	}
	return newest, true, nil
}

// ParseSnapshots reads `restic snapshots --json`: a list of snapshots, or
// (with grouping, as some restic versions default to) a list of groups
// each with its snapshots.
func ParseSnapshots(b []byte) ([]Snapshot, error) {
	var items []struct {
		Snapshot
		Snapshots []Snapshot `json:"snapshots"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &items); err != nil {
		return nil, fmt.Errorf("not a JSON list of snapshots: %w", err)
	}
	var out []Snapshot
	for _, it := range items {
		for _, s := range it.Snapshots {
			if !s.Time.IsZero() {
				out = append(out, s)
			}
		}
		if !it.Time.IsZero() {
			out = append(out, it.Snapshot)
		}
	}
	return out, nil
}

// Env is the environment restic runs with: this process's, without the
// RESTIC_ variables that would name another repository or password.
func Env(env []string) []string {
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

// RedactURL hides a password written into a repository URL.
func RedactURL(s string) string { return urlPassword.ReplaceAllString(s, "$1:***@") }

// FirstLine is the first line of restic's stderr that says why (a
// "Fatal:" line), else its first non-empty line.
func FirstLine(s string) string {
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

// Capped is a buffer that keeps the first N bytes and notes the rest.
type Capped struct {
	bytes.Buffer
	N    int
	Over bool
}

func (c *Capped) Write(p []byte) (int, error) {
	if room := c.N - c.Buffer.Len(); room < len(p) {
		c.Over = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

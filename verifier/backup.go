package verifier

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/restic"
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

func newestSnapshot(ctx context.Context, bin, url, pwFile string, maxAge time.Duration, rec *Recorder) error {
	repo := restic.Repo{Bin: bin, URL: url, PasswordFile: pwFile}
	shown := repo.Shown()
	rec.Log().Debug("restic snapshots", "restic", bin, "repo", shown, "password_file", pwFile)
	newest, ok, err := repo.Newest(ctx)
	var re *restic.Error
	switch {
	case errors.As(err, &re):
		rec.Log().Debug("restic failed", "err", re.Exit, "stderr", re.Stderr)
		return fmt.Errorf("restic %s: %s (repository %s)", re.Exit, re.Line, shown)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("restic did not answer about %s: %w", shown, ctx.Err())
	case err != nil && strings.HasPrefix(err.Error(), "restic is not installed"):
		return fmt.Errorf("restic_repo is set but %w", err)
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("no snapshot in the restic repository %s", shown)
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

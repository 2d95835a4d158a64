package restic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Lock is a lock held in the repository (restic cat lock).
type Lock struct {
	ID        string    `json:"-"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	PID       int       `json:"pid"`
}

// String says who holds the lock and since when.
func (l Lock) String() string {
	kind := "a lock"
	if l.Exclusive {
		kind = "an exclusive lock"
	}
	return fmt.Sprintf("%s of PID %d on %s since %s", kind, l.PID, l.Hostname, l.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// Locks are the locks held in the repository now (read without a lock).
func (r Repo) Locks(ctx context.Context) ([]Lock, error) {
	out, err := r.Run(ctx, true, "list", "locks")
	if err != nil {
		return nil, err
	}
	var locks []Lock
	for _, id := range strings.Fields(string(out)) {
		b, err := r.Run(ctx, true, "cat", "lock", id)
		if err != nil {
			var re *Error
			if errors.As(err, &re) && strings.Contains(re.Stderr, "not exist") {
				continue // released between the list and the read
			}
			return nil, err
		}
		l := Lock{ID: id}
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("restic cat lock %.8s on %s: %w", id, r.Shown(), err)
		}
		locks = append(locks, l)
	}
	return locks, nil
}

// checkGroup is restic check's line about the data it read.
var checkGroup = regexp.MustCompile(`read group #(\d+) of (\d+) data packs`)

// CheckSubset runs `restic check --read-data-subset=K/N` without a lock,
// so that a backup starting meanwhile is not refused (restic 0.14's check
// would otherwise hold an exclusive lock). It returns how many data packs
// it read. Call it only when Locks found no lock: a prune running under
// it could make it report packs it removed.
func (r Repo) CheckSubset(ctx context.Context, k, n int) (packs int, err error) {
	out, err := r.Run(ctx, true, "check", fmt.Sprintf("--read-data-subset=%d/%d", k, n))
	if err != nil {
		return 0, err
	}
	if m := checkGroup.FindSubmatch(out); m != nil {
		packs, _ = strconv.Atoi(string(m[2]))
	}
	if !bytes.Contains(out, []byte("no errors were found")) {
		return packs, fmt.Errorf("restic check on %s ended without \"no errors were found\": %s", r.Shown(), FirstLine(string(out)))
	}
	return packs, nil
}

// File is a regular file of a snapshot (restic ls --json).
type File struct {
	Path  string    `json:"path"`
	Type  string    `json:"type"`
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
}

// Files are the regular files of snapshot snap.
func (r Repo) Files(ctx context.Context, snap string) ([]File, error) {
	pr, pw := io.Pipe()
	var files []File
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var err error
		for sc.Scan() {
			var f File
			if json.Unmarshal(sc.Bytes(), &f) == nil && f.Type == "file" {
				files = append(files, f)
			}
		}
		if err = sc.Err(); err != nil {
			err = fmt.Errorf("restic ls on %s: %w", r.Shown(), err)
		}
		_, _ = io.Copy(io.Discard, pr)
		done <- err
	}()
	_, err := r.RunTo(ctx, pw, true, "ls", "--json", snap)
	pw.Close()
	if rerr := <-done; err == nil {
		err = rerr
	}
	return files, err
}

// Restore restores paths of snapshot snap under target (without a lock).
func (r Repo) Restore(ctx context.Context, snap, target string, paths []string) error {
	args := []string{"restore", snap, "--target", target}
	for _, p := range paths {
		args = append(args, "--include", p)
	}
	_, err := r.Run(ctx, true, args...)
	return err
}

// Dump writes the content of path in snapshot snap to w (without a lock).
func (r Repo) Dump(ctx context.Context, snap, path string, w io.Writer) error {
	_, err := r.RunTo(ctx, w, true, "dump", snap, path)
	return err
}

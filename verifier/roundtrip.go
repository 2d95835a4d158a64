package verifier

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"time"
)

// rowTrip is a database's part of the row round trip.
type rowTrip struct {
	write func(tok string) error
	read  func(tok string) (string, error)
	// del deletes the token's row, and rows older than SweepAge (canaries
	// an interrupted run left).
	del func(ctx context.Context, tok string) error
}

// rowRoundTrip writes a row with a unique token, reads it back and deletes
// it; the row is deleted at cleanup whatever happened in between.
func rowRoundTrip(ctx context.Context, rec *Recorder, t rowTrip) error {
	tok := token()
	if err := rec.Phase("write row", func() error { return t.write(tok) }); err != nil {
		return err
	}
	deleted := false
	rec.Cleanup(func(c context.Context) {
		if !deleted {
			t.del(c, tok)
		}
	})
	if err := rec.Phase("read row", func() error {
		got, err := t.read(tok)
		if err != nil {
			return err
		}
		if got != tok {
			return fmt.Errorf("read %q, wrote %q", got, tok)
		}
		return nil
	}); err != nil {
		return err
	}
	return rec.Phase("delete row", func() error {
		err := t.del(ctx, tok)
		deleted = err == nil
		return err
	})
}

// fileTrip is a file service's part of the file round trip.
type fileTrip struct {
	write  func(name string, data []byte) error
	read   func(name string, max int) ([]byte, error)
	remove func(name string) error
	// list lists the canary folder (dir, or the share's top), for the
	// sweep of files an interrupted run left.
	list func(dir string) ([]os.FileInfo, error)
}

// fileRoundTrip writes size random bytes under a unique name, reads them
// back, compares SHA-256 and deletes the file; the file is deleted at
// cleanup whatever happened in between.
func fileRoundTrip(rec *Recorder, dir string, size int, t fileTrip) error {
	data := make([]byte, size)
	rand.Read(data)
	name := token() + ".bin"
	if dir != "" {
		name = dir + "/" + name
	}
	// Canaries of interrupted runs (the server stalled or gone before the
	// delete): swept once older than SweepAge, after this run, whatever
	// happened in it. A failed sweep is tried again the next round.
	rec.Cleanup(func(context.Context) { sweepFiles(dir, t) })
	if err := rec.Phase("write file", func() error { return t.write(name, data) }); err != nil {
		return err
	}
	removed := false
	rec.Cleanup(func(context.Context) {
		if !removed {
			t.remove(name)
		}
	})
	if err := rec.Phase("read file", func() error {
		got, err := t.read(name, size+1)
		if err != nil {
			return err
		}
		if sha256.Sum256(got) != sha256.Sum256(data) {
			return fmt.Errorf("read back %d bytes that differ from the %d written", len(got), len(data))
		}
		return nil
	}); err != nil {
		return err
	}
	return rec.Phase("delete file", func() error {
		err := t.remove(name)
		removed = err == nil
		return err
	})
}

// sweepFiles removes the canary files in dir older than SweepAge.
func sweepFiles(dir string, t fileTrip) {
	if t.list == nil {
		return
	}
	fis, err := t.list(dir)
	if err != nil {
		return
	}
	for _, fi := range fis {
		n := fi.Name()
		if fi.Mode().IsRegular() && strings.HasPrefix(n, "sentry-canary-") && strings.HasSuffix(n, ".bin") && time.Since(fi.ModTime()) > SweepAge {
			if dir != "" {
				n = dir + "/" + n
			}
			t.remove(n)
		}
	}
}

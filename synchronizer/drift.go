package synchronizer

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/sergi/go-diff/diffmatchpatch"
)

// DriftItem is a tracked path whose disk state differs from the commit
// applied last: a local edit on the secondary.
type DriftItem struct {
	Path string `json:"path"`
	What string `json:"what"`           // content, mode, owner, missing, type, target
	Diff string `json:"diff,omitempty"` // for content: lines as committed (-) and as on disk (+)
}

// Drift compares the disk with snapshot s (the commit applied last).
func Drift(st storer.EncodedObjectStorer, s *Snapshot, root string, secrets *Secrets) ([]DriftItem, error) {
	var out []DriftItem
	for _, p := range sortedKeys(s.Entries) {
		e := s.Entries[p]
		d := root + p
		fi, err := os.Lstat(d)
		if err != nil {
			out = append(out, DriftItem{Path: p, What: "missing"})
			continue
		}
		switch e.Type {
		case TypeDir:
			if !fi.IsDir() {
				out = append(out, DriftItem{Path: p, What: "type"})
				continue
			}
		case TypeSymlink:
			t, err := os.Readlink(d)
			if err != nil || t != e.Target {
				out = append(out, DriftItem{Path: p, What: "target", Diff: fmt.Sprintf("-%s\n+%s\n", e.Target, t)})
			}
			continue
		case TypeFile:
			if !fi.Mode().IsRegular() {
				out = append(out, DriftItem{Path: p, What: "type"})
				continue
			}
			disk, err := os.ReadFile(d)
			if err != nil {
				return nil, err
			}
			if e.Encrypted {
				// A secret: compare, never show.
				if secrets == nil || secrets.MAC(disk) != e.MAC {
					out = append(out, DriftItem{Path: p, What: "content", Diff: "(a secret: its content is not shown)\n"})
					continue
				}
			} else if h := s.Blobs[p]; plumbing.ComputeHash(plumbing.BlobObject, disk) != h {
				want, err := readBlob(st, h)
				if err != nil {
					return nil, err
				}
				out = append(out, DriftItem{Path: p, What: "content", Diff: LineDiff(string(want), string(disk))})
				continue
			}
		}
		if e.Type != TypeSymlink && readXattrs(d) != e.Xattrs {
			out = append(out, DriftItem{Path: p, What: "xattrs", Diff: "-" + e.Xattrs + "\n+" + readXattrs(d) + "\n"})
			continue
		}
		if m, _ := strconv.ParseUint(e.Mode, 8, 32); uint64(fi.Mode().Perm()) != m {
			out = append(out, DriftItem{Path: p, What: "mode", Diff: fmt.Sprintf("-%s\n+%04o\n", e.Mode, fi.Mode().Perm())})
			continue
		}
		if uid, gid, err := ids(e); err == nil && fileOwner(fi) != [2]int{uid, gid} {
			o := fileOwner(fi)
			out = append(out, DriftItem{Path: p, What: "owner", Diff: fmt.Sprintf("-%s:%s\n+%s:%s\n", e.Owner, e.Group, userName(uint32(o[0])), groupName(uint32(o[1])))})
		}
	}
	return out, nil
}

// LineDiff shows the lines only in a (-) and only in b (+), with up to two
// lines of context around each change.
func LineDiff(a, b string) string {
	dmp := diffmatchpatch.New()
	ca, cb, lines := dmp.DiffLinesToChars(a, b)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	var out strings.Builder
	for i, d := range diffs {
		ls := strings.SplitAfter(d.Text, "\n")
		if len(ls) > 0 && ls[len(ls)-1] == "" {
			ls = ls[:len(ls)-1]
		}
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			for _, l := range ls {
				out.WriteString("-" + strings.TrimSuffix(l, "\n") + "\n")
			}
		case diffmatchpatch.DiffInsert:
			for _, l := range ls {
				out.WriteString("+" + strings.TrimSuffix(l, "\n") + "\n")
			}
		case diffmatchpatch.DiffEqual:
			// Context: the last two lines before a change, the first two after.
			var keep []string
			if i > 0 {
				keep = append(keep, ls[:min(2, len(ls))]...)
			}
			if i < len(diffs)-1 {
				if len(ls) > 4 && i > 0 {
					keep = append(keep, "...\n")
				}
				if len(ls) > 2 || i == 0 {
					keep = append(keep, ls[max(0, len(ls)-2):]...)
				}
			}
			for _, l := range keep {
				out.WriteString(" " + strings.TrimSuffix(l, "\n") + "\n")
			}
		}
	}
	return out.String()
}

package synchronizer

import (
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// WritePack writes a packfile with the objects reachable from head that are
// not reachable from have (what the secondary already holds): after days
// offline it gets what it missed, and only that. It returns the number of
// objects.
func WritePack(w io.Writer, st storer.EncodedObjectStorer, head plumbing.Hash, have []plumbing.Hash) (int, error) {
	var known []plumbing.Hash
	for _, h := range have {
		if !h.IsZero() && st.HasEncodedObject(h) == nil {
			known = append(known, h)
		}
	}
	objs, err := revlist.Objects(st, []plumbing.Hash{head}, known)
	if err != nil {
		return 0, fmt.Errorf("objects for %s: %w", head, err)
	}
	enc := packfile.NewEncoder(w, st, false)
	if _, err := enc.Encode(objs, 250); err != nil {
		return 0, err
	}
	return len(objs), nil
}

// ReadPack stores the objects of a packfile.
func ReadPack(st storer.Storer, r io.Reader) error {
	return packfile.UpdateObjectStorage(st, r)
}

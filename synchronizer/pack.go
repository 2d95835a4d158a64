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

// ReadPack stores the objects of a packfile, one loose object each.
//
// go-git would keep the pack as a pack, but it writes the pack's index in
// place: a kill at that moment leaves a truncated index that a retry then
// takes as present, and the repository is broken. A loose object is
// written to a temp file and renamed, so a kill leaves at most a temp file.
func ReadPack(st storer.Storer, r io.Reader) error {
	return packfile.UpdateObjectStorage(looseOnly{st, st}, r)
}

// looseOnly hides the storer's PackfileWriter.
type looseOnly struct {
	storer.EncodedObjectStorer
	storer.ReferenceStorer
}

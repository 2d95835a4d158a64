package stamp

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// StampReader reads a disk stamp again only when its file changed (another
// inode, as an atomic write makes, another size or time): the agent asks
// for its role many times a verifier round, and a read is two TOML
// decodes.
type StampReader struct {
	path string

	mu  sync.Mutex
	key fileKey
	st  *Stamp // the last good read
}

type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

// NewStampReader reads the stamp at path.
func NewStampReader(path string) *StampReader { return &StampReader{path: path} }

// Read is ReadStamp of the file, from the last read when the file is the
// same. The stamp is shared: the caller does not change it.
func (r *StampReader) Read() (*Stamp, error) {
	fi, err := os.Stat(r.path)
	if err != nil {
		return ReadStamp(r.path) // its error, by name
	}
	key := fileKey{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key.dev, key.ino = uint64(st.Dev), st.Ino
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st != nil && r.key == key {
		return r.st, nil
	}
	st, err := ReadStamp(r.path)
	if err != nil {
		r.st = nil
		return nil, err
	}
	r.st, r.key = st, key
	return st, nil
}

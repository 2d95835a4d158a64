package store

// A damaged store file must not keep the agent down. OpenChecked reads the
// whole file with its own parser of bbolt's page format (bounds-checked Go
// slices read with ReadAt, never bbolt's memory map) before bbolt may touch
// it: bbolt trusts its pages, and on a damaged one it panics ("invalid page
// type"), or follows a page number out of its memory map, which is a fault
// the Go runtime cannot recover from. Only a file the parser finds sound is
// opened with bbolt and checked again with bbolt's own Check. A file that
// fails either is salvaged: what can still be read is copied into a new
// file, which takes the store's name; the damaged file is kept beside it.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Salvage says what OpenChecked did with a damaged store file.
type Salvage struct {
	Path        string // the store file, as given to OpenChecked; now the salvaged copy
	DamagedPath string // where the damaged file was kept, e.g. state.db.damaged-20261203T120405Z
	Problem     string // the first problem found in the damaged file
	// Unreadable means nothing could be read (both meta pages were bad):
	// the store starts empty.
	Unreadable bool
	Buckets    []BucketSalvage // one per top-level bucket of the damaged file, by name
}

// BucketSalvage is what was kept and lost of one top-level bucket.
type BucketSalvage struct {
	Name string
	Kept int    // key/values copied, in the bucket and its sub-buckets
	Lost []Loss // where something could not be read
}

// Loss is one bucket (or sub-bucket) of which some or all could not be read.
type Loss struct {
	Path string // slash-separated from the top-level bucket: "results/node-s/web"
	All  bool   // nothing under Path could be read (else: part of it)
}

// Kept is the number of key/values kept in all buckets.
func (s *Salvage) Kept() int {
	n := 0
	for _, b := range s.Buckets {
		n += b.Kept
	}
	return n
}

// Losses returns every loss, in bucket order.
func (s *Salvage) Losses() []Loss {
	var out []Loss
	for _, b := range s.Buckets {
		out = append(out, b.Lost...)
	}
	return out
}

// String is a one-line summary for the operator.
func (s *Salvage) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s was damaged (%s); ", filepath.Base(s.Path), s.Problem)
	losses := s.Losses()
	switch {
	case s.Unreadable:
		b.WriteString("nothing could be read from it, the store starts empty")
	case len(losses) == 0:
		fmt.Fprintf(&b, "kept all %s of its records", thousands(s.Kept()))
	default:
		fmt.Fprintf(&b, "kept %s of its records, lost ", thousands(s.Kept()))
		const show = 3
		for i, l := range losses {
			if i == show {
				fmt.Fprintf(&b, " and %d more", len(losses)-show)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			if l.All {
				b.WriteString("all of ")
			} else {
				b.WriteString("part of ")
			}
			b.WriteString(l.Path)
		}
	}
	fmt.Fprintf(&b, "; the damaged file is %s", s.DamagedPath)
	return b.String()
}

// thousands formats n with commas: 1,204.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// OpenChecked opens the store file at path like Open, after checking that
// it is sound. A damaged file is salvaged: every key/value that can still
// be read is copied into a new file (written beside it and renamed into
// place), the damaged file is kept as path.damaged-<UTC time>, and the new
// file is opened; the returned Salvage says what happened, and is nil if
// the file was sound (it is then opened as it is, untouched). Damage is
// never an error: if nothing can be read the store starts empty. The errors
// are what the operator must fix: permissions, the lock held by another
// process, a file of a newer schema, or no room to write the new file (the
// damaged file is then left as it was).
func OpenChecked(path string, opt Options) (*Store, *Salvage, error) {
	timeout := opt.LockTimeout
	if timeout <= 0 {
		timeout = defaultLockTimeout
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || err == nil && fi.Size() == 0 {
		s, err := Open(path, opt)
		return s, nil, err
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	f, err := lockedFile(path, timeout)
	if err != nil {
		return nil, nil, err
	}
	problem, err := scanFile(f, nil)
	f.Close() // and unlock: bbolt takes its own lock
	if err != nil {
		return nil, nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if problem == nil {
		s, err := openSound(path, opt)
		if err == nil {
			return s, nil, nil
		}
		var d damage
		if !errors.As(err, &d) {
			return nil, nil, err
		}
		problem = d.err
	}

	f, err = lockedFile(path, timeout)
	if err != nil {
		return nil, nil, err
	}
	sv, err := salvage(path, f, problem)
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	s, err := Open(path, opt)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Check(); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("store: the salvaged copy of %s fails its check (the damaged file is %s): %w", path, sv.DamagedPath, err)
	}
	if err := remap(s, timeout); err != nil {
		return nil, nil, err
	}
	return s, sv, nil
}

// remap closes s's file and opens it again, after a Check (a function,
// not a method: Store is at archtest's limit of methods). The check read
// every page through bbolt's memory map, and a page read through a map
// stays in the process's resident memory for as long as it is mapped: the
// whole file, for as long as the agent runs, where it otherwise touches
// the few pages it writes and reads. A new map holds none of them.
func remap(s *Store, timeout time.Duration) error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: open %s: %w", s.path, err)
	}
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("store: open %s: another process (the sentry agent?) took the file lock between the check and the open; gave up after %s: %w", s.path, timeout, err)
		}
		return fmt.Errorf("store: open %s: %w", s.path, err)
	}
	s.db = db
	return nil
}

// damage is a problem found by bbolt in a file that scanFile passed.
type damage struct{ err error }

func (d damage) Error() string { return d.err.Error() }

// openSound opens a file that scanFile found sound with bbolt, runs bbolt's
// Check, and only then lets init write to it. What bbolt finds wrong, or
// panics over, is returned as damage; errors the operator must fix (lock,
// permissions) are returned as they are.
func openSound(path string, opt Options) (s *Store, err error) {
	var db *bolt.DB
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				func() {
					defer func() { _ = recover() }()
					db.Close()
				}()
			}
			s, err = nil, damage{fmt.Errorf("bbolt panicked: %v", r)}
		}
	}()
	timeout := opt.LockTimeout
	if timeout <= 0 {
		timeout = defaultLockTimeout
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: open %s: another process (the sentry agent?) holds the file lock; gave up after %s: %w", path, timeout, err)
		}
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
		return nil, damage{err}
	}
	s = &Store{db: db, path: path}
	if err := s.Check(); err != nil {
		db.Close()
		return nil, damage{err}
	}
	if err := remap(s, timeout); err != nil {
		return nil, err
	}
	db = s.db // what a panic from here on must close
	if err := s.init(); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// lockedFile opens path for reading and takes the exclusive lock bbolt
// takes, waiting up to timeout for it.
func lockedFile(path string, timeout time.Duration) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("store: lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("store: open %s: another process (the sentry agent?) holds the file lock; gave up after %s: %w", path, timeout, bolt.ErrTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// salvage copies what can be read of the damaged file f (locked) at path
// into a new file and puts it in the damaged file's place.
func salvage(path string, f *os.File, problem error) (*Salvage, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".salvage-*")
	if err != nil {
		return nil, fmt.Errorf("store: salvage %s: %w", path, err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmpPath)
		}
	}()
	db, err := bolt.Open(tmpPath, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: salvage %s: %w", path, err)
	}
	c := &copier{db: db, kept: map[string]int{}, lost: map[string][]Loss{}, seen: map[string]bool{}}
	err = c.begin()
	var readable bool
	if err == nil {
		var rootLost bool
		var first error
		readable, rootLost, first, err = scanFileInto(f, c)
		if problem == nil {
			problem = first
		}
		// A top-level bucket not found where the list of them was (in
		// part) unreadable is lost.
		for _, name := range allBuckets {
			if rootLost && !c.seen[string(name)] {
				c.seen[string(name)] = true
				c.lost[string(name)] = []Loss{{Path: string(name), All: true}}
			}
		}
		if err == nil {
			err = c.err
		}
	}
	if err == nil {
		err = c.finish()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncFile(tmpPath)
	}
	if err != nil {
		return nil, fmt.Errorf("store: salvage %s: write the salvaged copy: %w (the damaged file is left as it was)", path, err)
	}
	if problem == nil {
		problem = errors.New("unknown problem")
	}

	sv := &Salvage{Path: path, Problem: problem.Error(), Unreadable: !readable}
	for n := range c.seen {
		sv.Buckets = append(sv.Buckets, BucketSalvage{Name: n, Kept: c.kept[n], Lost: c.lost[n]})
	}
	sort.Slice(sv.Buckets, func(i, j int) bool { return sv.Buckets[i].Name < sv.Buckets[j].Name })

	// Keep the damaged file under a new name (a hard link, so that the
	// store's name never stops naming a whole file), then rename the copy
	// over the store's name.
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for i := 0; ; i++ {
		sv.DamagedPath = path + ".damaged-" + stamp
		if i > 0 {
			sv.DamagedPath += "-" + strconv.Itoa(i)
		}
		if _, err := os.Lstat(sv.DamagedPath); errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if err := os.Link(path, sv.DamagedPath); err != nil {
		if err := os.Rename(path, sv.DamagedPath); err != nil {
			return nil, fmt.Errorf("store: salvage %s: keep the damaged file: %w", path, err)
		}
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return nil, fmt.Errorf("store: salvage %s: put the salvaged copy in place: %w", path, err)
	}
	done = true
	if err := syncFile(dir); err != nil {
		return nil, fmt.Errorf("store: salvage %s: %w", path, err)
	}
	return sv, nil
}

// syncFile fsyncs the file or directory at path.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---------------------------------------------------------------- copier

// copier writes what the scan finds into the new file, in transactions of
// up to copyBatch operations.
type copier struct {
	db   *bolt.DB
	ops  []copyOp
	err  error
	kept map[string]int    // top-level bucket -> key/values copied
	lost map[string][]Loss // top-level bucket -> losses
	seen map[string]bool   // top-level buckets found
}

const copyBatch = 5000

type copyOp struct {
	path [][]byte // the bucket
	key  []byte   // nil: create the bucket and set its sequence
	val  []byte
	seq  uint64
}

// begin writes what a new file gets: the buckets and the schema version.
func (c *copier) begin() error {
	return c.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.FormatUint(SchemaVersion, 10)))
	})
}

func (c *copier) bucket(path [][]byte, seq uint64) {
	c.seen[string(path[0])] = true
	c.add(copyOp{path: path, seq: seq})
}

func (c *copier) put(path [][]byte, k, v []byte) {
	if len(path) == 1 && bytes.Equal(path[0], bucketMeta) && bytes.Equal(k, keySchema) {
		return // the new file's own
	}
	c.kept[string(path[0])]++
	c.add(copyOp{path: path, key: k, val: v})
}

func (c *copier) lose(path [][]byte, all bool) {
	top := string(path[0])
	c.seen[top] = true
	p := string(bytes.Join(path, []byte("/")))
	for i, l := range c.lost[top] {
		if l.Path == p {
			c.lost[top][i].All = l.All || all
			return
		}
	}
	c.lost[top] = append(c.lost[top], Loss{Path: p, All: all})
}

func (c *copier) add(op copyOp) {
	if c.err != nil {
		return
	}
	c.ops = append(c.ops, op)
	if len(c.ops) >= copyBatch {
		c.flush()
	}
}

func (c *copier) flush() {
	if c.err != nil || len(c.ops) == 0 {
		return
	}
	c.err = c.db.Update(func(tx *bolt.Tx) error {
		for _, op := range c.ops {
			b, err := tx.CreateBucketIfNotExists(op.path[0])
			if err != nil {
				return err
			}
			for _, name := range op.path[1:] {
				if b, err = b.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			if op.key == nil {
				if op.seq > b.Sequence() {
					if err := b.SetSequence(op.seq); err != nil {
						return err
					}
				}
				continue
			}
			if err := b.Put(op.key, op.val); err != nil {
				return err
			}
			// The event log's sequence must stay above every event kept,
			// so that no sequence number is given twice.
			if len(op.path) == 1 && bytes.Equal(op.path[0], bucketEvents) && len(op.key) == 8 {
				if seq := binary.BigEndian.Uint64(op.key); seq > b.Sequence() {
					if err := b.SetSequence(seq); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	c.ops = c.ops[:0]
}

func (c *copier) finish() error {
	c.flush()
	return c.err
}

// ---------------------------------------------------------------- the parser

// Page layout of bbolt files (go.etcd.io/bbolt/internal/common), in the
// byte order of the machine that wrote them.
const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elemSize         = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64
	metaSize         = 64 // magic, version, pageSize, flags u32; root, seq, freelist, pgid, txid, checksum u64

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10
	flagBucket   = 0x01 // of a leaf element

	boltMagic    = 0xED0CDAED
	boltVersion  = 2
	noFreelist   = ^uint64(0)
	maxWalkDepth = 64
)

var ne = binary.NativeEndian

// visitor receives what the parser reads.
type visitor interface {
	bucket(path [][]byte, seq uint64) // a (sub-)bucket at path exists
	put(path [][]byte, k, v []byte)   // a key/value in the bucket at path
	lose(path [][]byte, all bool)     // something under path could not be read
}

type meta struct {
	pageSize uint64
	root     uint64
	freelist uint64
	pgid     uint64 // high water mark: pages [0, pgid) are in use
	txid     uint64
}

// parseMeta reads the meta page in p (a page, header included) and
// validates it as bbolt does.
func parseMeta(p []byte) (meta, error) {
	if len(p) < pageHeaderSize+metaSize {
		return meta{}, errors.New("short")
	}
	m := p[pageHeaderSize : pageHeaderSize+metaSize]
	if ne.Uint32(m[0:]) != boltMagic {
		return meta{}, errors.New("invalid magic")
	}
	if ne.Uint32(m[4:]) != boltVersion {
		return meta{}, errors.New("version mismatch")
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != ne.Uint64(m[56:]) {
		return meta{}, errors.New("checksum error")
	}
	return meta{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, nil
}

// parser reads the pages of one file.
type parser struct {
	f        io.ReaderAt
	size     int64
	pageSize uint64
	meta     meta
	seen     map[uint64]bool // pages reached
	problems []error
	v        visitor // nil: only check
	schema   []byte  // the schema version in the meta bucket, if read
	rootAll  bool    // the root bucket (the list of top-level buckets) is unreadable
	rootPart bool    // ... or part of it
}

func (p *parser) problem(err error) {
	p.problems = append(p.problems, err)
}

// readMetas finds the page size and the meta page bbolt would use, as
// bbolt's Open and DB.meta do. It returns false if neither meta page is
// valid.
func (p *parser) readMetas() bool {
	buf := make([]byte, 0x1000)
	read := func(off int64) bool {
		n, err := p.f.ReadAt(buf, off)
		return n >= pageHeaderSize+metaSize && (err == nil || err == io.EOF)
	}
	valid := func(m meta) bool {
		return m.pageSize >= 512 && m.pageSize <= 1<<24 && m.pageSize&(m.pageSize-1) == 0
	}
	ps := uint64(0)
	if read(0) {
		if m, err := parseMeta(buf); err == nil && valid(m) {
			ps = m.pageSize
		}
	}
	for i := 0; ps == 0 && i <= 14; i++ {
		off := int64(1024) << i
		if off >= p.size-1024 {
			break
		}
		if read(off) {
			if m, err := parseMeta(buf); err == nil && valid(m) {
				ps = m.pageSize
			}
		}
	}
	if ps == 0 {
		p.problem(errors.New("both meta pages are invalid"))
		return false
	}
	p.pageSize = ps
	var metas [2]meta
	var errs [2]error
	for i := range metas {
		errs[i] = errors.New("unreadable")
		if read(int64(i) * int64(ps)) {
			metas[i], errs[i] = parseMeta(buf)
			if errs[i] == nil && (ne.Uint64(buf[0:]) != uint64(i) || ne.Uint16(buf[8:]) != flagMeta) {
				errs[i] = errors.New("bad page header")
			}
		}
	}
	a, b := 0, 1
	if errs[1] == nil && metas[1].txid > metas[0].txid || errs[0] != nil {
		a, b = 1, 0
	}
	if errs[a] != nil {
		p.problem(errors.New("both meta pages are invalid"))
		return false
	}
	if errs[b] != nil {
		p.problem(fmt.Errorf("meta page %d is invalid: %v", b, errs[b]))
	}
	p.meta = metas[a]
	if p.meta.pgid < 2 || p.meta.pgid > uint64(p.size)/ps {
		p.problem(fmt.Errorf("meta page %d says the file has %d pages, but it has %d", a, p.meta.pgid, uint64(p.size)/ps))
		if p.meta.pgid > uint64(p.size)/ps {
			p.meta.pgid = uint64(p.size) / ps
		}
	}
	return true
}

// page reads page id, which must be a branch or leaf page, with its
// overflow, and checks its layout.
func (p *parser) page(id uint64) ([]byte, error) {
	if id < 2 || id >= p.meta.pgid {
		return nil, fmt.Errorf("page %d: out of range (the file has %d pages)", id, p.meta.pgid)
	}
	if p.seen[id] {
		return nil, fmt.Errorf("page %d: reached twice", id)
	}
	var hdr [pageHeaderSize]byte
	if _, err := p.f.ReadAt(hdr[:], int64(id*p.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if got := ne.Uint64(hdr[0:]); got != id {
		return nil, fmt.Errorf("page %d: says it is page %d", id, got)
	}
	flags := ne.Uint16(hdr[8:])
	if flags != flagBranch && flags != flagLeaf {
		return nil, fmt.Errorf("page %d: invalid page type %#x", id, flags)
	}
	over := uint64(ne.Uint32(hdr[12:]))
	if id+over >= p.meta.pgid {
		return nil, fmt.Errorf("page %d: its %d overflow pages run past the last page", id, over)
	}
	for i := id + 1; i <= id+over; i++ {
		if p.seen[i] {
			return nil, fmt.Errorf("page %d: overflows into page %d, reached before", id, i)
		}
	}
	buf := make([]byte, (over+1)*p.pageSize)
	if _, err := p.f.ReadAt(buf, int64(id*p.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if err := checkElems(buf); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	for i := id; i <= id+over; i++ {
		p.seen[i] = true
	}
	return buf, nil
}

// checkElems checks that the elements of the branch or leaf page in buf
// (header included) lie inside it, with keys in order.
func checkElems(buf []byte) error {
	flags := ne.Uint16(buf[8:])
	count := uint64(ne.Uint16(buf[10:]))
	if flags != flagBranch && flags != flagLeaf {
		return fmt.Errorf("invalid page type %#x", flags)
	}
	if flags == flagBranch && count == 0 {
		return errors.New("branch page without elements")
	}
	size := uint64(len(buf))
	if pageHeaderSize+count*elemSize > size {
		return fmt.Errorf("%d elements do not fit in the page", count)
	}
	var prev []byte
	for i := uint64(0); i < count; i++ {
		e := pageHeaderSize + i*elemSize
		var pos, ksize, vsize uint64
		if flags == flagBranch {
			pos, ksize = uint64(ne.Uint32(buf[e:])), uint64(ne.Uint32(buf[e+4:]))
		} else {
			if f := ne.Uint32(buf[e:]); f&^flagBucket != 0 {
				return fmt.Errorf("element %d: invalid flags %#x", i, f)
			}
			pos, ksize, vsize = uint64(ne.Uint32(buf[e+4:])), uint64(ne.Uint32(buf[e+8:])), uint64(ne.Uint32(buf[e+12:]))
		}
		if ksize == 0 || e+pos+ksize+vsize > size || e+pos < pageHeaderSize+count*elemSize {
			return fmt.Errorf("element %d lies outside the page", i)
		}
		k := buf[e+pos : e+pos+ksize]
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("element %d: keys out of order", i)
		}
		prev = k
	}
	return nil
}

// elem is one element of a checked page.
type elem struct {
	bucket bool
	key    []byte
	val    []byte // leaf
	child  uint64 // branch
}

func elems(buf []byte) (leaf bool, out []elem) {
	leaf = ne.Uint16(buf[8:]) == flagLeaf
	count := uint64(ne.Uint16(buf[10:]))
	for i := uint64(0); i < count; i++ {
		e := pageHeaderSize + i*elemSize
		if !leaf {
			pos, ksize := uint64(ne.Uint32(buf[e:])), uint64(ne.Uint32(buf[e+4:]))
			out = append(out, elem{key: buf[e+pos : e+pos+ksize], child: ne.Uint64(buf[e+8:])})
			continue
		}
		pos, ksize, vsize := uint64(ne.Uint32(buf[e+4:])), uint64(ne.Uint32(buf[e+8:])), uint64(ne.Uint32(buf[e+12:]))
		out = append(out, elem{
			bucket: ne.Uint32(buf[e:])&flagBucket != 0,
			key:    buf[e+pos : e+pos+ksize],
			val:    buf[e+pos+ksize : e+pos+ksize+vsize],
		})
	}
	return leaf, out
}

// walkBucket reads the bucket whose header is hdr, at path (nil: the root
// bucket, whose children are the top-level buckets).
func (p *parser) walkBucket(path [][]byte, hdr []byte, depth int) {
	if len(hdr) < bucketHeaderSize {
		p.lose(path, true, fmt.Errorf("bucket %s: header too short", pathName(path)))
		return
	}
	root := ne.Uint64(hdr[0:])
	if root != 0 {
		p.walkPage(path, root, depth, true)
		return
	}
	inline := hdr[bucketHeaderSize:]
	if len(inline) < pageHeaderSize {
		p.lose(path, true, fmt.Errorf("bucket %s: inline page too short", pathName(path)))
		return
	}
	if err := checkElems(inline); err != nil {
		p.lose(path, true, fmt.Errorf("bucket %s: inline page: %w", pathName(path), err))
		return
	}
	if leaf, _ := elems(inline); !leaf {
		p.lose(path, true, fmt.Errorf("bucket %s: inline page is not a leaf", pathName(path)))
		return
	}
	p.walkElems(path, inline, depth)
}

// walkPage reads page id of the bucket at path and what is under it.
func (p *parser) walkPage(path [][]byte, id uint64, depth int, root bool) {
	if depth > maxWalkDepth {
		p.lose(path, root, fmt.Errorf("page %d: the tree is deeper than %d", id, maxWalkDepth))
		return
	}
	buf, err := p.page(id)
	if err != nil {
		p.lose(path, root, err)
		return
	}
	p.walkElems(path, buf, depth)
}

func (p *parser) walkElems(path [][]byte, buf []byte, depth int) {
	leaf, es := elems(buf)
	for _, e := range es {
		if !leaf {
			p.walkPage(path, e.child, depth+1, false)
			continue
		}
		if path == nil && !e.bucket {
			p.problem(fmt.Errorf("key %q at the top is not a bucket", e.key))
			continue
		}
		if !e.bucket {
			if len(path) == 1 && bytes.Equal(path[0], bucketMeta) && bytes.Equal(e.key, keySchema) {
				p.schema = bytes.Clone(e.val)
			}
			if err := checkRecord(path, e.key, e.val); err != nil {
				p.lose(path, false, err)
				continue
			}
			if p.v != nil {
				p.v.put(path, bytes.Clone(e.key), bytes.Clone(e.val))
			}
			continue
		}
		child := append(append([][]byte(nil), path...), bytes.Clone(e.key))
		if len(e.val) >= bucketHeaderSize && p.v != nil {
			p.v.bucket(child, ne.Uint64(e.val[8:]))
		}
		p.walkBucket(child, e.val, depth+1)
	}
}

// checkRecord decodes the record k/v of the bucket at path as its
// readers will, and says why it cannot be read. Damage inside a value
// leaves the page's layout sound and bbolt keeps no checksums, so only
// this finds it: a record that does not decode would fail every read and
// every prune that reaches it, for as long as it is kept. The records of
// a bucket this sentry does not know are not looked at.
func checkRecord(path [][]byte, k, v []byte) error {
	if len(path) == 0 {
		return nil
	}
	var err error
	top := path[0]
	switch {
	case len(path) == 1 && bytes.Equal(top, bucketMeta):
		if bytes.Equal(k, keySchema) {
			_, err = strconv.ParseUint(string(v), 10, 64)
		}
	case len(path) == 1 && bytes.Equal(top, bucketEvents):
		_, err = decodeEvent(k, v)
	case len(path) == 1 && bytes.Equal(top, bucketTokens):
		err = json.Unmarshal(v, new(Token))
	case len(path) == 1 && bytes.Equal(top, bucketPeers):
		err = json.Unmarshal(v, new(PeerRecord))
	case len(path) == 3 && bytes.Equal(top, bucketResults):
		_, err = decodeResult(path[1], path[2], k, v)
	case len(path) == 2 && (bytes.Equal(top, bucketHourly) || bytes.Equal(top, bucketWeekly)):
		if _, _, ok := splitPeriodKey(k); !ok {
			err = errors.New("not a period and a probe")
		} else {
			_, err = decodeRollup(v)
		}
	case len(path) == 3 && (bytes.Equal(top, bucketHourlyByProbe) || bytes.Equal(top, bucketWeeklyByProbe)):
		_, err = decodeRollup(v) // a build before's, moved by Open
	case bytes.Equal(top, bucketAlert), bytes.Equal(top, bucketVerdict), bytes.Equal(top, bucketFailover), bytes.Equal(top, bucketReports):
		// Documents the store keeps whole for their owners: JSON.
		if !json.Valid(v) {
			err = errors.New("not valid JSON")
		}
	}
	if err != nil {
		return fmt.Errorf("bucket %s: record %x cannot be read: %w", pathName(path), k, err)
	}
	return nil
}

// lose records a problem under path.
func (p *parser) lose(path [][]byte, all bool, err error) {
	p.problem(err)
	if len(path) == 0 {
		p.rootAll = p.rootAll || all
		p.rootPart = true
		return
	}
	if p.v != nil {
		p.v.lose(path, all)
	}
}

func pathName(path [][]byte) string {
	if len(path) == 0 {
		return "(root)"
	}
	return string(bytes.Join(path, []byte("/")))
}

// checkFree checks the freelist against the pages reached: every page
// below the high water mark is either reached or free, never both.
func (p *parser) checkFree() {
	free := map[uint64]bool{}
	if id := p.meta.freelist; id != noFreelist {
		ids, err := p.freelist(id)
		if err != nil {
			p.problem(err)
			return
		}
		for _, f := range ids {
			switch {
			case f < 2 || f >= p.meta.pgid:
				p.problem(fmt.Errorf("freelist: page %d out of range", f))
			case free[f]:
				p.problem(fmt.Errorf("page %d: already freed", f))
			case p.seen[f]:
				p.problem(fmt.Errorf("page %d: reachable freed", f))
			}
			free[f] = true
		}
	} else {
		return // bbolt rebuilds the freelist on open
	}
	for i := uint64(2); i < p.meta.pgid; i++ {
		if !p.seen[i] && !free[i] {
			p.problem(fmt.Errorf("page %d: unreachable unfreed", i))
			return
		}
	}
}

// freelist reads the freelist page id (and marks it reached).
func (p *parser) freelist(id uint64) ([]uint64, error) {
	if id < 2 || id >= p.meta.pgid {
		return nil, fmt.Errorf("freelist page %d: out of range", id)
	}
	var hdr [pageHeaderSize + 8]byte
	if _, err := p.f.ReadAt(hdr[:], int64(id*p.pageSize)); err != nil {
		return nil, fmt.Errorf("freelist page %d: %w", id, err)
	}
	if ne.Uint64(hdr[0:]) != id || ne.Uint16(hdr[8:]) != flagFreelist {
		return nil, fmt.Errorf("freelist page %d: not a freelist page", id)
	}
	over := uint64(ne.Uint32(hdr[12:]))
	if id+over >= p.meta.pgid {
		return nil, fmt.Errorf("freelist page %d: overflow runs past the last page", id)
	}
	start, count := uint64(0), uint64(ne.Uint16(hdr[10:]))
	if count == 0xFFFF {
		start, count = 1, ne.Uint64(hdr[pageHeaderSize:])
	}
	size := (over + 1) * p.pageSize
	if count > size/8 || pageHeaderSize+(start+count)*8 > size {
		return nil, fmt.Errorf("freelist page %d: %d ids do not fit", id, count)
	}
	buf := make([]byte, size)
	if _, err := p.f.ReadAt(buf, int64(id*p.pageSize)); err != nil {
		return nil, fmt.Errorf("freelist page %d: %w", id, err)
	}
	for i := id; i <= id+over; i++ {
		if p.seen[i] {
			return nil, fmt.Errorf("freelist page %d: reached twice", i)
		}
		p.seen[i] = true
	}
	ids := make([]uint64, count)
	for i := range ids {
		ids[i] = ne.Uint64(buf[pageHeaderSize+(start+uint64(i))*8:])
	}
	return ids, nil
}

// scanFile checks the whole store file f. It returns the first problem
// found (nil: the file is sound, safe for bbolt to open); err is for what
// is not damage: a file of a newer schema.
func scanFile(f *os.File, v visitor) (problem, err error) {
	p, err := parseFile(f, v)
	if err != nil {
		return nil, err
	}
	if len(p.problems) > 0 {
		return p.problems[0], nil
	}
	return nil, nil
}

// scanFileInto reads all it can of f into v. It reports whether anything
// was readable, whether the list of top-level buckets was (in part)
// unreadable, and the first problem.
func scanFileInto(f *os.File, v visitor) (readable, rootLost bool, first, err error) {
	p, err := parseFile(f, v)
	if p == nil {
		return false, false, nil, err
	}
	if len(p.problems) > 0 {
		first = p.problems[0]
	}
	readable = p.meta.pgid != 0 && !p.rootAll
	return readable, !readable || p.rootPart, first, nil
}

func parseFile(f *os.File, v visitor) (*parser, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	p := &parser{f: f, size: fi.Size(), seen: map[uint64]bool{}, v: v}
	if !p.readMetas() {
		return p, nil
	}
	var rootHdr [bucketHeaderSize]byte
	ne.PutUint64(rootHdr[:], p.meta.root)
	if p.meta.root == 0 {
		p.lose(nil, true, errors.New("the root bucket has no page"))
	} else {
		p.walkBucket(nil, rootHdr[:], 0)
	}
	if len(p.problems) == 0 {
		p.checkFree()
	}
	if p.schema != nil {
		n, err := strconv.ParseUint(string(p.schema), 10, 64)
		if err == nil && n > SchemaVersion {
			return p, fmt.Errorf("the file has schema version %d, but this sentry only knows schema version %d or older; use a newer sentry", n, SchemaVersion)
		}
	}
	return p, nil
}

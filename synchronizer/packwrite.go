package synchronizer

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/klauspost/compress/zlib"
)

// Packed objects.
//
// The primary's model hashes a changed file when it sees it, but its blob,
// like the trees above it, is held in memory (staged) until the commit:
// a commit that adds many objects (packMinObjects: the first snapshot, a
// blob per file and a tree per folder, thousands) then writes them as ONE
// pack and its index, one file and one fsync each, instead of a loose
// object each (a file, a folder, an fsync). A smaller commit (a one-file
// change is about ten objects) writes them loose, as before: a pack per
// commit would leave go-git searching a growing list of packs for every
// object. The commit object itself is always loose (the repair looks for
// intact commits among the loose objects). The pack has no deltas.
//
// The pack is made durable before anything can name its objects, and a
// crash at any point leaves either no pack or a whole one:
//
//  1. the pack is written to objects/pack/tmp_pack_sentry_*, fsynced;
//  2. its index to objects/pack/tmp_idx_sentry_*, fsynced;
//  3. the index is renamed to pack-<sum>.idx, objects/pack fsynced;
//  4. the pack is renamed to pack-<sum>.pack, objects/pack fsynced;
//  5. go-git is told (repoStorage.reindex), and only then may writeRef
//     point a ref at the commit (which fsyncs the loose objects first).
//
// A crash before 3 leaves temp files, before 4 an index without its pack:
// go-git lists the packs by their .pack, git by their .idx and only with
// the .pack there, so both ignore them, and the next open removes them
// (tidyPacks). The index is renamed first, and durably, because go-git
// cannot read a repository holding a .pack without its .idx. A crash
// after 4 leaves a whole pack whose objects no ref names yet: the next
// commit finds them there and does not write them again. The commit's
// own loose object, written after the pack, is made durable by writeRef
// like any other; a power cut before that can leave it empty, which the
// next open removes (tidyLoose).

// packMinObjects: a commit with at least this many new objects writes
// them as one pack (a variable for the tests).
var packMinObjects = 256

// stageMaxBytes bounds the memory the staged objects take: past it they
// are written at once (as a pack when there are enough of them), before
// the commit (a first snapshot of a tree of 1 GB makes several packs).
var stageMaxBytes = 64 << 20

// packLevel is the zlib level of the packs: git's own for loose objects
// (core.looseCompression); the transfer to the secondary compresses again.
const packLevel = zlib.BestSpeed

// stagedObject is an object made and not yet written.
type stagedObject struct {
	h    plumbing.Hash
	t    plumbing.ObjectType
	data []byte
}

// objectStage holds the objects made since the last write, in the order
// made.
type objectStage struct {
	objs   []stagedObject
	has    map[plumbing.Hash]bool
	bytes  int
	failed bool // writing them before the commit failed
}

func (s *objectStage) add(o stagedObject) {
	if s.has == nil {
		s.has = map[plumbing.Hash]bool{}
	}
	if s.has[o.h] {
		return // a pack holds each object once
	}
	s.has[o.h] = true
	s.objs = append(s.objs, o)
	s.bytes += len(o.data)
}

// stageObject keeps an object until writeStaged (the caller knows the
// repository does not have it).
func (r *Repo) stageObject(t plumbing.ObjectType, h plumbing.Hash, data []byte) error {
	r.staged.add(stagedObject{h: h, t: t, data: data})
	if r.staged.bytes > stageMaxBytes && !r.staged.failed {
		if err := r.writeStaged(); err != nil {
			// Kept staged: the commit writes them (or says why not);
			// no new try at each object until then.
			r.staged.failed = true
			return err
		}
	}
	return nil
}

// stageEncoded stages an object encoded into a MemoryObject (a tree).
func (r *Repo) stageEncoded(o plumbing.EncodedObject) (plumbing.Hash, error) {
	h := o.Hash()
	if r.has(h) {
		return h, nil
	}
	rd, err := o.Reader()
	if err != nil {
		return h, err
	}
	data, err := io.ReadAll(rd)
	rd.Close()
	if err != nil {
		return h, err
	}
	return h, r.stageObject(o.Type(), h, data)
}

// writeStaged writes the staged objects: one pack when there are at least
// packMinObjects of them, loose objects otherwise. Objects a repair found
// damaged are written loose, as the repair says it does. The
// loose objects are made durable by the next writeRef, the pack before
// writeStaged returns. On an error the objects stay staged, and are
// written again by the next commit.
func (r *Repo) writeStaged() error {
	objs := r.staged.objs
	if len(objs) == 0 {
		return nil
	}
	var pack []stagedObject
	for _, o := range objs {
		if len(objs) >= packMinObjects && !r.bad[o.h] {
			pack = append(pack, o)
			continue
		}
		mo := &plumbing.MemoryObject{}
		mo.SetType(o.t)
		mo.Write(o.data)
		if _, err := r.st.SetEncodedObject(mo); err != nil {
			return err
		}
	}
	if len(pack) > 0 {
		if _, err := r.fs.writePack(pack); err != nil {
			return fmt.Errorf("config repository %s: %w", r.Path, err)
		}
	}
	r.staged = objectStage{}
	return nil
}

// Temp file names of writePack, in objects/pack. git's gc takes any
// tmp_* there for its own garbage; tidyPacks removes these at open.
const (
	tmpPackPrefix = "tmp_pack_sentry_"
	tmpIdxPrefix  = "tmp_idx_sentry_"
)

// writePack writes objs as one pack and its index under objects/pack,
// durably (see the steps above), and tells go-git's storage. It returns
// the pack's checksum, which names it.
func (g *gitFS) writePack(objs []stagedObject) (sum plumbing.Hash, err error) {
	const dir = "objects/pack"
	made := g.missingDirs(dir)
	if err := g.syncFS.MkdirAll(dir, 0o755); err != nil {
		return sum, fmt.Errorf("writing a pack: %w", err)
	}
	entries, err := deflateAll(objs)
	if err != nil {
		return sum, fmt.Errorf("writing a pack: %w", err)
	}
	var tmps []string
	defer func() {
		if err != nil {
			for _, t := range tmps {
				g.syncFS.Remove(t)
			}
			err = fmt.Errorf("writing a pack: %w", err)
		}
	}()

	// 1. The pack.
	iw := new(idxfile.Writer)
	iw.OnHeader(uint32(len(objs)))
	tmpPack, err := g.writeTemp(dir, tmpPackPrefix, &tmps, func(w io.Writer) error {
		h := sha1.New()
		bw := bufio.NewWriterSize(io.MultiWriter(w, h), 256<<10)
		var hdr [12]byte
		copy(hdr[:], "PACK")
		binary.BigEndian.PutUint32(hdr[4:], 2)
		binary.BigEndian.PutUint32(hdr[8:], uint32(len(objs)))
		bw.Write(hdr[:])
		off := int64(len(hdr))
		for i, e := range entries {
			iw.OnInflatedObjectContent(objs[i].h, off, crc32.ChecksumIEEE(e), nil)
			if _, err := bw.Write(e); err != nil {
				return err
			}
			off += int64(len(e))
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		copy(sum[:], h.Sum(nil))
		_, err := w.Write(sum[:])
		return err
	})
	if err != nil {
		return sum, err
	}
	// 2. Its index.
	if err := iw.OnFooter(sum); err != nil {
		return sum, err
	}
	idx, err := iw.Index()
	if err != nil {
		return sum, err
	}
	tmpIdx, err := g.writeTemp(dir, tmpIdxPrefix, &tmps, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		if _, err := idxfile.NewEncoder(bw).Encode(idx); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return sum, err
	}
	// 3 and 4: the index, then the pack, each rename made durable.
	name := dir + "/pack-" + sum.String()
	for _, mv := range [][2]string{{tmpIdx, name + ".idx"}, {tmpPack, name + ".pack"}} {
		if err := g.syncFS.Rename(mv[0], mv[1]); err != nil {
			return sum, err
		}
		if err := g.syncFS.Fsync(dir); err != nil {
			return sum, err
		}
	}
	tmps = nil
	for _, d := range made {
		if err := g.syncFS.Fsync(path.Dir(d)); err != nil {
			return sum, err
		}
	}
	// 5. go-git reads the new pack.
	if g.store != nil {
		g.store.reindex()
	}
	return sum, nil
}

// writeTemp writes a new temp file in dir with fill, fsyncs it, and makes
// it read-only (as git's packs are). Its name is added to tmps once made.
func (g *gitFS) writeTemp(dir, prefix string, tmps *[]string, fill func(io.Writer) error) (string, error) {
	f, err := g.syncFS.TempFile(dir, prefix)
	if err != nil {
		return "", err
	}
	name := f.Name()
	*tmps = append(*tmps, name)
	err = fill(f)
	if err == nil {
		err = g.syncFS.Fsync(name)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if c, ok := g.syncFS.(billy.Chmod); ok {
			err = c.Chmod(name, 0o444)
		}
	}
	return name, err
}

// deflateAll makes each object's pack entry (its header and its zlib
// stream), on every core.
func deflateAll(objs []stagedObject) ([][]byte, error) {
	out := make([][]byte, len(objs))
	errs := make([]error, len(objs))
	next := make(chan int, len(objs))
	for i := range objs {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(objs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			zw, _ := zlib.NewWriterLevel(&buf, packLevel)
			for i := range next {
				o := objs[i]
				buf.Reset()
				buf.Write(packEntryHeader(o.t, int64(len(o.data))))
				zw.Reset(&buf)
				_, err := zw.Write(o.data)
				if err == nil {
					err = zw.Close()
				}
				errs[i] = err
				out[i] = bytes.Clone(buf.Bytes())
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// packEntryHeader is an undeltified pack entry's header: the type, and the
// size in 4 then 7 bits a byte, low bits first.
func packEntryHeader(t plumbing.ObjectType, size int64) []byte {
	b := byte(t)<<4 | byte(size&0x0f)
	size >>= 4
	var out []byte
	for size > 0 {
		out = append(out, b|0x80)
		b = byte(size & 0x7f)
		size >>= 7
	}
	return append(out, b)
}

// tidyPacks removes what a write cut short leaves in objects/pack: the
// temp files of writePack, an index whose pack was never renamed into
// place (no ref names the objects of either; a .pack is never without its
// index after a crash, as writePack renames it second), and go-git's temp
// files of loose objects (tmp_obj_*, which it makes there). The
// repository has one writer, the agent, and this runs as it opens it.
func (g *gitFS) tidyPacks() error {
	const dir = "objects/pack"
	files, err := g.syncFS.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f.Name()] = true
	}
	removed := false
	for _, f := range files {
		n := f.Name()
		stale := strings.HasPrefix(n, tmpPackPrefix) || strings.HasPrefix(n, tmpIdxPrefix) || strings.HasPrefix(n, "tmp_obj_")
		if base, ok := strings.CutSuffix(n, ".idx"); ok && strings.HasPrefix(n, "pack-") && !have[base+".pack"] {
			stale = true
		}
		if !stale {
			continue
		}
		if err := g.syncFS.Remove(dir + "/" + n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s/%s, left by a pack write cut short: %w", dir, n, err)
		}
		removed = true
	}
	if removed {
		return g.syncFS.Fsync(dir)
	}
	return nil
}

// tidyLoose removes the empty loose object files: what a power cut leaves
// of an object renamed into place whose content never reached the disk
// (no ref should name it: the ref is written after the fsync that did not
// happen). git fsck calls such a file an error, and go-git takes it for
// the object: the next commit that makes the same object would name it.
// One that a ref names after all (a disk that lied) is then missing
// instead of damaged, which the repair mends the same way, and counts
// among the files it removed. A file read back as damaged otherwise is
// the repair's (scanLoose).
func (g *gitFS) tidyLoose() error {
	dirs, err := g.syncFS.ReadDir("objects")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		dir := "objects/" + d.Name()
		files, err := g.syncFS.ReadDir(dir)
		if err != nil {
			return err
		}
		removed := false
		for _, f := range files {
			if f.Mode().IsRegular() && f.Size() == 0 && plumbing.IsHash(d.Name()+f.Name()) {
				if err := g.syncFS.Remove(dir + "/" + f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("removing the empty object file %s/%s: %w", dir, f.Name(), err)
				}
				removed = true
				g.mu.Lock()
				g.tidied++
				g.mu.Unlock()
			}
		}
		if removed {
			if err := g.syncFS.Fsync(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// takeTidied returns how many empty object files were removed at open
// since it was last asked.
func (g *gitFS) takeTidied() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.tidied
	g.tidied = 0
	return n
}

// repoStorage is go-git's storage of a repository of Sentry's, with its
// list of packs guarded. go-git loads that list once, and sees a pack
// added later only when told (Reindex), which rebuilds the map that every
// read of a packed object goes through: reads hold mu for reading, the
// reload holds it for writing (the agent serves the secondary's fetch
// while the watcher commits).
type repoStorage struct {
	*filesystem.Storage
	mu sync.RWMutex
}

func newRepoStorage(s *filesystem.Storage) *repoStorage {
	rs := &repoStorage{Storage: s}
	rs.reindex()
	return rs
}

// reindex makes go-git read the list of packs again, and loads it at once
// (a read that found it empty would load it without the lock).
func (s *repoStorage) reindex() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Storage.Reindex()
	s.Storage.HasEncodedObject(plumbing.ZeroHash)
}

func (s *repoStorage) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.Storage.EncodedObject(t, h)
}

func (s *repoStorage) DeltaObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.Storage.DeltaObject(t, h)
}

func (s *repoStorage) HasEncodedObject(h plumbing.Hash) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.Storage.HasEncodedObject(h)
}

func (s *repoStorage) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.Storage.EncodedObjectSize(h)
}

func (s *repoStorage) HashesWithPrefix(prefix []byte) ([]plumbing.Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.Storage.HashesWithPrefix(prefix)
}

func (s *repoStorage) IterEncodedObjects(t plumbing.ObjectType) (storer.EncodedObjectIter, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	it, err := s.Storage.IterEncodedObjects(t)
	if err != nil {
		return nil, err
	}
	return &lockedIter{it: it, mu: &s.mu}, nil
}

// PackfileWriter is go-git's, whose Close adds the pack to the list.
func (s *repoStorage) PackfileWriter() (io.WriteCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.Storage.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return &lockedCloser{WriteCloser: w, mu: &s.mu}, nil
}

// lockedIter reads the packs (lazily, as it goes) under the lock.
type lockedIter struct {
	it storer.EncodedObjectIter
	mu *sync.RWMutex
}

func (i *lockedIter) Next() (plumbing.EncodedObject, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.it.Next()
}

func (i *lockedIter) ForEach(cb func(plumbing.EncodedObject) error) error {
	return storer.ForEachIterator(i, cb)
}

func (i *lockedIter) Close() { i.it.Close() }

type lockedCloser struct {
	io.WriteCloser
	mu *sync.RWMutex
}

func (c *lockedCloser) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.WriteCloser.Close()
}

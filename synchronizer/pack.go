package synchronizer

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"

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
	if err != nil && len(known) > 0 {
		// What the secondary says it has is not whole here (this side
		// repaired its history after a power loss): send everything.
		objs, err = revlist.Objects(st, []plumbing.Hash{head}, nil)
	}
	if err != nil {
		return 0, fmt.Errorf("objects for %s: %w", head, err)
	}
	enc := packfile.NewEncoder(w, st, false)
	if _, err := enc.Encode(objs, 250); err != nil {
		return 0, err
	}
	return len(objs), nil
}

// ReadPack stores the objects of a packfile, one loose object each, with
// the limits of defaultPackLimits.
//
// go-git would keep the pack as a pack, but it writes the pack's index in
// place: a kill at that moment leaves a truncated index that a retry then
// takes as present, and the repository is broken. A loose object is
// written to a temp file and renamed, so a kill leaves at most a temp file
// (and gitFS makes it durable before a ref names it).
//
// The pack comes from the peer, so it is read here rather than by go-git's
// parser, which sizes its buffers by what each object's header declares:
// a 0.5 MB pack declaring a 512 MiB blob made it allocate 3.4 GB. Each
// declared size (an object's, a delta's result) is checked against the
// limits before anything is inflated or allocated, every inflated stream
// must end at the size it declared, and the pack's own size, its object
// count and the sum of its inflated sizes are capped.
func ReadPack(st storer.Storer, r io.Reader) error {
	return readPack(st, r, defaultPackLimits())
}

// packLimits bound what one pack may cost the side that reads it.
type packLimits struct {
	object  int64 // the inflated size of one object, or of a delta's result
	total   int64 // the inflated sizes of all the pack's objects and deltas
	objects int64 // the objects the pack holds
	bytes   int64 // the pack itself
}

// defaultPackLimits: a tracked file is at most 16 MiB (maxFileSize; the
// apply refuses a larger one), and an encrypted one is a little larger
// than its plaintext (age adds 16 bytes per 64 KiB and a header): 64 KiB
// of room, so that such a file is refused by the apply, alone, rather than
// failing every sync. A full fetch (a new secondary, or one repaired after
// a power loss) holds the whole history: a one-file commit on a 3,000-file
// tree is about ten objects and 20 KB inflated, so 2^20 objects and 4 GiB
// leave room for some 100,000 commits. The pack is read as a stream, one
// object in memory at a time (and a few recent ones kept as delta bases),
// so the total bounds work and disk, not memory; the pack itself is held
// to the 1 GiB the agent lets cross the wire.
func defaultPackLimits() packLimits {
	return packLimits{object: maxFileSize + 64<<10, total: 4 << 30, objects: 1 << 20, bytes: 1 << 30}
}

// humanBytes says a size as a person would: 16 MiB + 64 KiB.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20 && n%(1<<10) == 0:
		return fmt.Sprintf("%d MiB + %d KiB", n>>20, n%(1<<20)>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// packed is an object read from the pack, by its offset (an OFS delta
// names its base so).
type packed struct {
	off int64
	h   plumbing.Hash
}

func readPack(st storer.EncodedObjectStorer, r io.Reader, lim packLimits) error {
	pr := &packReader{r: r, buf: make([]byte, 64<<10), sum: sha1.New(), max: lim.bytes}
	var hdr [12]byte
	if _, err := io.ReadFull(pr, hdr[:]); err != nil {
		return fmt.Errorf("pack header: %w", err)
	}
	if string(hdr[:4]) != "PACK" {
		return errors.New("not a pack: it does not start with PACK")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 && v != 3 {
		return fmt.Errorf("pack version %d: only 2 and 3 are known", v)
	}
	count := int64(binary.BigEndian.Uint32(hdr[8:12]))
	if count > lim.objects {
		return fmt.Errorf("the pack declares %d objects, over the limit of %d", count, lim.objects)
	}
	var (
		read  []packed // in pack order, so by offset
		total int64
		zr    io.ReadCloser
		bases = &baseCache{max: 2 * lim.object}
	)
	for i := int64(1); i <= count; i++ {
		off := pr.n
		typ, size, err := pr.objectHeader()
		if err != nil {
			return fmt.Errorf("pack object %d of %d (at offset %d): %w", i, count, off, err)
		}
		what := fmt.Sprintf("pack object %d of %d (%s at offset %d)", i, count, typ, off)
		var base plumbing.Hash
		delta := typ == plumbing.OFSDeltaObject || typ == plumbing.REFDeltaObject
		switch typ {
		case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
		case plumbing.OFSDeltaObject:
			rel, err := pr.ofsDistance()
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			k := sort.Search(len(read), func(k int) bool { return read[k].off >= off-rel })
			if rel <= 0 || rel > off || k == len(read) || read[k].off != off-rel {
				return fmt.Errorf("%s: its base at offset %d is not an object of this pack", what, off-rel)
			}
			base = read[k].h
		case plumbing.REFDeltaObject:
			if _, err := io.ReadFull(pr, base[:]); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		default:
			return fmt.Errorf("%s: unknown object type %d", what, typ)
		}
		if size > lim.object {
			return fmt.Errorf("%s declares %d bytes inflated: over the limit of %s per object", what, size, humanBytes(lim.object))
		}
		if total += size; total > lim.total {
			return fmt.Errorf("%s: the pack's objects would inflate to more than %s", what, humanBytes(lim.total))
		}
		if zr == nil {
			zr, err = zlib.NewReader(pr)
		} else {
			err = zr.(zlib.Resetter).Reset(pr, nil)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		data, err := inflate(zr, size)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if delta {
			src, tgt, ops, err := deltaHeader(data)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if tgt > lim.object {
				return fmt.Errorf("%s: its result declares %d bytes: over the limit of %s per object", what, tgt, humanBytes(lim.object))
			}
			if total += tgt; total > lim.total {
				return fmt.Errorf("%s: the pack's objects would inflate to more than %s", what, humanBytes(lim.total))
			}
			bt, bdata, err := bases.get(st, base, lim.object)
			if err != nil {
				return fmt.Errorf("%s: base %s not found: %w", what, base, err)
			}
			if src != int64(len(bdata)) {
				return fmt.Errorf("%s: the delta is for a base of %d bytes, and %s has %d", what, src, base, len(bdata))
			}
			if data, err = patchDelta(bdata, ops, tgt); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			typ = bt
		}
		h, err := storeObject(st, typ, data)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		bases.put(h, typ, data)
		read = append(read, packed{off, h})
	}
	want := pr.checksum()
	var got [20]byte
	if _, err := io.ReadFull(pr, got[:]); err != nil {
		return fmt.Errorf("pack trailer: %w", err)
	}
	if !bytes.Equal(want, got[:]) {
		return fmt.Errorf("pack checksum mismatch: the pack says %x, its content hashes to %x", got, want)
	}
	return nil
}

// storeObject writes an object unless it is there.
func storeObject(st storer.EncodedObjectStorer, t plumbing.ObjectType, data []byte) (plumbing.Hash, error) {
	h := plumbing.ComputeHash(t, data)
	if st.HasEncodedObject(h) == nil {
		return h, nil
	}
	o := &plumbing.MemoryObject{}
	o.SetType(t)
	o.SetSize(int64(len(data)))
	if _, err := o.Write(data); err != nil {
		return h, err
	}
	_, err := st.SetEncodedObject(o)
	return h, err
}

// inflate reads a zlib stream that must hold exactly size bytes. The
// buffer grows with what really comes, not with what was declared.
func inflate(zr io.Reader, size int64) ([]byte, error) {
	data := make([]byte, 0, min(size+1, 64<<10))
	for {
		if len(data) == cap(data) {
			grown := make([]byte, len(data), min(max(2*int64(cap(data)), 4096), size+1))
			copy(grown, data)
			data = grown
		}
		n, err := zr.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if int64(len(data)) > size {
			return nil, fmt.Errorf("it inflates to more than the %d bytes it declares", size)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("inflating: %w", err)
		}
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("it inflates to %d bytes, not the %d it declares", len(data), size)
	}
	return data, nil
}

// deltaHeader reads the sizes a delta starts with: its base's and its
// result's.
func deltaHeader(d []byte) (src, tgt int64, ops []byte, err error) {
	var n int
	u, n := binary.Uvarint(d)
	if n <= 0 || u > 1<<40 {
		return 0, 0, nil, errors.New("bad delta header")
	}
	src, d = int64(u), d[n:]
	u, n = binary.Uvarint(d)
	if n <= 0 || u > 1<<40 {
		return 0, 0, nil, errors.New("bad delta header")
	}
	return src, int64(u), d[n:], nil
}

// patchDelta applies a git delta's instructions to base; the result must
// be exactly tgt bytes (checked against the limits by the caller).
func patchDelta(base, ops []byte, tgt int64) ([]byte, error) {
	out := make([]byte, 0, tgt)
	for len(ops) > 0 {
		cmd := ops[0]
		ops = ops[1:]
		switch {
		case cmd&0x80 != 0: // copy from the base
			var off, n uint64
			for i := 0; i < 7; i++ {
				if cmd&(1<<i) == 0 {
					continue
				}
				if len(ops) == 0 {
					return nil, errors.New("delta: a copy instruction is cut short")
				}
				if i < 4 {
					off |= uint64(ops[0]) << (8 * i)
				} else {
					n |= uint64(ops[0]) << (8 * (i - 4))
				}
				ops = ops[1:]
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > uint64(len(base)) {
				return nil, fmt.Errorf("delta: copies bytes %d to %d of a base of %d", off, off+n, len(base))
			}
			if uint64(len(out))+n > uint64(tgt) {
				return nil, fmt.Errorf("delta: makes more than the %d bytes it declares", tgt)
			}
			out = append(out, base[off:off+n]...)
		case cmd != 0: // insert
			n := int(cmd)
			if n > len(ops) {
				return nil, errors.New("delta: an insert instruction is cut short")
			}
			if int64(len(out)+n) > tgt {
				return nil, fmt.Errorf("delta: makes more than the %d bytes it declares", tgt)
			}
			out = append(out, ops[:n]...)
			ops = ops[n:]
		default:
			return nil, errors.New("delta: instruction 0 is reserved")
		}
	}
	if int64(len(out)) != tgt {
		return nil, fmt.Errorf("delta: makes %d bytes, not the %d it declares", len(out), tgt)
	}
	return out, nil
}

// baseCache keeps the objects read last, for the deltas that follow them
// (go-git's packs chain deltas object after object).
type baseCache struct {
	max   int64
	size  int64
	order []plumbing.Hash
	objs  map[plumbing.Hash]cachedObject
}

type cachedObject struct {
	t    plumbing.ObjectType
	data []byte
}

func (c *baseCache) put(h plumbing.Hash, t plumbing.ObjectType, data []byte) {
	if c.objs == nil {
		c.objs = map[plumbing.Hash]cachedObject{}
	}
	if _, ok := c.objs[h]; ok || int64(len(data)) > c.max {
		return
	}
	c.objs[h] = cachedObject{t, data}
	c.order = append(c.order, h)
	c.size += int64(len(data))
	for c.size > c.max {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= int64(len(c.objs[old].data))
		delete(c.objs, old)
	}
}

// get returns a delta's base: from the cache, or as stored (an object of
// this pack, or one this side had).
func (c *baseCache) get(st storer.EncodedObjectStorer, h plumbing.Hash, limit int64) (plumbing.ObjectType, []byte, error) {
	if o, ok := c.objs[h]; ok {
		return o.t, o.data, nil
	}
	o, err := st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return 0, nil, err
	}
	if o.Size() > limit {
		return 0, nil, fmt.Errorf("%d bytes, over the limit of %s", o.Size(), humanBytes(limit))
	}
	rd, err := o.Reader()
	if err != nil {
		return 0, nil, err
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return 0, nil, err
	}
	if int64(len(data)) > limit {
		return 0, nil, fmt.Errorf("over the limit of %s", humanBytes(limit))
	}
	return o.Type(), data, nil
}

// packReader reads a pack: buffered, with no read-ahead past what the
// parser consumed (zlib is given a ByteReader, so it stops at its stream's
// end), counting and hashing the bytes consumed, and refusing to go past
// max bytes.
type packReader struct {
	r        io.Reader
	buf      []byte
	pos, end int
	hashed   int // buf[:hashed] is in sum
	sum      hash.Hash
	n        int64 // bytes consumed
	max      int64
	err      error
}

func (p *packReader) fill() error {
	if p.err != nil {
		return p.err
	}
	p.sum.Write(p.buf[p.hashed:p.pos])
	p.end = copy(p.buf, p.buf[p.pos:p.end])
	p.pos, p.hashed = 0, 0
	for p.end == 0 {
		n, err := p.r.Read(p.buf)
		p.end = n
		if n == 0 && err == nil {
			continue
		}
		if err == io.EOF && n == 0 {
			p.err = io.ErrUnexpectedEOF
			return p.err
		}
		if err != nil && err != io.EOF {
			p.err = err
			if n == 0 {
				return err
			}
		}
	}
	return nil
}

func (p *packReader) over() error {
	return fmt.Errorf("the pack is over the limit of %s", humanBytes(p.max))
}

func (p *packReader) ReadByte() (byte, error) {
	if p.pos == p.end {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	if p.n >= p.max {
		return 0, p.over()
	}
	b := p.buf[p.pos]
	p.pos++
	p.n++
	return b, nil
}

func (p *packReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if p.pos == p.end {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	if p.n >= p.max {
		return 0, p.over()
	}
	n := copy(b, p.buf[p.pos:min(p.end, p.pos+int(min(int64(len(b)), p.max-p.n)))])
	p.pos += n
	p.n += int64(n)
	return n, nil
}

// checksum is the SHA-1 of every byte consumed so far.
func (p *packReader) checksum() []byte {
	p.sum.Write(p.buf[p.hashed:p.pos])
	p.hashed = p.pos
	return p.sum.Sum(nil)
}

// objectHeader reads an object's type and declared size.
func (p *packReader) objectHeader() (plumbing.ObjectType, int64, error) {
	b, err := p.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	t := plumbing.ObjectType(b >> 4 & 7)
	size := int64(b & 0x0f)
	for shift := uint(4); b&0x80 != 0; shift += 7 {
		if shift > 56 {
			return 0, 0, errors.New("object header: size too long")
		}
		if b, err = p.ReadByte(); err != nil {
			return 0, 0, err
		}
		size |= int64(b&0x7f) << shift
	}
	if size < 0 {
		return 0, 0, errors.New("object header: size too large")
	}
	return t, size, nil
}

// ofsDistance reads an OFS delta's distance back to its base.
func (p *packReader) ofsDistance() (int64, error) {
	b, err := p.ReadByte()
	if err != nil {
		return 0, err
	}
	d := int64(b & 0x7f)
	for i := 0; b&0x80 != 0; i++ {
		if i >= 8 {
			return 0, errors.New("delta base offset too long")
		}
		if b, err = p.ReadByte(); err != nil {
			return 0, err
		}
		d = (d+1)<<7 | int64(b&0x7f)
	}
	return d, nil
}

package synchronizer

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/memory"
)

// rawObject is one entry of a hand-made pack: what its header declares and
// the zlib stream that follows, as given (a bomb declares what it likes).
type rawObject struct {
	typ  plumbing.ObjectType // blob, tree, commit, tag, OFSDelta, REFDelta
	size int64               // the inflated size the header declares
	z    []byte              // the zlib stream
	base int                 // OFSDelta: index of the base object in the pack
	ref  plumbing.Hash       // REFDelta: the base
}

// craftPack writes a pack of objs; count is the object count the header
// declares (-1: len(objs)). The trailer is the SHA-1 of what precedes it.
func craftPack(objs []rawObject, count int64) []byte {
	var b bytes.Buffer
	b.WriteString("PACK")
	binary.Write(&b, binary.BigEndian, uint32(2))
	if count < 0 {
		count = int64(len(objs))
	}
	binary.Write(&b, binary.BigEndian, uint32(count))
	var offs []int64
	for _, o := range objs {
		off := int64(b.Len())
		offs = append(offs, off)
		sz := o.size
		c := byte(o.typ)<<4 | byte(sz&0x0f)
		sz >>= 4
		for sz != 0 {
			b.WriteByte(c | 0x80)
			c = byte(sz & 0x7f)
			sz >>= 7
		}
		b.WriteByte(c)
		switch o.typ {
		case plumbing.OFSDeltaObject:
			n := off - offs[o.base]
			var buf [16]byte
			i := len(buf) - 1
			buf[i] = byte(n & 0x7f)
			for n >>= 7; n != 0; n >>= 7 {
				n--
				i--
				buf[i] = 0x80 | byte(n&0x7f)
			}
			b.Write(buf[i:])
		case plumbing.REFDeltaObject:
			b.Write(o.ref[:])
		}
		b.Write(o.z)
	}
	sum := sha1.Sum(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

func zlibOf(data []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// zlibZeros is a valid zlib stream of n zero bytes, written by hand (one
// fixed-Huffman block: a literal 0, then matches of 258 at distance 1) so
// that the test does not spend seconds compressing (the race detector
// slows compress/flate down twentyfold). 64 MiB make 420 KB.
func zlibZeros(n int64) []byte {
	var out bytes.Buffer
	out.Write([]byte{0x78, 0x01})
	var acc uint64
	var nb uint
	bits := func(v uint64, n uint) { // LSB first
		acc |= v << nb
		nb += n
		for nb >= 8 {
			out.WriteByte(byte(acc))
			acc >>= 8
			nb -= 8
		}
	}
	code := func(c uint64, n uint) { // Huffman codes go MSB first
		var r uint64
		for i := uint(0); i < n; i++ {
			r |= (c >> i & 1) << (n - 1 - i)
		}
		bits(r, n)
	}
	bits(1, 1) // BFINAL
	bits(1, 2) // BTYPE 01: fixed Huffman
	if n > 0 {
		code(0x30, 8) // the literal 0
		rest := n - 1
		for ; rest >= 258; rest -= 258 {
			code(0xc5, 8) // length 258 (code 285)
			code(0, 5)    // distance 1
		}
		for ; rest > 0; rest-- {
			code(0x30, 8)
		}
	}
	code(0, 7) // end of block
	if nb > 0 {
		out.WriteByte(byte(acc))
	}
	// Adler-32 of n zeros: a stays 1, b gains 1 a byte.
	binary.Write(&out, binary.BigEndian, uint32((n%65521)<<16|1))
	return out.Bytes()
}

// allocated runs f and returns what it allocated, in bytes.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestZlibZerosIsValid(t *testing.T) {
	for _, n := range []int64{0, 1, 2, 258, 259, 1000, 70000} {
		zr, err := zlib.NewReader(bytes.NewReader(zlibZeros(n)))
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if _, err := got.ReadFrom(zr); err != nil || int64(got.Len()) != n || bytes.Count(got.Bytes(), []byte{0}) != int(n) {
			t.Fatalf("%d zeros: got %d bytes, %v", n, got.Len(), err)
		}
	}
}

// Issue 20, finding 6: a small pack holding a huge blob made the reader
// allocate several times the blob's size before any check. The declared
// size is checked first: the pack is refused, naming the object, and the
// reader allocates a small part of what the object declares.
func TestReadPackRefusesAHugeBlobBeforeInflatingIt(t *testing.T) {
	const size = 64 << 20
	pack := craftPack([]rawObject{{typ: plumbing.BlobObject, size: size, z: zlibZeros(size)}}, -1)
	t.Logf("a pack of %d bytes holding a blob of %d MiB", len(pack), size>>20)
	var err error
	n := allocated(func() { err = ReadPack(memory.NewStorage(), bytes.NewReader(pack)) })
	if err == nil || !strings.Contains(err.Error(), "object 1 of 1") || !strings.Contains(err.Error(), "blob") || !strings.Contains(err.Error(), "16 MiB") {
		t.Errorf("a 64 MiB blob: err %v, want a refusal naming object 1 of 1, a blob, and the 16 MiB limit", err)
	}
	if n > size/8 {
		t.Errorf("reading the pack allocated %d MiB for a blob of %d MiB: the size must be checked before inflating", n>>20, size>>20)
	}
}

// The same with a delta: a 64 KiB base and a 1 KB delta of copies that
// makes 64 MiB. The delta's target size is checked before it is applied.
func TestReadPackRefusesADeltaBomb(t *testing.T) {
	const base, size = 64 << 10, 64 << 20
	delta := binary.AppendUvarint(nil, base)
	delta = binary.AppendUvarint(delta, size)
	delta = append(delta, bytes.Repeat([]byte{0x80}, size/base)...) // copy 64 KiB from offset 0
	pack := craftPack([]rawObject{
		{typ: plumbing.BlobObject, size: base, z: zlibZeros(base)},
		{typ: plumbing.OFSDeltaObject, size: int64(len(delta)), z: zlibOf(delta), base: 0},
	}, -1)
	var err error
	n := allocated(func() { err = ReadPack(memory.NewStorage(), bytes.NewReader(pack)) })
	if err == nil || !strings.Contains(err.Error(), "object 2 of 2") || !strings.Contains(err.Error(), "delta") || !strings.Contains(err.Error(), "16 MiB") {
		t.Errorf("a delta making 64 MiB: err %v, want a refusal naming object 2 of 2, a delta, and the 16 MiB limit", err)
	}
	if n > size/8 {
		t.Errorf("reading the pack allocated %d MiB for a delta making %d MiB: its size must be checked before applying it", n>>20, size>>20)
	}
}

// The per-pack caps: the object count the header declares, the sum of the
// inflated sizes, the bytes of the pack itself.
func TestReadPackLimits(t *testing.T) {
	lim := packLimits{object: 1 << 20, total: 3 << 20, objects: 10, bytes: 1 << 20}
	blob := func(n int64) rawObject { return rawObject{typ: plumbing.BlobObject, size: n, z: zlibZeros(n)} }
	for _, tc := range []struct {
		name string
		pack []byte
		want string
	}{
		{"count", craftPack(nil, 1<<31), "declares 2147483648 objects, over the limit of 10"},
		{"total", craftPack([]rawObject{blob(1 << 20), blob(1<<20 - 1), blob(1<<20 - 2), blob(1<<20 - 3)}, -1), "object 4 of 4 (blob"},
		{"object", craftPack([]rawObject{blob(1<<20 + 1)}, -1), "object 1 of 1 (blob"},
		{"size mismatch", craftPack([]rawObject{{typ: plumbing.BlobObject, size: 100, z: zlibZeros(1000)}}, -1), "inflates to more than the 100 bytes it declares"},
		{"short", craftPack([]rawObject{{typ: plumbing.BlobObject, size: 100, z: zlibZeros(10)}}, -1), "inflates to 10 bytes, not the 100 it declares"},
		{"pack bytes", craftPack([]rawObject{{typ: plumbing.BlobObject, size: 1000, z: zlibOf(randomBytes(1000))}, {typ: plumbing.BlobObject, size: 1 << 20, z: zlibOf(randomBytes(1 << 20))}}, -1), "the pack is over the limit of 1 MiB"},
		{"trailer", func() []byte { p := craftPack([]rawObject{blob(10)}, -1); p[len(p)-1] ^= 1; return p }(), "checksum"},
		{"missing base", craftPack([]rawObject{{typ: plumbing.REFDeltaObject, size: 4, z: zlibOf([]byte{1, 1, 0x90, 1}), ref: plumbing.NewHash("0123456789012345678901234567890123456789")}}, -1), "base 0123456789012345678901234567890123456789 not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readPack(memory.NewStorage(), bytes.NewReader(tc.pack), lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	// Under the caps, the same reader takes it.
	st := memory.NewStorage()
	if err := readPack(st, bytes.NewReader(craftPack([]rawObject{blob(1 << 20), blob(1<<20 - 1), blob(1<<20 - 2)}, -1)), lim); err != nil {
		t.Fatal(err)
	}
	if n := len(st.Objects); n != 3 {
		t.Errorf("%d objects stored, want 3", n)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint64(88172645463325252)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// A pack made by WritePack, with deltas, reads back whole; so does one whose
// delta names its base by hash (git's thin packs), with the base stored
// before.
func TestReadPackDeltas(t *testing.T) {
	src := memory.NewStorage()
	var heads []plumbing.Hash
	text := strings.Repeat("server { listen 80; server_name a.example; }\n", 200)
	for i := 0; i < 5; i++ {
		text += fmt.Sprintf("# edit %d\n", i)
		heads = append(heads, putTestBlob(t, src, text))
	}
	var buf bytes.Buffer
	if _, err := writeTestPack(&buf, src, heads); err != nil {
		t.Fatal(err)
	}
	dst := memory.NewStorage()
	if err := ReadPack(dst, &buf); err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if dst.HasEncodedObject(h) != nil {
			t.Errorf("%s missing after ReadPack", h)
		}
	}
	// REF delta against a stored base.
	base := []byte(text)
	target := append(append([]byte{}, base...), "# more\n"...)
	delta := binary.AppendUvarint(nil, uint64(len(base)))
	delta = binary.AppendUvarint(delta, uint64(len(target)))
	delta = appendCopy(delta, 0, len(base))
	delta = append(delta, 7)
	delta = append(delta, "# more\n"...)
	pack := craftPack([]rawObject{{typ: plumbing.REFDeltaObject, size: int64(len(delta)), z: zlibOf(delta), ref: heads[4]}}, -1)
	if err := ReadPack(dst, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	want := plumbing.ComputeHash(plumbing.BlobObject, target)
	if b, err := readBlob(dst, want); err != nil || !bytes.Equal(b, target) {
		t.Errorf("the REF delta's object: %v", err)
	}
}

// appendCopy appends a delta copy instruction (offset, size < 2^24).
func appendCopy(d []byte, off, size int) []byte {
	cmd := byte(0x80)
	var args []byte
	for i := 0; i < 4; i++ {
		if b := byte(off >> (8 * i)); b != 0 {
			cmd |= 1 << i
			args = append(args, b)
		}
	}
	for i := 0; i < 3; i++ {
		if b := byte(size >> (8 * i)); b != 0 {
			cmd |= 0x10 << i
			args = append(args, b)
		}
	}
	return append(append(d, cmd), args...)
}

func putTestBlob(t testing.TB, st *memory.Storage, s string) plumbing.Hash {
	t.Helper()
	h, err := storeObject(st, plumbing.BlobObject, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeTestPack packs objects as WritePack does (go-git's encoder, OFS
// deltas).
func writeTestPack(w io.Writer, st *memory.Storage, objs []plumbing.Hash) (plumbing.Hash, error) {
	return packfile.NewEncoder(w, st, false).Encode(objs, 10)
}

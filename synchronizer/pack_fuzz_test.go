package synchronizer

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// fuzzPackLimits are small, so that the fuzzer spends its time on the
// parser and a breach shows quickly.
var fuzzPackLimits = packLimits{object: 1 << 20, total: 4 << 20, objects: 1 << 12, bytes: 1 << 20}

// seedPack is a real pack made by WritePack: two commits of a small tree,
// the second's blobs deltas of the first's.
func seedPack(tb testing.TB) []byte {
	tb.Helper()
	st := memory.NewStorage()
	var parent []plumbing.Hash
	var heads []plumbing.Hash
	for i := 0; i < 2; i++ {
		conf := strings.Repeat("server { listen 80; server_name a.example; }\n", 20) + fmt.Sprintf("# edit %d\n", i)
		meta := fmt.Sprintf("schema_version = 1\n[[entry]]\nname = \"nginx.conf\"\ntype = \"file\"\nmode = \"064%d\"\nowner = \"root\"\ngroup = \"root\"\n", i)
		b1 := putTestBlob(tb, st, conf)
		b2 := putTestBlob(tb, st, meta)
		files := storeTree(tb, st, []object.TreeEntry{{Name: "nginx.conf", Mode: filemode.Regular, Hash: b1}})
		metas := storeTree(tb, st, []object.TreeEntry{{Name: MetaName, Mode: filemode.Regular, Hash: b2}})
		root := storeTree(tb, st, []object.TreeEntry{{Name: "files", Mode: filemode.Dir, Hash: files}, {Name: "meta", Mode: filemode.Dir, Hash: metas}})
		sig := object.Signature{Name: "sentry on p", Email: "sentry@p", When: time.Unix(1700000000+int64(i), 0).UTC()}
		c := &object.Commit{Author: sig, Committer: sig, Message: "edit\n", TreeHash: root, ParentHashes: parent}
		o := st.NewEncodedObject()
		if err := c.Encode(o); err != nil {
			tb.Fatal(err)
		}
		h, err := st.SetEncodedObject(o)
		if err != nil {
			tb.Fatal(err)
		}
		parent = []plumbing.Hash{h}
		heads = append(heads, h)
	}
	var buf bytes.Buffer
	if _, err := WritePack(&buf, st, heads[1], nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func storeTree(tb testing.TB, st *memory.Storage, entries []object.TreeEntry) plumbing.Hash {
	tb.Helper()
	t := &object.Tree{Entries: entries}
	o := st.NewEncodedObject()
	if err := t.Encode(o); err != nil {
		tb.Fatal(err)
	}
	h, err := st.SetEncodedObject(o)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// The seed pack reads back whole, with its deltas.
func TestSeedPackHasDeltas(t *testing.T) {
	pack := seedPack(t)
	st := memory.NewStorage()
	if err := readPack(st, bytes.NewReader(pack), fuzzPackLimits); err != nil {
		t.Fatal(err)
	}
	sc := packfile.NewScanner(bytes.NewReader(pack))
	_, n, err := sc.Header()
	if err != nil {
		t.Fatal(err)
	}
	deltas := 0
	for i := uint32(0); i < n; i++ {
		oh, err := sc.NextObjectHeader()
		if err != nil {
			t.Fatal(err)
		}
		if oh.Type.IsDelta() {
			deltas++
		}
	}
	if len(st.Objects) != 12 || deltas == 0 {
		t.Errorf("%d objects, %d deltas; want 12 objects, some deltas", len(st.Objects), deltas)
	}
}

// FuzzReadPack: whatever the bytes, the pack reader does not panic, takes
// nothing over its limits, and allocates within a bound of them.
func FuzzReadPack(f *testing.F) {
	f.Add(seedPack(f))
	f.Fuzz(func(t *testing.T, pack []byte) {
		st := memory.NewStorage()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := readPack(st, bytes.NewReader(pack), fuzzPackLimits)
		runtime.ReadMemStats(&after)
		// The buffers (a grown inflate buffer, a delta's result, the
		// stored copy) are a small multiple of what the limits allow.
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(8*fuzzPackLimits.total+int64(len(pack))*64+1<<20) {
			t.Errorf("reading a pack of %d bytes allocated %d MiB (err %v)", len(pack), n>>20, err)
		}
		var total int64
		for h, o := range st.Objects {
			if o.Size() > fuzzPackLimits.object {
				t.Errorf("object %s of %d bytes stored, over the limit", h, o.Size())
			}
			total += o.Size()
		}
		if total > fuzzPackLimits.total {
			t.Errorf("%d bytes stored, over the limit", total)
		}
		if err == nil && int64(len(st.Objects)) > fuzzPackLimits.objects {
			t.Errorf("%d objects stored", len(st.Objects))
		}
	})
}

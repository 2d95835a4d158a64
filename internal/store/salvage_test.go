package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// salvageFixture is a store file with records in flat and nested buckets,
// built once: its bytes, and the number of key/values (the schema version
// aside) under each top-level bucket and under each results/node/probe.
var salvageFixture struct {
	once   sync.Once
	err    error
	data   []byte
	counts map[string]int
	total  int
}

const fixtureNodes, fixtureProbes, fixtureResults = 3, 4, 60

func fixture(t *testing.T) ([]byte, map[string]int, int) {
	t.Helper()
	f := &salvageFixture
	f.once.Do(func() { f.data, f.counts, f.total, f.err = buildFixture() })
	if f.err != nil {
		t.Fatal(f.err)
	}
	return f.data, f.counts, f.total
}

func buildFixture() ([]byte, map[string]int, int, error) {
	dir, err := os.MkdirTemp("", "salvage-fixture")
	if err != nil {
		return nil, nil, 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		return nil, nil, 0, err
	}
	defer s.Close()
	pad := strings.Repeat("x", 150)
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		for i := 0; i < 300; i++ {
			seq, _ := b.NextSequence()
			v := fmt.Sprintf(`{"seq":%d,"kind":"test","message":"event %d %s"}`, seq, i, pad)
			if err := b.Put(seqKey(seq), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	for i := 0; i < 5; i++ {
		if err := s.PutPeer(PeerRecord{Name: fmt.Sprintf("peer-%d", i), Address: "10.0.0.1"}); err != nil {
			return nil, nil, 0, err
		}
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for n := 0; n < fixtureNodes; n++ {
		for p := 0; p < fixtureProbes; p++ {
			var rs []StoredResult
			for i := 0; i < fixtureResults; i++ {
				rs = append(rs, StoredResult{
					Node: fmt.Sprintf("node-%d", n), Probe: fmt.Sprintf("probe-%d", p),
					Start: start.Add(time.Duration(i) * time.Minute), DurationMS: int64(i), OK: i%7 != 0,
					Message: pad,
				})
			}
			if err := s.PutResults(rs...); err != nil {
				return nil, nil, 0, err
			}
		}
	}
	// The last two transactions change nothing, so that both meta pages
	// describe the same records.
	for i := 0; i < 2; i++ {
		if err := s.PutPeer(PeerRecord{Name: "peer-0", Address: "10.0.0.1"}); err != nil {
			return nil, nil, 0, err
		}
	}
	counts, total, err := countRecords(s)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := s.Close(); err != nil {
		return nil, nil, 0, err
	}
	data, err := os.ReadFile(path)
	return data, counts, total, err
}

// countRecords counts the key/values of each top-level bucket (under
// "name") and of each bucket nested in results ("results/node/probe").
func countRecords(s *Store) (map[string]int, int, error) {
	counts := map[string]int{}
	total := 0
	var walk func(b *bolt.Bucket, path []string) error
	walk = func(b *bolt.Bucket, path []string) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(b.Bucket(k), append(path, string(k)))
			}
			if path[0] == "meta" && bytes.Equal(k, keySchema) {
				return nil
			}
			counts[path[0]]++
			if len(path) > 1 {
				counts[strings.Join(path, "/")]++
			}
			total++
			return nil
		})
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(b, []string{string(name)}) })
	})
	return counts, total, err
}

// writeDamaged writes data to dir/state.db and returns the path.
func writeDamaged(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openSalvaged opens path with OpenChecked, expects a salvage, and checks
// what every salvage must give: a store that passes Check, with the schema
// version, and the damaged file kept byte for byte.
func openSalvaged(t *testing.T, path string, damaged []byte) (*Store, *Salvage) {
	t.Helper()
	s, sv, err := OpenChecked(path, Options{})
	if err != nil {
		t.Fatalf("OpenChecked: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if sv == nil {
		t.Fatal("OpenChecked found no damage")
	}
	checkSalvaged(t, s, sv, path, damaged)
	return s, sv
}

func checkSalvaged(t *testing.T, s *Store, sv *Salvage, path string, damaged []byte) {
	t.Helper()
	if err := s.Check(); err != nil {
		t.Fatalf("salvaged store: %v", err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		v, found, err := readSchema(tx)
		if err != nil || !found || v != SchemaVersion {
			return fmt.Errorf("schema version %d, %v, %v", v, found, err)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("salvaged store: %v", err)
	}
	if sv.Path != path || !strings.HasPrefix(sv.DamagedPath, path+".damaged-") {
		t.Fatalf("paths %q, %q", sv.Path, sv.DamagedPath)
	}
	got, err := os.ReadFile(sv.DamagedPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, damaged) {
		t.Fatal("the damaged file was changed")
	}
	if sv.Problem == "" {
		t.Fatal("no problem named")
	}
	left, _ := filepath.Glob(path + ".salvage-*")
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestOpenCheckedCleanFileUntouched(t *testing.T) {
	data, _, _ := fixture(t)
	path := writeDamaged(t, data)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s, sv, err := OpenChecked(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sv != nil {
		t.Fatalf("salvaged a sound file: %v", sv)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("the file was replaced")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("files beside the store: %v", entries)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file changed on open (%v)", err)
	}

	// A new file is created as Open does.
	s2, sv, err := OpenChecked(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil || sv != nil {
		t.Fatalf("new file: %v, %v", sv, err)
	}
	s2.Close()
}

func TestOpenCheckedBothMetaPages(t *testing.T) {
	data, _, _ := fixture(t)
	damaged := bytes.Clone(data)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 8192; i++ {
		damaged[i] = byte(rng.Uint32())
	}
	path := writeDamaged(t, damaged)
	s, sv := openSalvaged(t, path, damaged)
	if !sv.Unreadable || sv.Kept() != 0 {
		t.Fatalf("unreadable %v, kept %d", sv.Unreadable, sv.Kept())
	}
	if len(sv.Buckets) != len(allBuckets) {
		t.Fatalf("buckets %+v", sv.Buckets)
	}
	for _, b := range sv.Buckets {
		if len(b.Lost) != 1 || !b.Lost[0].All {
			t.Fatalf("bucket %+v", b)
		}
	}
	if !strings.Contains(sv.String(), "nothing could be read") || !strings.Contains(sv.String(), sv.DamagedPath) {
		t.Fatalf("summary %q", sv)
	}
	if evs, err := s.Events(0, 0); err != nil || len(evs) != 0 {
		t.Fatalf("events %d, %v", len(evs), err)
	}
	if _, err := s.AppendEvent(Event{Kind: "store-salvaged"}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCheckedFirstMetaPage(t *testing.T) {
	data, counts, total := fixture(t)
	damaged := bytes.Clone(data)
	for i := 0; i < 4096; i++ {
		damaged[i] = 0xAA
	}
	path := writeDamaged(t, damaged)
	s, sv := openSalvaged(t, path, damaged)
	if sv.Unreadable || sv.Kept() != total || len(sv.Losses()) != 0 {
		t.Fatalf("kept %d of %d, lost %v", sv.Kept(), total, sv.Losses())
	}
	got, _, err := countRecords(s)
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range counts {
		if got[k] != n {
			t.Fatalf("%s: %d records, want %d", k, got[k], n)
		}
	}
	if !strings.Contains(sv.String(), "kept all "+thousands(total)+" of its records") {
		t.Fatalf("summary %q", sv)
	}
	// The event log goes on from where it was.
	seq, err := s.AppendEvent(Event{Kind: "store-salvaged"})
	if err != nil || seq != 301 {
		t.Fatalf("seq %d, %v", seq, err)
	}
}

// probePages returns the root page of the bucket results/node/probe in
// the file data, and its child pages if the root is a branch.
func probePages(t *testing.T, data []byte, node, probe string) (root uint64, children []uint64, leafKeys map[uint64]int) {
	t.Helper()
	path := writeDamaged(t, data)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bucketResults).Bucket([]byte(node)).Bucket([]byte(probe)).RootPage())
		return nil
	})
	if err != nil || root == 0 {
		t.Fatalf("root page %d (0: inline), %v", root, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &parser{f: f, size: int64(len(data)), seen: map[uint64]bool{}}
	if !p.readMetas() {
		t.Fatal("no meta")
	}
	buf, err := p.page(root)
	if err != nil {
		t.Fatal(err)
	}
	leafKeys = map[uint64]int{}
	leaf, es := elems(buf)
	if leaf {
		return root, nil, leafKeys
	}
	for _, e := range es {
		children = append(children, e.child)
		cb, err := p.page(e.child)
		if err != nil {
			t.Fatal(err)
		}
		_, kids := elems(cb)
		leafKeys[e.child] = len(kids)
	}
	return root, children, leafKeys
}

func overwritePage(data []byte, id uint64, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := id * 4096; i < (id+1)*4096; i++ {
		data[i] = byte(rng.Uint32())
	}
}

func TestOpenCheckedResultsBucketRoot(t *testing.T) {
	data, counts, total := fixture(t)
	root, _, _ := probePages(t, data, "node-1", "probe-2")
	damaged := bytes.Clone(data)
	overwritePage(damaged, root, 1)
	path := writeDamaged(t, damaged)
	s, sv := openSalvaged(t, path, damaged)
	want := total - counts["results/node-1/probe-2"]
	if sv.Kept() != want {
		t.Fatalf("kept %d, want %d", sv.Kept(), want)
	}
	losses := sv.Losses()
	if len(losses) != 1 || losses[0] != (Loss{Path: "results/node-1/probe-2", All: true}) {
		t.Fatalf("losses %+v", losses)
	}
	for _, b := range sv.Buckets {
		if b.Name == "results" && b.Kept != counts["results"]-counts["results/node-1/probe-2"] {
			t.Fatalf("results kept %d", b.Kept)
		}
	}
	if !strings.Contains(sv.String(), "lost all of results/node-1/probe-2") || !strings.Contains(sv.String(), "page "+strconv.FormatUint(root, 10)) {
		t.Fatalf("summary %q", sv)
	}
	// The other probes of the node are all there, the damaged one is
	// empty and writable.
	rs, err := s.Results("node-1", "probe-1", 0)
	if err != nil || len(rs) != fixtureResults {
		t.Fatalf("probe-1: %d results, %v", len(rs), err)
	}
	if rs, err := s.Results("node-1", "probe-2", 0); err != nil || len(rs) != 0 {
		t.Fatalf("probe-2: %d results, %v", len(rs), err)
	}
	if err := s.PutResult(StoredResult{Node: "node-1", Probe: "probe-2", Start: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCheckedResultsLeafPage(t *testing.T) {
	data, counts, total := fixture(t)
	_, children, leafKeys := probePages(t, data, "node-2", "probe-0")
	if len(children) < 2 {
		t.Fatalf("the bucket has %d leaf pages; make the fixture bigger", len(children))
	}
	leaf := children[1]
	damaged := bytes.Clone(data)
	overwritePage(damaged, leaf, 2)
	path := writeDamaged(t, damaged)
	s, sv := openSalvaged(t, path, damaged)
	if want := total - leafKeys[leaf]; sv.Kept() != want {
		t.Fatalf("kept %d, want %d", sv.Kept(), want)
	}
	losses := sv.Losses()
	if len(losses) != 1 || losses[0] != (Loss{Path: "results/node-2/probe-0", All: false}) {
		t.Fatalf("losses %+v", losses)
	}
	rs, err := s.Results("node-2", "probe-0", 0)
	if err != nil || len(rs) != counts["results/node-2/probe-0"]-leafKeys[leaf] {
		t.Fatalf("%d results, %v", len(rs), err)
	}
	if !strings.Contains(sv.String(), "lost part of results/node-2/probe-0") {
		t.Fatalf("summary %q", sv)
	}
}

// TestOpenCheckedRandomPages damages random pages, in four ways, under
// many seeds: every time the store must open, pass Check, and take writes.
func TestOpenCheckedRandomPages(t *testing.T) {
	data, _, total := fixture(t)
	pages := uint64(len(data) / 4096)
	salvaged := 0
	for seed := uint64(1); seed <= 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		damaged := bytes.Clone(data)
		for n := 1 + rng.IntN(4); n > 0; n-- {
			id := 2 + rng.Uint64N(pages-2)
			page := damaged[id*4096 : (id+1)*4096]
			switch seed % 4 {
			case 0: // random bytes
				for i := range page {
					page[i] = byte(rng.Uint32())
				}
			case 1: // zeros
				clear(page)
			case 2: // another page's bytes: a sound page in the wrong place
				other := 2 + rng.Uint64N(pages-2)
				copy(page, data[other*4096:(other+1)*4096])
			case 3: // 64 bytes behind the page header: bbolt may fault on
				// these, which no recover can catch
				off := 16 + rng.IntN(4096-16-64)
				for i := off; i < off+64; i++ {
					page[i] = byte(rng.Uint32())
				}
			}
		}
		path := writeDamaged(t, damaged)
		s, sv, err := OpenChecked(path, Options{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if sv != nil {
			salvaged++
			t.Logf("seed %d: %v", seed, sv)
			checkSalvaged(t, s, sv, path, damaged)
			if sv.Kept() > total {
				t.Fatalf("seed %d: kept %d of %d", seed, sv.Kept(), total)
			}
			if len(sv.Losses()) == 0 && sv.Kept() != total {
				t.Fatalf("seed %d: kept %d of %d, but nothing lost: %v", seed, sv.Kept(), total, sv)
			}
		} else if err := s.Check(); err != nil {
			t.Fatalf("seed %d: opened without salvage, but: %v", seed, err)
		}
		if _, err := s.AppendEvent(Event{Kind: "test"}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := s.PutResult(StoredResult{Node: "node-0", Probe: "probe-0", Start: time.Now()}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		s.Close()
	}
	if salvaged < 30 {
		t.Fatalf("only %d of 60 damaged files needed a salvage", salvaged)
	}
}

func TestOpenCheckedNotBolt(t *testing.T) {
	junk := bytes.Repeat([]byte("not a store file\n"), 100)
	path := writeDamaged(t, junk)
	_, sv := openSalvaged(t, path, junk)
	if !sv.Unreadable {
		t.Fatalf("%v", sv)
	}
}

func TestOpenCheckedLockHeld(t *testing.T) {
	data, _, _ := fixture(t)
	damaged := bytes.Clone(data)
	clear(damaged[:8192])
	path := writeDamaged(t, damaged)
	// bbolt cannot open this one, so hold the lock as it would.
	f, err := lockedFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _, err = OpenChecked(path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("err %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, damaged) {
		t.Fatal("file changed")
	}

	// And a sound file held by a Store.
	path2 := writeDamaged(t, data)
	s, err := Open(path2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := OpenChecked(path2, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("err %v", err)
	}
}

func TestOpenCheckedNewerSchemaDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion+1)))
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(data[:4096]) // meta page 0: damage, but the schema is still readable
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenChecked(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer sentry") {
		t.Fatalf("err %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("file changed")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("files: %v", entries)
	}
}

func TestSalvageString(t *testing.T) {
	sv := &Salvage{
		Path: "/var/lib/sentry/state.db", DamagedPath: "/var/lib/sentry/state.db.damaged-20261203T120405Z",
		Problem: "page 12: invalid page type 0x0",
		Buckets: []BucketSalvage{
			{Name: "events", Kept: 1200},
			{Name: "results", Kept: 4, Lost: []Loss{{Path: "results/node-s/web", All: true}}},
		},
	}
	want := "state.db was damaged (page 12: invalid page type 0x0); kept 1,204 of its records, lost all of results/node-s/web; the damaged file is /var/lib/sentry/state.db.damaged-20261203T120405Z"
	if sv.String() != want {
		t.Fatalf("got  %q\nwant %q", sv.String(), want)
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q", n, got)
		}
	}
}

// TestOpenCheckedAfterKill: a file whose writer was killed mid-write is not
// damaged (bbolt's commits are atomic), so OpenChecked must not salvage it.
func TestOpenCheckedAfterKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	for round := 0; round < 4; round++ {
		runAndKill(t, path, round, 3, time.Duration(round*5)*time.Millisecond)
		s, sv, err := OpenChecked(path, Options{LockTimeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		s.Close()
		if sv != nil {
			t.Fatalf("round %d: salvaged a sound file: %v", round, sv)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("files: %v", entries)
	}
}

// TestOpenCheckedDamagedRecord damages the insides of two values, an
// event's and a result's, leaving every page's layout sound (bbolt keeps
// no checksums, so bbolt's own Check passes it): the store must find them,
// salvage the file without them, and read and prune what is left. Before,
// such a record was kept, and every read of the event log and every prune
// failed on it for good.
func TestOpenCheckedDamagedRecord(t *testing.T) {
	data, counts, total := fixture(t)
	damaged := bytes.Clone(data)
	// The opening quote of event 124's message (the fixture's 124th event:
	// "event 123 ...").
	i := bytes.Index(damaged, []byte(`"event 123 x`))
	if i < 0 {
		t.Fatal("event 124 not found in the fixture")
	}
	damaged[i] = 0x05
	// One result's duration.
	j := bytes.Index(damaged, []byte(`"duration_ms":17,`))
	if j < 0 {
		t.Fatal("no result with duration 17 in the fixture")
	}
	damaged[j+len(`"duration_ms":`)] = 0x05
	path := writeDamaged(t, damaged)

	// bbolt itself finds nothing wrong with this file.
	func() {
		cp := writeDamaged(t, damaged)
		db, err := bolt.Open(cp, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		}); err != nil {
			t.Fatalf("bbolt's check found the damage (%v): the test no longer tests what the store adds", err)
		}
	}()

	s, sv := openSalvaged(t, path, damaged)
	if !strings.Contains(sv.Problem, "cannot be read") {
		t.Fatalf("problem %q does not say a record cannot be read", sv.Problem)
	}
	if sv.Kept() != total-2 {
		t.Fatalf("kept %d of %d, want all but 2", sv.Kept(), total)
	}
	losses := sv.Losses()
	if len(losses) != 2 || losses[0] != (Loss{Path: "events"}) || !strings.HasPrefix(losses[1].Path, "results/node-") || losses[1].All {
		t.Fatalf("losses %+v, want part of events and part of one results/node/probe", losses)
	}
	evs, err := s.Events(0, 0)
	if err != nil {
		t.Fatalf("events after the salvage: %v", err)
	}
	if len(evs) != counts["events"]-1 {
		t.Fatalf("%d events, want %d", len(evs), counts["events"]-1)
	}
	for _, e := range evs {
		if e.Seq == 124 {
			t.Fatal("the damaged event 124 was kept")
		}
	}
	nres := 0
	for n := 0; n < fixtureNodes; n++ {
		for p := 0; p < fixtureProbes; p++ {
			rs, err := s.Results(fmt.Sprintf("node-%d", n), fmt.Sprintf("probe-%d", p), 0)
			if err != nil {
				t.Fatalf("results after the salvage: %v", err)
			}
			nres += len(rs)
		}
	}
	if want := fixtureNodes*fixtureProbes*fixtureResults - 1; nres != want {
		t.Fatalf("%d results, want %d", nres, want)
	}
	if _, err := s.Prune(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Retention{MaxAge: time.Hour, MaxResults: 50, MaxEvents: 10}); err != nil {
		t.Fatalf("prune after the salvage: %v", err)
	}
	seq, err := s.AppendEvent(Event{Kind: "test", Message: "after"})
	if err != nil || seq != 301 {
		t.Fatalf("the next event got seq %d (%v), want 301: a sequence number must never be given twice", seq, err)
	}
	// The salvaged copy is sound: opened again, it is left as it is.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, sv2, err := OpenChecked(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if sv2 != nil {
		t.Fatalf("the salvaged copy needs a salvage again: %s", sv2)
	}
}

// TestOpenCheckedLeavesTheFileUnmapped: the check at open reads every page
// through bbolt's memory map; the store is then mapped afresh, so that the
// pages read stay out of the agent's resident memory (before, the whole
// file stayed resident for as long as the agent ran).
func TestOpenCheckedLeavesTheFileUnmapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for p := 0; p < 10; p++ {
		var rs []StoredResult
		for i := 0; i < 1000; i++ {
			rs = append(rs, result("node-p", fmt.Sprintf("probe-%d", p), i))
		}
		if err := s.PutResults(rs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s, sv, err := OpenChecked(path, Options{})
	if err != nil || sv != nil {
		t.Fatalf("OpenChecked: %v, %v", sv, err)
	}
	defer s.Close()
	rss := mappedRSS(t, path)
	t.Logf("file %d KiB, resident after OpenChecked %d KiB", fi.Size()>>10, rss>>10)
	if rss > fi.Size()/4 {
		t.Fatalf("after OpenChecked %d KiB of the %d KiB file are resident", rss>>10, fi.Size()>>10)
	}
	// And it is the store: it reads and writes.
	if got, err := s.Results("node-p", "probe-3", 0); err != nil || len(got) != 1000 {
		t.Fatalf("%d results, %v", len(got), err)
	}
	if _, err := s.AppendEvent(Event{Kind: "test", Message: "after"}); err != nil {
		t.Fatal(err)
	}
}

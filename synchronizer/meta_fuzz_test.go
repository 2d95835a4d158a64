package synchronizer

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/sentryha/sentry/internal/safetoml"
)

// metaCommit stores a commit whose tree holds meta/etc/@meta.toml with
// meta, and refused.toml with refused when it is not empty: what a primary
// sends, as the secondary's ReadSnapshot reads it.
func metaCommit(tb testing.TB, meta, refused []byte) (*memory.Storage, plumbing.Hash) {
	tb.Helper()
	st := memory.NewStorage()
	put := func(o plumbing.EncodedObject) plumbing.Hash {
		h, err := st.SetEncodedObject(o)
		if err != nil {
			tb.Fatal(err)
		}
		return h
	}
	blob := func(b []byte) plumbing.Hash {
		o := st.NewEncodedObject()
		o.SetType(plumbing.BlobObject)
		w, err := o.Writer()
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(b)
		w.Close()
		return put(o)
	}
	tree := func(entries ...object.TreeEntry) plumbing.Hash {
		o := st.NewEncodedObject()
		if err := (&object.Tree{Entries: entries}).Encode(o); err != nil {
			tb.Fatal(err)
		}
		return put(o)
	}
	etc := tree(object.TreeEntry{Name: MetaName, Mode: filemode.Regular, Hash: blob(meta)})
	metaDir := tree(object.TreeEntry{Name: "etc", Mode: filemode.Dir, Hash: etc})
	root := []object.TreeEntry{{Name: "meta", Mode: filemode.Dir, Hash: metaDir}}
	if len(refused) > 0 {
		root = append(root, object.TreeEntry{Name: "refused.toml", Mode: filemode.Regular, Hash: blob(refused)})
	}
	sig := object.Signature{Name: "sentry on p", Email: "sentry@p", When: time.Unix(1700000000, 0).UTC()}
	o := st.NewEncodedObject()
	if err := (&object.Commit{Author: sig, Committer: sig, Message: "fuzz\n", TreeHash: tree(root...)}).Encode(o); err != nil {
		tb.Fatal(err)
	}
	return st, put(o)
}

// Issue 20, finding 8: @meta.toml and refused.toml come from the primary;
// a nested one is refused before BurntSushi/toml (quadratic in nesting)
// parses it, naming the commit, the file, the line and the limit.
func TestReadSnapshotRefusesNestedMeta(t *testing.T) {
	// 8 KB: about half a second and 500 MB in the parser alone.
	nested := "schema_version = 1\nx = " + strings.Repeat("{b=", 2000) + "1" + strings.Repeat("}", 2000) + "\n"
	good := "schema_version = 1\n[[entry]]\nname = \"hosts\"\ntype = \"file\"\nmode = \"0644\"\nowner = \"root\"\ngroup = \"root\"\n"
	for _, c := range []struct {
		name, meta, refused, want string
	}{
		{"@meta.toml", nested, "", "meta/etc/@meta.toml: line 2: keys nested 9 deep, over the limit of 8 (refused before parsing)"},
		{"refused.toml", good, "[[refused]]\npath = \"/etc/x\"\nreason = " + strings.Repeat("{b=", 2000) + "1" + strings.Repeat("}", 2000) + "\n",
			"refused.toml: line 3: keys nested 9 deep, over the limit of 8 (refused before parsing)"},
		{"a large @meta.toml", "schema_version = 1\n#" + strings.Repeat("x", safetoml.PeerBytes) + "\n", "",
			"meta/etc/@meta.toml: 1048597 bytes, over the limit of 1048576 for this file (refused before parsing)"},
	} {
		st, h := metaCommit(t, []byte(c.meta), []byte(c.refused))
		_, err := ReadSnapshot(st, h)
		if !errors.Is(err, safetoml.ErrLimit) || err.Error() != "commit "+h.String()[:12]+": "+c.want {
			t.Errorf("%s: ReadSnapshot = %v\nwant commit %s: %s", c.name, err, h.String()[:12], c.want)
		}
	}
	st, h := metaCommit(t, []byte(good), nil)
	s, err := ReadSnapshot(st, h)
	if err != nil || s.Entries["/etc/hosts"].Mode != "0644" {
		t.Fatalf("a good @meta.toml: %+v, %v", s, err)
	}
}

// FuzzMeta: the secondary reads any @meta.toml the primary sends into a
// snapshot of clean paths under its directory, or refuses the commit with
// an error naming the file; never a panic.
//
//	go test -run '^$' -fuzz '^FuzzMeta$' -fuzztime 30s ./synchronizer
func FuzzMeta(f *testing.F) {
	for _, s := range []string{
		"schema_version = 1\n[[entry]]\nname = \"nginx.conf\"\ntype = \"file\"\nmode = \"0644\"\nowner = \"root\"\ngroup = \"root\"\n" +
			"[[entry]]\nname = \"sites-enabled\"\ntype = \"dir\"\nmode = \"0755\"\nowner = \"root\"\ngroup = \"root\"\n" +
			"[[entry]]\nname = \"default\"\ntype = \"symlink\"\nmode = \"0777\"\nowner = \"root\"\ngroup = \"root\"\ntarget = \"../sites-available/default\"\n",
		"schema_version = 1\n[[entry]]\nname = \"shadow\"\ntype = \"file\"\nmode = \"0640\"\nowner = \"root\"\ngroup = \"shadow\"\nencrypted = true\nmac = \"00ff\"\nxattrs = \"user.a=YQ==\"\n",
		"schema_version = 99\n",
		"schema_version = 1\n[[entry]]\nname = \"..\"\n",
		"schema_version = 1\n[[entry]]\nname = \"a/b\"\n",
		"schema_version = 1\n[[entry]]\nname = \"\"\n",
		"schema_version = 1\nentry = 3\n",
		"schema_version = 1\n[[entry]]\nname = \"x\nmode = 0644\n",
		"[[entry]]\nname = {a = {b = {c = {d = {e = {f = {g = {h = 1}}}}}}}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, h := metaCommit(t, data, nil)
		s, err := ReadSnapshot(st, h)
		if err != nil {
			if !strings.Contains(err.Error(), "meta/etc/"+MetaName) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for p, e := range s.Entries {
			if filepath.Dir(p) != "/etc" || filepath.Base(p) != e.Name || filepath.Clean(p) != p {
				t.Fatalf("entry %q at %q is not a clean name in /etc", e.Name, p)
			}
		}
	})
}

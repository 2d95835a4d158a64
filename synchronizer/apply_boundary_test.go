package synchronizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// snapBuilder makes a commit's snapshot by hand: what a compromised
// primary could send, whatever its own scan would have committed.
type snapBuilder struct {
	t        *testing.T
	st       *memory.Storage
	s        *Snapshot
	uid, gid string
}

func newSnap(t *testing.T) *snapBuilder {
	return &snapBuilder{t: t, st: memory.NewStorage(),
		s:   &Snapshot{Entries: map[string]Entry{}, Blobs: map[string]plumbing.Hash{}, Refused: map[string]bool{}},
		uid: strconv.Itoa(os.Getuid()), gid: strconv.Itoa(os.Getgid())}
}

func (b *snapBuilder) add(p string, e Entry) {
	e.Name = filepath.Base(p)
	if e.Owner == "" {
		e.Owner = b.uid
	}
	if e.Group == "" {
		e.Group = b.gid
	}
	b.s.Entries[p] = e
}

func (b *snapBuilder) dir(p, mode string) { b.add(p, Entry{Type: TypeDir, Mode: mode}) }

func (b *snapBuilder) link(p, target string) {
	b.add(p, Entry{Type: TypeSymlink, Mode: "0777", Target: target})
}

func (b *snapBuilder) file(p, mode, content string) {
	obj := b.st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, _ := obj.Writer()
	w.Write([]byte(content))
	w.Close()
	h, err := b.st.SetEncodedObject(obj)
	if err != nil {
		b.t.Fatal(err)
	}
	b.add(p, Entry{Type: TypeFile, Mode: mode})
	b.s.Blobs[p] = h
}

func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(root, d), 0o755)
	}
}

func refusals(res *ApplyResult) map[string]string {
	out := map[string]string{}
	if res != nil {
		for _, r := range res.Refused {
			out[r.Path] = r.Reason
		}
	}
	return out
}

func emptySnap() *Snapshot { return &Snapshot{Entries: map[string]Entry{}} }

// Issue 20, finding 1: every link passes a lexical check, but the kernel
// follows s to /etc/nginx, so esc is /etc/cron.d and up is /etc. Nothing
// may land outside the tracked roots, the links that lead out are refused,
// and the rest of the commit is applied.
func TestApplySymlinkChainStaysInside(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "etc/nginx", "etc/postgresql", "etc/cron.d", "etc/sudoers.d")
	pol := &Policy{Roots: []string{"/etc/nginx", "/etc/postgresql"}}
	b := newSnap(t)
	b.dir("/etc/nginx", "0755")
	b.dir("/etc/postgresql", "0755")
	b.file("/etc/nginx/nginx.conf", "0644", "worker_processes auto;\n")
	b.dir("/etc/nginx/sites-available", "0755")
	b.file("/etc/nginx/sites-available/default", "0644", "server { listen 80; }\n")
	b.dir("/etc/nginx/sites-enabled", "0755")
	// Debian's own link: absolute, and inside its root.
	b.link("/etc/nginx/sites-enabled/default", "/etc/nginx/sites-available/default")
	b.link("/etc/postgresql/s", "../nginx") // into another tracked root: allowed
	b.link("/etc/postgresql/esc", "s/../cron.d")
	b.file("/etc/postgresql/esc/evil", "0644", "* * * * * root echo pwned\n")
	b.link("/etc/postgresql/up", "s/..")
	b.dir("/etc/postgresql/up/sudoers.d", "0700")
	b.file("/etc/postgresql/s/planted", "0644", "through a link\n")

	ap := &Applier{Store: b.st, Policy: pol, Root: root}
	res, err := ap.Apply(emptySnap(), b.s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/cron.d/evil")); err == nil {
		t.Error("a file under esc/ landed in /etc/cron.d")
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/sudoers.d")); fi.Mode().Perm() != 0o755 {
		t.Errorf("/etc/sudoers.d was changed through up/: %v", fi.Mode())
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/nginx/planted")); err == nil {
		t.Error("a file was written through the link s/")
	}
	why := refusals(res)
	for _, p := range []string{"/etc/postgresql/esc", "/etc/postgresql/up"} {
		if !strings.Contains(why[p], "outside the tracked paths") {
			t.Errorf("%s: refusal %q (refused: %v)", p, why[p], why)
		}
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	for _, p := range []string{"/etc/postgresql/esc/evil", "/etc/postgresql/up/sudoers.d", "/etc/postgresql/s/planted"} {
		if why[p] == "" {
			t.Errorf("%s was not refused (refused: %v)", p, why)
		}
	}
	// The rest of the commit is applied.
	if l, _ := os.Readlink(filepath.Join(root, "etc/postgresql/s")); l != "../nginx" {
		t.Errorf("link s: %q", l)
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/nginx/sites-enabled/default")); l != "/etc/nginx/sites-available/default" {
		t.Errorf("sites-enabled/default: %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/nginx/nginx.conf")); string(b) != "worker_processes auto;\n" {
		t.Errorf("nginx.conf: %q", b)
	}
	// Absolute or relative, a link is judged by where it leads.
	b2 := newSnap(t)
	b2.dir("/etc/nginx", "0755")
	b2.link("/etc/nginx/abs-out", "/etc/cron.d")
	b2.link("/etc/nginx/self", "/etc/nginx")
	b2.link("/etc/nginx/loop1", "loop2")
	b2.link("/etc/nginx/loop2", "loop1")
	res, err = (&Applier{Store: b2.st, Policy: pol, Root: root}).Apply(emptySnap(), b2.s)
	if err != nil {
		t.Fatal(err)
	}
	why = refusals(res)
	if why["/etc/nginx/abs-out"] == "" || why["/etc/nginx/self"] != "" || !strings.Contains(why["/etc/nginx/loop1"], "loop") {
		t.Errorf("refused %v", why)
	}
}

// Issue 20, finding 7: between the check and the change, the owner of a
// tracked parent swaps a directory for a symlink to a file outside. The
// owner and mode must go to the directory that was opened, never to the
// link's target.
func TestApplyChownChmodRace(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "etc/postgresql/15/main")
	secret := filepath.Join(root, "etc/secret")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(secret, 0o600)
	pol := &Policy{Roots: []string{"/etc/postgresql"}}
	b := newSnap(t)
	b.dir("/etc/postgresql", "0755")
	b.dir("/etc/postgresql/15", "0755")
	b.dir("/etc/postgresql/15/main", "0755")
	b.add("/etc/postgresql/15/main/conf.d", Entry{Type: TypeDir, Mode: "0755", Owner: "1", Group: "1"})
	b.file("/etc/postgresql/15/main/postgresql.conf", "0644", "port = 5432\n")
	raced := 0
	ap := &Applier{Store: b.st, Policy: pol, Root: root}
	ap.beforeChange = func(p string) {
		if p != "/etc/postgresql/15/main/conf.d" {
			return
		}
		raced++
		d := filepath.Join(root, p)
		if err := os.Rename(d, d+".moved"); err != nil {
			t.Errorf("race: %v", err)
		}
		if err := os.Symlink(secret, d); err != nil {
			t.Errorf("race: %v", err)
		}
	}
	ap.Apply(emptySnap(), b.s) // an error is fine; a changed secret is not
	if raced != 1 {
		t.Fatalf("the hook ran %d times", raced)
	}
	fi, err := os.Lstat(secret)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fileOwner(fi) != [2]int{0, 0} && os.Getuid() == 0 {
		t.Errorf("the file outside was changed through the swapped link: %v, owner %v", fi.Mode(), fileOwner(fi))
	}
	if os.Getuid() == 0 {
		// The directory that was opened got the owner and mode.
		if fi, err := os.Lstat(filepath.Join(root, "etc/postgresql/15/main/conf.d.moved")); err != nil ||
			fi.Mode().Perm() != 0o755 || fileOwner(fi) != [2]int{1, 1} {
			t.Errorf("the opened directory: %v %v", fi, err)
		}
	}
}

// Issue 20, lows: world-writable modes, ownership that hands a tracked
// file to a login account, control characters in names and targets, and
// a tracked root replaced by a link are refused; the rest is applied.
func TestApplyRefusesUnsafeMetadata(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "etc/nginx")
	pol := &Policy{Roots: []string{"/etc/nginx", "/etc/mysql"}}
	b := newSnap(t)
	b.dir("/etc/nginx", "0755")
	b.file("/etc/nginx/ok", "0640", "fine\n")
	b.file("/etc/nginx/ww", "0666", "anyone may write\n")
	b.dir("/etc/nginx/wwd", "0777")
	b.file("/etc/nginx/bad\nname", "0644", "x\n")
	b.dir("/etc/nginx/esc\x1b[31mred", "0755")
	b.link("/etc/nginx/ctl\u009bx", "ok")
	b.link("/etc/nginx/t", "o\nk")
	login := 1000 // a login account's id, other than the one this test runs as
	for login == os.Geteuid() || login == os.Getegid() {
		login++
	}
	b.add("/etc/nginx/owned", Entry{Type: TypeFile, Mode: "0644", Owner: strconv.Itoa(login)})
	b.s.Blobs["/etc/nginx/owned"] = b.s.Blobs["/etc/nginx/ok"]
	b.add("/etc/nginx/grp", Entry{Type: TypeFile, Mode: "0664", Group: strconv.Itoa(login)})
	b.s.Blobs["/etc/nginx/grp"] = b.s.Blobs["/etc/nginx/ok"]
	b.link("/etc/mysql", "/etc/nginx")
	res, err := (&Applier{Store: b.st, Policy: pol, Root: root}).Apply(emptySnap(), b.s)
	if err != nil {
		t.Fatal(err)
	}
	why := refusals(res)
	for p, want := range map[string]string{
		"/etc/nginx/ww":             "world-writable",
		"/etc/nginx/wwd":            "world-writable",
		`/etc/nginx/bad\nname`:      "control character",
		`/etc/nginx/esc\x1b[31mred`: "control character",
		`/etc/nginx/ctl\u009bx`:     "control character",
		"/etc/nginx/t":              "control character",
		"/etc/nginx/owned":          "login account",
		"/etc/nginx/grp":            "login account",
		"/etc/mysql":                "tracked root",
	} {
		if !strings.Contains(why[p], want) {
			t.Errorf("%q: refusal %q, want %q", p, why[p], want)
		}
	}
	for _, r := range res.Refused {
		for _, c := range r.Path {
			if c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 {
				t.Errorf("refusal path %q holds a control character", r.Path)
			}
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "etc/nginx"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "ok" {
		t.Errorf("written: %q", names)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/mysql")); err == nil {
		t.Error("the tracked root /etc/mysql was made a link")
	}
}

// A link that was inside when applied and leads out after a later change
// (its path goes through a folder that became a link) is refused and
// removed: no link the commit names leads out after an apply.
func TestApplyRemovesLinkThatComesToLeadOut(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "etc/nginx", "etc/postgresql")
	pol := &Policy{Roots: []string{"/etc/nginx", "/etc/postgresql"}}
	b1 := newSnap(t)
	b1.dir("/etc/nginx", "0755")
	b1.dir("/etc/nginx/b", "0755")
	b1.link("/etc/nginx/a", "b/..")
	ap := &Applier{Store: b1.st, Policy: pol, Root: root}
	if res, err := ap.Apply(emptySnap(), b1.s); err != nil || len(res.Refused) != 0 {
		t.Fatalf("first apply: %v %+v", err, res)
	}
	b2 := newSnap(t)
	b2.st = b1.st
	b2.dir("/etc/nginx", "0755")
	b2.link("/etc/nginx/b", "../postgresql")
	b2.link("/etc/nginx/a", "b/..")
	res, err := ap.Apply(b1.s, b2.s)
	if err != nil {
		t.Fatal(err)
	}
	if why := refusals(res); !strings.Contains(why["/etc/nginx/a"], "outside the tracked paths") {
		t.Errorf("refused %v", why)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/nginx/a")); err == nil {
		t.Error("the link that now leads to /etc is still there")
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/nginx/b")); l != "../postgresql" {
		t.Errorf("b: %q", l)
	}
}

// A local file the apply reads to compare must not be a way to block it:
// a fifo where a tracked file goes is replaced, not opened for ever.
func TestApplyReplacesFifo(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "etc/nginx")
	if err := syscall.Mkfifo(filepath.Join(root, "etc/nginx/nginx.conf"), 0o644); err != nil {
		t.Skip("no fifo here:", err)
	}
	pol := &Policy{Roots: []string{"/etc/nginx"}}
	b := newSnap(t)
	b.dir("/etc/nginx", "0755")
	b.file("/etc/nginx/nginx.conf", "0644", "worker_processes auto;\n")
	if _, err := (&Applier{Store: b.st, Policy: pol, Root: root}).Apply(emptySnap(), b.s); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/nginx/nginx.conf")); string(got) != "worker_processes auto;\n" {
		t.Errorf("got %q", got)
	}
}

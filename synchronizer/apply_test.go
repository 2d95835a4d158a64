package synchronizer

import (
	"os"

	"golang.org/x/sys/unix"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	rootP, pol := fixture(t)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	c1, _ := r.Commit("snapshot", time.Now())

	rootS := t.TempDir()
	os.MkdirAll(filepath.Join(rootS, rootP, "etc/ssh"), 0o755)
	ap := &Applier{Store: r.Git().Storer, Policy: pol, Root: rootS}
	empty := &Snapshot{Entries: map[string]Entry{}}
	// What a killed apply leaves: a staging folder with a half file.
	os.MkdirAll(filepath.Join(rootS, rootP, "etc/nginx", StagePrefix+"123", "f"), 0o700)
	s1, err := ReadSnapshot(r.Git().Storer, c1.Hash)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ap.Apply(empty, s1)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(rootP, "etc/nginx/nginx.conf")
	got, _ := os.ReadFile(filepath.Join(rootS, conf))
	if string(got) != "worker_processes auto;\n" || len(res.Written) < 5 {
		t.Fatalf("applied %q; written %v", got, res.Written)
	}
	if l, _ := os.Readlink(filepath.Join(rootS, rootP, "etc/nginx/sites-enabled-default")); l != "sites-available/default" {
		t.Errorf("symlink %q", l)
	}
	// Change on P: mode and content; a file removed; a local edit on S.
	os.WriteFile(conf, []byte("worker_processes 4;\n"), 0o644)
	os.Chmod(conf, 0o600)
	os.Remove(filepath.Join(rootP, "etc/postfix/main.cf"))
	r.ScanAll()
	c2, _ := r.Commit("edit", time.Now())
	s2, _ := ReadSnapshot(r.Git().Storer, c2.Hash)
	os.WriteFile(filepath.Join(rootS, rootP, "etc/nginx/sites-available/default"), []byte("local edit\n"), 0o644)
	res, err = ap.Apply(s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(filepath.Join(rootS, conf))
	fi, _ := os.Stat(filepath.Join(rootS, conf))
	if string(got) != "worker_processes 4;\n" || fi.Mode().Perm() != 0o600 {
		t.Errorf("after apply: %q %v", got, fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(rootS, rootP, "etc/postfix/main.cf")); err == nil {
		t.Error("a file removed on P stays on S")
	}
	if strings.Join(res.Drift, ",") != filepath.Join(rootP, "etc/nginx/sites-available/default") {
		t.Errorf("drift %v", res.Drift)
	}
	if b, _ := os.ReadFile(filepath.Join(rootS, rootP, "etc/nginx/sites-available/default")); string(b) != "server { listen 80; }\n" {
		t.Errorf("drift not overwritten: %q", b)
	}
	// No staging folder is left behind.
	filepath.Walk(rootS, func(p string, fi os.FileInfo, err error) error {
		if strings.Contains(p, ".sentry-stage-") {
			t.Errorf("staging left: %s", p)
		}
		return nil
	})
}

// A primary that would send an executable or a path outside this node's
// roots gets it refused by the secondary's own checks.
func TestApplyRefusesWhatThePrimaryMustNotSend(t *testing.T) {
	rootP, pol := fixture(t)
	hook := filepath.Join(rootP, "etc/nginx/hook")
	os.WriteFile(hook, []byte("echo pwned\n"), 0o755)
	loose := &Policy{Roots: append([]string{filepath.Join(rootP, "etc/ssh")}, pol.Roots...), AllowExec: map[string]bool{hook: true}}
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", loose)
	r.ScanAll()
	c, _ := r.Commit("evil", time.Now())
	s, _ := ReadSnapshot(r.Git().Storer, c.Hash)
	if _, ok := s.Entries[hook]; !ok {
		t.Fatal("fixture: the loose primary did not commit the hook")
	}
	rootS := t.TempDir()
	os.MkdirAll(filepath.Join(rootS, rootP, "etc/ssh"), 0o755)
	ap := &Applier{Store: r.Git().Storer, Policy: pol, Root: rootS}
	res, err := ap.Apply(&Snapshot{Entries: map[string]Entry{}}, s)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, rf := range res.Refused {
		reasons[rf.Path] = rf.Reason
	}
	if !strings.Contains(reasons[hook], "executable") {
		t.Errorf("hook: %q", reasons[hook])
	}
	if !strings.Contains(reasons[filepath.Join(rootP, "etc/ssh/other")], "outside the tracked paths") {
		t.Errorf("ssh/other: %v", reasons)
	}
	if _, err := os.Stat(filepath.Join(rootS, hook)); err == nil {
		t.Error("the executable was written on the secondary")
	}
}

func TestDrift(t *testing.T) {
	rootP, pol := fixture(t)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	c, _ := r.Commit("snapshot", time.Now())
	s, _ := ReadSnapshot(r.Git().Storer, c.Hash)
	if d, err := Drift(r.Git().Storer, s, "", nil); err != nil || len(d) != 0 {
		t.Fatalf("drift on an unchanged tree: %v %v", d, err)
	}
	conf := filepath.Join(rootP, "etc/nginx/nginx.conf")
	os.WriteFile(conf, []byte("worker_processes auto;\nlocal_edit on;\n"), 0o644)
	os.Chmod(filepath.Join(rootP, "etc/postfix/main.cf"), 0o600)
	os.Remove(filepath.Join(rootP, "etc/ssh/sshd_config"))
	d, err := Drift(r.Git().Storer, s, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]DriftItem{}
	for _, it := range d {
		got[filepath.Base(it.Path)] = it
	}
	if it := got["nginx.conf"]; it.What != "content" || !strings.Contains(it.Diff, "+local_edit on;") || !strings.Contains(it.Diff, " worker_processes auto;") {
		t.Errorf("nginx.conf: %+v", it)
	}
	if got["main.cf"].What != "mode" || got["sshd_config"].What != "missing" {
		t.Errorf("drift %+v", d)
	}
}

func TestOverlays(t *testing.T) {
	rootP, pol := fixture(t)
	pol.OverlayDir = filepath.Join(rootP, "etc/sentry/nodes")
	conf := filepath.Join(rootP, "etc/nginx/nginx.conf")
	ov := filepath.Join(pol.OverlayDir, "node-s", conf)
	os.MkdirAll(filepath.Dir(ov), 0o755)
	os.WriteFile(ov, []byte("worker_processes 1; # node-s only\n"), 0o644)
	pol.Roots = append(pol.Roots, pol.OverlayDir)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	c, _ := r.Commit("snapshot", time.Now())
	files := gitCmd(t, r.Path, "ls-tree", "-r", "--name-only", "main")
	if !strings.Contains(files, "nodes/node-s/files"+conf+"\n") || !strings.Contains(files, "nodes/node-s/meta"+filepath.Dir(conf)+"/"+MetaName) {
		t.Fatalf("overlay not under nodes/node-s/:\n%s", files)
	}
	s, err := ReadSnapshot(r.Git().Storer, c.Hash)
	if err != nil {
		t.Fatal(err)
	}
	forS, forQ := s.ForNode("node-s"), s.ForNode("node-q")
	if forS.Blobs[conf] == forQ.Blobs[conf] || forQ.Blobs[conf] != s.Blobs[conf] {
		t.Error("the overlay does not replace the common file for node-s only")
	}
	for p := range forS.Entries {
		if strings.HasPrefix(p, OverlayDir) {
			t.Errorf("overlay path %s left in the node's snapshot", p)
		}
	}
	d, err := NodeDiffs(r.Git().Storer, s)
	if err != nil || len(d) != 1 || d[0].Node != "node-s" || d[0].Path != conf ||
		!strings.Contains(d[0].Diff, "-worker_processes auto;") || !strings.Contains(d[0].Diff, "+worker_processes 1; # node-s only") {
		t.Errorf("node diffs %+v %v", d, err)
	}
	rootS := t.TempDir()
	os.MkdirAll(filepath.Join(rootS, rootP, "etc/ssh"), 0o755)
	polS := &Policy{Roots: pol.Roots[:len(pol.Roots)-1]}
	ap := &Applier{Store: r.Git().Storer, Policy: polS, Root: rootS}
	if _, err := ap.Apply(&Snapshot{Entries: map[string]Entry{}}, forS); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(rootS, conf)); !strings.Contains(string(b), "node-s only") {
		t.Errorf("node-s got %q", b)
	}
}

func TestEncryptedSecrets(t *testing.T) {
	rootP, pol := fixture(t)
	key, err := NewClusterKey()
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := NewSecrets(key)
	pol.Secrets = sec
	keyFile := filepath.Join(rootP, "etc/postfix/smtp.key")
	secret := "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n"
	os.WriteFile(keyFile, []byte(secret), 0o600)
	dir := filepath.Join(t.TempDir(), "c.git")
	r, _ := OpenRepo(dir, "node-p", pol)
	r.ScanAll()
	c, _ := r.Commit("snapshot", time.Now())
	for _, rf := range c.Refused {
		if rf.Path == keyFile {
			t.Fatalf("refused with encryption on: %v", rf)
		}
	}
	blob := gitCmd(t, dir, "show", "main:files"+keyFile)
	if strings.Contains(blob, "TOPSECRET") || !strings.HasPrefix(blob, "age-encryption.org/v1") {
		t.Fatalf("the secret is stored in plaintext or not as age:\n%.80s", blob)
	}
	if meta := gitCmd(t, dir, "show", "main:meta"+filepath.Dir(keyFile)+"/"+MetaName); !strings.Contains(meta, "encrypted = true") {
		t.Errorf("meta does not say encrypted:\n%s", meta)
	}
	// A restart (a fresh model) does not re-encrypt an unchanged secret.
	r2, _ := OpenRepo(dir, "node-p", pol)
	r2.ScanAll()
	if c2, err := r2.Commit("restart", time.Now()); err != nil || c2 != nil {
		t.Errorf("a restart made a commit: %+v %v", c2, err)
	}
	s, _ := ReadSnapshot(r.Git().Storer, c.Hash)
	rootS := t.TempDir()
	os.MkdirAll(filepath.Join(rootS, rootP, "etc/ssh"), 0o755)
	polS := &Policy{Roots: pol.Roots}
	// Without the cluster key the secondary cannot, and says so.
	res, err := (&Applier{Store: r.Git().Storer, Policy: polS, Root: rootS}).Apply(&Snapshot{Entries: map[string]Entry{}}, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refused) != 1 || !strings.Contains(res.Refused[0].Reason, "has none") {
		t.Errorf("refused %+v", res.Refused)
	}
	// With it, the file is written in plaintext on the secondary, 0600.
	ap := &Applier{Store: r.Git().Storer, Policy: polS, Root: rootS, Secrets: sec}
	if _, err := ap.Apply(&Snapshot{Entries: map[string]Entry{}}, s); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(rootS, keyFile))
	fi, _ := os.Stat(filepath.Join(rootS, keyFile))
	if string(b) != secret || fi.Mode().Perm() != 0o600 {
		t.Errorf("secondary has %q %v", b, fi.Mode())
	}
	// Drift on a secret says so without showing it.
	os.WriteFile(filepath.Join(rootS, keyFile), []byte("-----BEGIN PRIVATE KEY-----\nOTHERSECRET\n"), 0o600)
	d, _ := Drift(r.Git().Storer, s, rootS, sec)
	for _, it := range d {
		if strings.Contains(it.Diff, "SECRET") {
			t.Errorf("drift shows a secret: %+v", it)
		}
	}
	if len(d) != 1 || d[0].Path != keyFile {
		t.Errorf("drift %+v", d)
	}
}

func TestXattrsAndACLs(t *testing.T) {
	rootP, pol := fixture(t)
	conf := filepath.Join(rootP, "etc/nginx/nginx.conf")
	if err := unix.Setxattr(conf, "user.sentry-test", []byte("v1"), 0); err != nil {
		t.Fatalf("this file system takes no user xattrs (the test needs them): %v", err)
	}
	unix.Setxattr(conf, "security.not-ours", []byte("x"), 0) // refused unless privileged; never tracked anyway
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	c, _ := r.Commit("snapshot", time.Now())
	s, _ := ReadSnapshot(r.Git().Storer, c.Hash)
	if x := s.Entries[conf].Xattrs; !strings.Contains(x, "user.sentry-test=") || strings.Contains(x, "security.") {
		t.Fatalf("xattrs recorded: %q", x)
	}
	rootS := t.TempDir()
	os.MkdirAll(filepath.Join(rootS, rootP, "etc/ssh"), 0o755)
	ap := &Applier{Store: r.Git().Storer, Policy: pol, Root: rootS}
	if _, err := ap.Apply(&Snapshot{Entries: map[string]Entry{}}, s); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(rootS, conf), "user.sentry-test", buf)
	if err != nil || string(buf[:n]) != "v1" {
		t.Errorf("secondary's xattr: %q %v", buf[:n], err)
	}
	// A changed attribute alone is a change.
	unix.Setxattr(conf, "user.sentry-test", []byte("v2"), 0)
	r.Update(conf)
	if c2, _ := r.Commit("xattr", time.Now()); c2 == nil || c2.Changed[conf] != "modified" {
		t.Errorf("xattr change not committed: %+v", c2)
	}
}

// A rollback to a commit made before a file was tracked (it was refused
// then) must not delete that file; nor does a file that becomes refused
// vanish from the secondary.
func TestApplyKeepsRefusedPaths(t *testing.T) {
	rootP, pol := fixture(t)
	keyFile := filepath.Join(rootP, "etc/postfix/relay.key")
	os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\nX\n"), 0o600)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	c1, _ := r.Commit("without encryption: the key is refused", time.Now())
	key, _ := NewClusterKey()
	sec, _ := NewSecrets(key)
	pol.Secrets = sec
	r2, _ := OpenRepo(r.Path, "node-p", pol)
	r2.ScanAll()
	c2, _ := r2.Commit("with encryption: the key is tracked", time.Now())
	s1, _ := ReadSnapshot(r.Git().Storer, c1.Hash)
	s2, _ := ReadSnapshot(r.Git().Storer, c2.Hash)
	if !s1.Refused[keyFile] || s2.Refused[keyFile] || s2.Entries[keyFile].Type != TypeFile {
		t.Fatalf("fixture: refused %v / %v", s1.Refused[keyFile], s2.Refused[keyFile])
	}
	// Roll the primary's own disk back to c1.
	ap := &Applier{Store: r.Git().Storer, Policy: pol, Secrets: sec}
	res, err := ap.Apply(s2, s1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Errorf("rollback deleted a file that was only refused at that commit (removed: %v)", res.Removed)
	}
}

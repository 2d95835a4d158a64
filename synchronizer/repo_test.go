package synchronizer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fixture makes an /etc-like tree under a temp root and a policy for it.
func fixture(t *testing.T) (string, *Policy) {
	t.Helper()
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	for p, c := range map[string]string{
		"nginx/nginx.conf":               "worker_processes auto;\n",
		"nginx/sites-available/default":  "server { listen 80; }\n",
		"nginx/conf.d/.keep":             "",
		"postfix/main.cf":                "myhostname = x\n",
		"ssh/sshd_config":                "PermitRootLogin no\n",
		"ssh/ssh_host_ed25519_key":       "-----BEGIN OPENSSH PRIVATE KEY-----\n",
		"ssh/other":                      "not tracked\n",
		"nginx/snippets/fastcgi-php.txt": "fastcgi\n",
	} {
		f := filepath.Join(etc, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("sites-available/default", filepath.Join(etc, "nginx/sites-enabled-default"))
	pol := &Policy{Roots: []string{filepath.Join(etc, "nginx"), filepath.Join(etc, "postfix"), filepath.Join(etc, "ssh/sshd_config")}}
	return root, pol
}

func gitCmd(t *testing.T, repo string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"--git-dir", repo}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestSnapshotAndIncrementalCommit(t *testing.T) {
	root, pol := fixture(t)
	dir := filepath.Join(t.TempDir(), "config.git")
	r, err := OpenRepo(dir, "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ScanAll(); err != nil {
		t.Fatal(err)
	}
	c1, err := r.Commit("first snapshot", time.Now())
	if err != nil || c1 == nil {
		t.Fatalf("commit %v %v", c1, err)
	}
	files := gitCmd(t, dir, "ls-tree", "-r", "--name-only", "main")
	etc := strings.TrimPrefix(filepath.Join(root, "etc"), "/")
	for _, want := range []string{"files/" + etc + "/nginx/nginx.conf", "files/" + etc + "/ssh/sshd_config", "meta/" + etc + "/nginx/" + MetaName, "meta/" + etc + "/nginx/conf.d/" + MetaName} {
		if !strings.Contains(files, want) {
			t.Errorf("tree lacks %s:\n%s", want, files)
		}
	}
	if strings.Contains(files, "ssh/other") || strings.Contains(files, "ssh_host") {
		t.Errorf("untracked or identity files in the tree:\n%s", files)
	}
	gitCmd(t, dir, "fsck", "--strict", "--no-dangling")

	// No change, no commit.
	if c, err := r.Commit("nothing", time.Now()); err != nil || c != nil {
		t.Errorf("commit without change: %v %v", c, err)
	}
	// One file changed: only it is reported, and the incremental tree is
	// the same as a fresh full snapshot of the same disk.
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	os.WriteFile(conf, []byte("worker_processes 2;\n"), 0o644)
	os.Chmod(conf, 0o640)
	if err := r.Update(conf); err != nil {
		t.Fatal(err)
	}
	c2, err := r.Commit("edit", time.Now())
	if err != nil || c2 == nil {
		t.Fatal(err)
	}
	if len(c2.Changed) != 1 || c2.Changed[conf] != "modified" {
		t.Errorf("changed %v", c2.Changed)
	}
	fresh, _ := OpenRepo(filepath.Join(t.TempDir(), "fresh.git"), "node-p", pol)
	fresh.ScanAll()
	c3, _ := fresh.Commit("fresh", time.Now())
	if tree(t, dir, c2.Hash.String()) != tree(t, fresh.Path, c3.Hash.String()) {
		t.Error("incremental tree differs from a full snapshot of the same files")
	}
	meta := gitCmd(t, dir, "show", "main:meta/"+etc+"/nginx/"+MetaName)
	if !strings.Contains(meta, `name = "nginx.conf"`) || !strings.Contains(meta, `mode = "0640"`) {
		t.Errorf("meta does not record the new mode:\n%s", meta)
	}
	// Removing a directory removes its subtree.
	os.RemoveAll(filepath.Join(root, "etc/nginx/snippets"))
	r.Update(filepath.Join(root, "etc/nginx/snippets"))
	c4, _ := r.Commit("rm", time.Now())
	if c4 == nil || !strings.Contains(gitCmd(t, dir, "log", "-1", "--format=%B", "main"), "removed") {
		t.Error("directory removal not committed")
	}
	if strings.Contains(gitCmd(t, dir, "ls-tree", "-r", "--name-only", "main"), "snippets") {
		t.Error("removed directory still in the tree")
	}
	gitCmd(t, dir, "fsck", "--strict", "--no-dangling")
}

func tree(t *testing.T, repo, rev string) string {
	return strings.TrimSpace(gitCmd(t, repo, "rev-parse", rev+"^{tree}"))
}

// Nothing executable, setuid, special, escaping or secret is tracked; each
// refusal names the path and the reason.
func TestRefusals(t *testing.T) {
	root, pol := fixture(t)
	n := filepath.Join(root, "etc/nginx")
	os.WriteFile(filepath.Join(n, "hook.sh"), []byte("#!/bin/sh\nrm -rf /\n"), 0o644)
	os.WriteFile(filepath.Join(n, "run"), []byte("echo hi\n"), 0o755)
	os.WriteFile(filepath.Join(n, "suid"), []byte("x"), 0o644)
	os.Chmod(filepath.Join(n, "suid"), 0o644|os.ModeSetuid)
	os.Symlink("/etc/shadow", filepath.Join(n, "shadow-link"))
	os.Symlink("../../../../../../etc/passwd", filepath.Join(n, "dotdot-link"))
	syscall.Mkfifo(filepath.Join(n, "fifo"), 0o644)
	os.WriteFile(filepath.Join(n, "tls.pem"), []byte("-----BEGIN RSA PRIVATE KEY-----\nMII\n"), 0o600)
	os.WriteFile(filepath.Join(n, "server.key"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(n, "prog"), []byte("\x7fELF\x02\x01"), 0o644)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	if err := r.ScanAll(); err != nil {
		t.Fatal(err)
	}
	c, err := r.Commit("snapshot", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"hook.sh": "a script", "run": "executable", "suid": "setuid", "shadow-link": "outside the tracked paths",
		"dotdot-link": "outside the tracked paths", "fifo": "a fifo", "tls.pem": "private key", "server.key": "a secret by its name",
		"prog": "an ELF program",
	}
	got := map[string]string{}
	for _, rf := range c.Refused {
		got[filepath.Base(rf.Path)] = rf.Reason
	}
	for name, reason := range want {
		if !strings.Contains(got[name], reason) {
			t.Errorf("%s: refusal %q, want it to say %q", name, got[name], reason)
		}
	}
	files := gitCmd(t, r.Path, "ls-tree", "-r", "--name-only", "main")
	for name := range want {
		if strings.Contains(files, "/"+name+"\n") {
			t.Errorf("%s is in the repository", name)
		}
	}
	refused := gitCmd(t, r.Path, "show", "main:refused.toml")
	if !strings.Contains(refused, "shadow-link") || !strings.Contains(refused, "reason") {
		t.Errorf("refused.toml:\n%s", refused)
	}
	// The in-tree symlink is kept, as metadata.
	if meta := gitCmd(t, r.Path, "show", "main:meta"+n+"/"+MetaName); !strings.Contains(meta, `target = "sites-available/default"`) {
		t.Errorf("symlink not recorded:\n%s", meta)
	}
}

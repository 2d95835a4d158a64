package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostMirror(t *testing.T) {
	dir := t.TempDir()
	deb822 := filepath.Join(dir, "debian.sources")
	os.WriteFile(deb822, []byte(`Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security

Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
`), 0o644)
	oneLine := filepath.Join(dir, "sources.list")
	os.WriteFile(oneLine, []byte("# x\ndeb [arch=amd64] http://other.example/debian bookworm main\n"), 0o644)
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{deb822, oneLine}, "http://mirror.example/debian"},
		{[]string{filepath.Join(dir, "missing"), oneLine}, "http://other.example/debian"},
	} {
		HostSources = tc.files
		got, err := hostMirror()
		if err != nil || got != tc.want {
			t.Errorf("hostMirror(%v) = %q, %v; want %q", tc.files, got, err, tc.want)
		}
	}
	HostSources = []string{filepath.Join(dir, "missing")}
	if _, err := hostMirror(); err == nil || !strings.Contains(err.Error(), "--mirror") {
		t.Errorf("no sources: err %v, want a hint at --mirror", err)
	}
}

func TestFingerprintFollowsPackages(t *testing.T) {
	a := baseFingerprint()
	BasePackages = append(BasePackages, "extra")
	defer func() { BasePackages = BasePackages[:len(BasePackages)-1] }()
	if baseFingerprint() == a {
		t.Error("adding a package does not change the base fingerprint: a stale cache would be reused")
	}
}

func TestNamespaceNames(t *testing.T) {
	if got := New(Options{}).NS("a"); got != "hw-a" {
		t.Errorf("default lab: %q", got)
	}
	if got := New(Options{Name: "e2e"}).NS("office"); got != "e2e-office" {
		t.Errorf("named lab: %q", got)
	}
}

func TestResolveNode(t *testing.T) {
	l := New(Options{Name: "x"})
	st := &State{Nodes: []NodeState{{Set: "P", Hardware: "b"}, {Set: "S", Hardware: "a"}}}
	for in, want := range map[string]string{"P": "P", "p": "P", "node-p": "P", "hw-b": "P", "x-hw-b": "P", "b": "P", "S": "S", "hw-a": "S", "node-s": "S"} {
		n, err := st.resolveNode(l, in)
		if err != nil || n.Set != want {
			t.Errorf("resolveNode(%q) = %v, %v; want %s", in, n, err, want)
		}
	}
	if _, err := st.resolveNode(l, "Q"); err == nil || !strings.Contains(err.Error(), `no running node "Q"`) {
		t.Errorf("unknown node: %v", err)
	}
}

func TestProcStartTimeOfSelf(t *testing.T) {
	st, ok := procStartTime(os.Getpid())
	if !ok || st == 0 {
		t.Fatalf("procStartTime(self) = %d, %v", st, ok)
	}
	n := NodeState{NspawnPID: os.Getpid(), StartTime: st}
	if !n.alive() {
		t.Error("own process not alive")
	}
	n.StartTime++ // a reused PID: same number, other process
	if n.alive() {
		t.Error("a PID with another start time counts as ours")
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/var/lib/a\040b`); got != "/var/lib/a b" {
		t.Errorf("got %q", got)
	}
}

func TestTweakBase(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc/postfix", "etc/ssh"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "etc/postfix/main.cf"), []byte("biff = no\nmyhostname = buildhost\ninet_interfaces = all\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key"), []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("0123\n"), 0o444)
	if err := tweakBase(root); err != nil {
		t.Fatal(err)
	}
	mc, _ := os.ReadFile(filepath.Join(root, "etc/postfix/main.cf"))
	if strings.Contains(string(mc), "buildhost") || !strings.Contains(string(mc), "inet_interfaces = all") {
		t.Errorf("main.cf: %q", mc)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")); err == nil {
		t.Error("the base keeps an ssh host key: every disk set would share it")
	}
	if mid, _ := os.ReadFile(filepath.Join(root, "etc/machine-id")); len(mid) != 0 {
		t.Errorf("machine-id %q left in the base", mid)
	}
	if tgt, _ := os.Readlink(filepath.Join(root, "etc/systemd/system/nmbd.service")); tgt != "/dev/null" {
		t.Errorf("nmbd not masked: %q", tgt)
	}
	if tgt, _ := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/systemd-networkd.service")); tgt == "" {
		t.Error("systemd-networkd not enabled")
	}
}

package lab

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
		got, err := hostMirror(tc.files)
		if err != nil || got != tc.want {
			t.Errorf("hostMirror(%v) = %q, %v; want %q", tc.files, got, err, tc.want)
		}
	}
	if _, err := hostMirror([]string{filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "--mirror") {
		t.Errorf("no sources: err %v, want a hint at --mirror", err)
	}
}

func TestFingerprintFollowsPackages(t *testing.T) {
	a := baseFingerprint(DefaultBasePackages())
	if baseFingerprint(append(DefaultBasePackages(), "extra")) == a {
		t.Error("adding a package does not change the base fingerprint: a stale cache would be reused")
	}
}

func TestOptionsDefaults(t *testing.T) {
	l := New(Options{})
	if !reflect.DeepEqual(l.base.packages, DefaultBasePackages()) || !slices.Contains(l.base.packages, "nginx-light") {
		t.Errorf("base packages %v, want the defaults", l.base.packages)
	}
	if !reflect.DeepEqual(l.base.sources, DefaultHostSources()) {
		t.Errorf("host sources %v, want the defaults", l.base.sources)
	}
	if l.base.dir() != filepath.Join(DefaultCacheDir, "base") || l.state.path() != filepath.Join(DefaultStateDir, "default", "state.json") {
		t.Errorf("folders: base %s, state %s", l.base.dir(), l.state.path())
	}
	// The defaults are copies: changing one lab's list changes no other's.
	l.base.packages[0] = "changed"
	if DefaultBasePackages()[0] == "changed" {
		t.Error("DefaultBasePackages returns a shared slice")
	}
	own := New(Options{BasePackages: []string{"a"}, HostSources: []string{"/x"}, Name: "e2e"})
	if !reflect.DeepEqual(own.base.packages, []string{"a"}) || !reflect.DeepEqual(own.base.sources, []string{"/x"}) {
		t.Errorf("options not used: %v %v", own.base.packages, own.base.sources)
	}
	if own.sets.root("P") != filepath.Join(DefaultStateDir, "e2e", "sets", "P", "root") {
		t.Errorf("set root %s", own.sets.root("P"))
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
		n, err := st.resolveNode(l.net, in)
		if err != nil || n.Set != want {
			t.Errorf("resolveNode(%q) = %v, %v; want %s", in, n, err, want)
		}
	}
	if _, err := st.resolveNode(l.net, "Q"); err == nil || !strings.Contains(err.Error(), `no running node "Q"`) {
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

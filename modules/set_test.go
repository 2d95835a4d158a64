package modules_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
	"golang.org/x/crypto/ssh"
)

func defaultSet(t *testing.T) (*modules.Set, string) {
	t.Helper()
	root := t.TempDir()
	set, warns, err := modules.Load(modules.OptionsAt(root))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) > 0 {
		t.Fatalf("warnings: %v", warns)
	}
	return set, root
}

// The built-in modules of the default selection must give the agent the
// same probes as verifier.DefaultProbes: names, kinds, parameters and
// timeouts, with and without the node's certificate and host key.
func TestDefaultSelectionReproducesDefaultProbes(t *testing.T) {
	for _, withKeys := range []bool{false, true} {
		name := "no certificate or host key"
		if withKeys {
			name = "with certificate and host key"
		}
		t.Run(name, func(t *testing.T) {
			set, root := defaultSet(t)
			paths := verifier.PathsAt(root)
			if withKeys {
				writeNodeKeys(t, paths.MailCert, paths.SSHHostKey)
			}
			const timeout = 7 * time.Second
			want := paths.DefaultProbes("canary-pw", timeout)
			got := set.Probes(modules.ProbeEnv{Password: "canary-pw", Timeout: timeout, Root: root})
			mail, sftp := want[1].Params.(*verifier.MailParams), want[5].Params.(*verifier.SFTPParams)
			if withKeys && (mail.TLSFingerprint == "" || strings.HasPrefix(sftp.HostKey, "unknown")) {
				t.Fatalf("fixture keys not read by the verifier: %+v %+v", mail, sftp)
			}
			byName := map[string]verifier.Spec{}
			for _, s := range got {
				if _, dup := byName[s.Name]; dup {
					t.Errorf("probe %q twice", s.Name)
				}
				byName[s.Name] = s
			}
			if len(got) != len(want) {
				t.Errorf("%d probes from modules, %d in DefaultProbes", len(got), len(want))
			}
			for _, w := range want {
				g, ok := byName[w.Name]
				if !ok {
					t.Errorf("probe %q of DefaultProbes is in no module", w.Name)
					continue
				}
				if g.Kind != w.Kind || g.Timeout != w.Timeout || !reflect.DeepEqual(g.Params, w.Params) {
					t.Errorf("probe %q:\n modules: %s %v %+v\n verifier: %s %v %+v", w.Name, g.Kind, g.Timeout, g.Params, w.Kind, w.Timeout, w.Params)
				}
			}
		})
	}
}

func writeNodeKeys(t *testing.T, certPath, keyPath string) {
	t.Helper()
	der := make([]byte, 64)
	rand.Read(der)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string][]byte{
		certPath: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPath:  ssh.MarshalAuthorizedKey(sp),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Every root of synchronizer.DefaultUnits reloads its unit through the
// default modules, in the same relative order.
func TestDefaultSelectionCoversDefaultUnits(t *testing.T) {
	set, _ := defaultSet(t)
	triggers := set.Triggers()
	last := -1
	for _, ru := range synchronizer.DefaultUnits {
		i := slices.Index(triggers, modules.Trigger{Root: ru.Root, Unit: ru.Unit})
		if i < 0 {
			t.Errorf("%s -> %s is in no module (triggers: %v)", ru.Root, ru.Unit, triggers)
			continue
		}
		if i < last {
			t.Errorf("%s -> %s comes before the unit listed above it in DefaultUnits", ru.Root, ru.Unit)
		}
		last = i
		// The conversion the agent will use.
		if synchronizer.RootUnit(triggers[i]) != ru {
			t.Errorf("conversion of %v gives %v", triggers[i], synchronizer.RootUnit(triggers[i]))
		}
	}
	units := set.Units()
	for i := 1; i < len(units); i++ {
		if units[i].Order < units[i-1].Order {
			t.Errorf("Units not in reload order: %v before %v", units[i-1], units[i])
		}
	}
}

// Every default tracked root of the synchronizer is tracked by a default
// module, and the module files themselves are tracked.
func TestDefaultSelectionCoversDefaultRoots(t *testing.T) {
	set, root := defaultSet(t)
	tracked := set.TrackedPaths()
	for _, r := range synchronizer.DefaultRoots {
		ok := false
		for _, p := range tracked {
			if r == p || strings.HasPrefix(r, p+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("default root %s is tracked by no module (tracked: %v)", r, tracked)
		}
	}
	own := modules.OptionsAt(root)
	for _, p := range []string{own.SelectionFile, own.Dir, own.InstallDir} {
		if !slices.Contains(tracked, p) {
			t.Errorf("%s is not tracked", p)
		}
	}
	for _, id := range []string{"/etc/hostname", "/etc/machine-id", "/etc/ssh/ssh_host_*"} {
		if !slices.Contains(set.NodeKeys(), id) {
			t.Errorf("node identity %s is not a node key: %v", id, set.NodeKeys())
		}
	}
}

// The canary data of the built-ins is what the verifier's setup makes.
func TestBuiltinCanariesMatchVerifier(t *testing.T) {
	set, _ := defaultSet(t)
	c := set.Canaries()
	checks := []struct{ module, got, want string }{
		{"web-nginx", c["web-nginx"].Page, verifier.CanaryPage},
		{"web-nginx", c["web-nginx"].Marker, verifier.CanaryMarker},
		{"mail-postfix-dovecot", c["mail-postfix-dovecot"].Mailbox, verifier.CanaryUser},
		{"db-postgresql", c["db-postgresql"].DBUser, verifier.CanaryDB},
		{"db-postgresql", c["db-postgresql"].DBName, verifier.CanaryDB},
		{"db-postgresql", c["db-postgresql"].DBTable, verifier.CanaryDB},
		{"db-mariadb", c["db-mariadb"].DBUser, verifier.CanaryDB},
		{"file-samba", c["file-samba"].Share, verifier.CanaryShare},
		{"file-samba", c["file-samba"].SharePath, verifier.CanaryDir},
		{"file-sftp", c["file-sftp"].SFTPUser, verifier.CanaryUser},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s canary: %q, verifier has %q", ch.module, ch.got, ch.want)
		}
	}
}

// The manifest reference names every compiled-in probe kind, each with
// its parameters.
func TestProbeKindsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/modules.md")
	if err != nil {
		t.Fatal(err)
	}
	kinds := modules.ProbeKinds()
	if !slices.Equal(kinds, verifier.KindNames()) || len(kinds) == 0 {
		t.Fatalf("ProbeKinds() = %v, verifier has %v", kinds, verifier.KindNames())
	}
	for _, k := range kinds {
		_, row, ok := strings.Cut(string(doc), "| `"+k+"` |")
		if !ok {
			t.Errorf("docs/modules.md has no row for probe kind %q", k)
			continue
		}
		row, _, _ = strings.Cut(row, "\n")
		if strings.HasPrefix(strings.TrimSpace(row), "as `") {
			continue // "as `postgres`": the same parameters
		}
		for _, p := range verifier.ParamKeys(k) {
			if !strings.Contains(row, "`"+p+"`") {
				t.Errorf("docs/modules.md: the row of probe kind %q lacks its parameter %q", k, p)
			}
		}
	}
}

// The default selection's canary pages are the compiled-in one.
func TestDefaultSelectionCanaryPages(t *testing.T) {
	set, _ := defaultSet(t)
	got := set.CanaryPages()
	want := []verifier.Page{{Path: verifier.CanaryPage, Marker: verifier.CanaryMarker}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("canary pages %+v, want %+v", got, want)
	}
}

// The verifier asks which units a probe depends on, to tell a red caused
// by the sync's own reload of one of them.
func TestProbeUnits(t *testing.T) {
	set, _ := defaultSet(t)
	pu := set.ProbeUnits()
	if !slices.Contains(pu["mail"], "dovecot.service") || !slices.Contains(pu["mail"], "postfix.service") {
		t.Errorf("mail probe's units: %v", pu["mail"])
	}
	if slices.Contains(pu["mail"], "nginx.service") {
		t.Errorf("mail probe depends on nginx: %v", pu["mail"])
	}
	if len(pu) != len(set.Probes(modules.ProbeEnv{})) {
		t.Errorf("%d probes mapped, %d probes", len(pu), len(set.Probes(modules.ProbeEnv{})))
	}
}

// ProbeNames are the names of Probes, in their order.
func TestProbeNames(t *testing.T) {
	set, root := defaultSet(t)
	var want []string
	for _, s := range set.Probes(modules.ProbeEnv{Root: root}) {
		want = append(want, s.Name)
	}
	if got := set.ProbeNames(); len(want) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ProbeNames %v, Probes' names %v", got, want)
	}
}

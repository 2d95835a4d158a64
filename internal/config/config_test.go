package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/tomlpos"
)

func init() { hostname = func() (string, error) { return "testhost", nil } }

// Every testdata/bad-*.toml must be listed here with its exact message, and
// every entry must exist: a new bad file without a pinned message fails.
var badFiles = map[string]string{
	"bad-alert-cleartext-auth.toml":  `testdata/bad-alert-cleartext-auth.toml:4:1: key "alert.mail.username": with starttls = "none" the password would cross the network in clear; use starttls = "required" (or a relay on the loopback interface)`,
	"bad-alert-fail-after.toml":      `testdata/bad-alert-fail-after.toml:2:1: key "alert.fail_after": 0 is below the minimum of 1`,
	"bad-alert-from-missing.toml":    `testdata/bad-alert-from-missing.toml:1:1: key "alert.mail.from": must be set when alert.mail.relay is set`,
	"bad-alert-password-file.toml":   `testdata/bad-alert-password-file.toml:4:1: key "alert.mail.password_file": "etc/sentry/smtp-password" is not an absolute path`,
	"bad-alert-relay.toml":           `testdata/bad-alert-relay.toml:2:1: key "alert.mail.relay": "mail.example.org" is not host:port`,
	"bad-alert-reminder.toml":        `testdata/bad-alert-reminder.toml:2:1: key "alert.reminder": 30s is below the minimum of 1m (write "0" for no reminders)`,
	"bad-alert-resolve-after.toml":   `testdata/bad-alert-resolve-after.toml:2:1: key "alert.resolve_after": -1 is below the minimum of 1`,
	"bad-alert-starttls.toml":        `testdata/bad-alert-starttls.toml:3:1: key "alert.mail.starttls": "always" is not one of required, opportunistic, none`,
	"bad-alert-to-address.toml":      `testdata/bad-alert-to-address.toml:4:1: key "alert.mail.to": entry 2: "not an address" is not a mail address`,
	"bad-alert-to-missing.toml":      `testdata/bad-alert-to-missing.toml:1:1: key "alert.mail.to": must name at least one address when alert.mail.relay is set`,
	"bad-alert-type.toml":            `testdata/bad-alert-type.toml:2:1: key "alert.fail_after": incompatible types: TOML value has type string; destination has type integer`,
	"bad-alert-unknown-key.toml":     `testdata/bad-alert-unknown-key.toml:5:1: key "alert.mail.realy": unknown key (did you mean "alert.mail.relay"?)`,
	"bad-verifier-keep-results.toml": `testdata/bad-verifier-keep-results.toml:2:1: key "verifier.keep_results": 0 is below the minimum of 1`,
	"bad-dotdot-path.toml":           `testdata/bad-dotdot-path.toml:2:1: key "sync.paths": entry 1: "/etc/../root" is not a clean path (no '..', no trailing or double '/')`,
	"bad-duplicate-table.toml":       `testdata/bad-duplicate-table.toml:3:2: Key 'cluster' has already been defined.`,
	"bad-duration.toml":              `testdata/bad-duration.toml:2:1: key "verifier.interval": invalid duration "5 minutes": write a number with a unit, such as "90s" or "5m"`,
	"bad-duration-number.toml":       `testdata/bad-duration-number.toml:2:1: key "verifier.interval": invalid duration "60": write a number with a unit, such as "90s" or "5m"`,
	"bad-identity.toml":              `testdata/bad-identity.toml:2:1: key "hardware.identity": "serial" is not one of auto, dmi, mac`,
	"bad-listen.toml":                `testdata/bad-listen.toml:2:1: key "agent.listen": "7443" is not host:port`,
	"bad-metrics-agent-port.toml":    `testdata/bad-metrics-agent-port.toml:5:1: key "metrics.listen": "127.0.0.1:7443" takes the port of agent.listen (":7443"): choose another port, such as 9771`,
	"bad-metrics-listen.toml":        `testdata/bad-metrics-listen.toml:2:1: key "metrics.listen": "9771" is not host:port`,
	"bad-metrics-port.toml":          `testdata/bad-metrics-port.toml:2:1: key "metrics.listen": "0.0.0.0:0": port must be a number from 1 to 65535`,
	"bad-log-level.toml":             `testdata/bad-log-level.toml:2:1: key "log.level": "verbose" is not one of debug, info, warn, error`,
	"bad-node-name.toml":             `testdata/bad-node-name.toml:2:1: key "node.name": "Node_P" is not a valid name: use lower-case letters, digits and '-', at most 63 characters`,
	"bad-peer-port.toml":             `testdata/bad-peer-port.toml:2:1: key "peer.address": "192.0.2.20:99999": port must be a number from 1 to 65535`,
	"bad-relative-path.toml":         `testdata/bad-relative-path.toml:2:1: key "sync.paths": entry 2: "etc/samba" is not an absolute path`,
	"bad-rescan.toml":                `testdata/bad-rescan.toml:2:1: key "sync.rescan_interval": 1s is below the minimum of 10s`,
	"bad-state-dir.toml":             `testdata/bad-state-dir.toml:2:1: key "node.state_dir": "var/lib/sentry" is not an absolute path`,
	"bad-syntax-string.toml":         `testdata/bad-syntax-string.toml:2:15: key "node.name": strings cannot contain newlines`,
	"bad-timeout.toml":               `testdata/bad-timeout.toml:3:1: key "verifier.timeout": 30s must be shorter than verifier.interval (30s)`,
	"bad-type.toml":                  `testdata/bad-type.toml:2:1: key "cluster.name": incompatible types: TOML value has type int64; destination has type string`,
	"bad-type-array.toml":            `testdata/bad-type-array.toml:2:1: key "sync.paths": incompatible types: TOML value has type string; destination has type slice`,
	"bad-unknown-key.toml":           `testdata/bad-unknown-key.toml:3:1: key "agent.lisen": unknown key (did you mean "agent.listen"?)`,
	"bad-unknown-table.toml":         `testdata/bad-unknown-table.toml:4:1: key "verifer": unknown key (did you mean "verifier"?)`,
}

func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("only %d bad files in testdata", len(files))
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := badFiles[name]
			if !ok {
				t.Fatalf("%s has no expected message in badFiles", name)
			}
			cfg, err := Load(f)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want error", f, cfg)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if err.Error() != want {
				t.Errorf("message\n got: %s\nwant: %s", err, want)
			}
		})
	}
	for name := range badFiles {
		if !seen[name] {
			t.Errorf("badFiles lists %s, which is not in testdata", name)
		}
	}
}

func TestGoodFile(t *testing.T) {
	cfg, err := Load("testdata/good.toml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"cluster.name", cfg.Cluster.Name, "office"},
		{"node.name", cfg.Node.Name, "node-p"},
		{"agent.listen", cfg.Agent.Listen, "0.0.0.0:7443"},
		{"agent.read_socket", cfg.Agent.ReadSocket, "/run/sentry/readers.sock"},
		{"agent.shutdown_timeout", cfg.Agent.ShutdownTimeout.Duration, 15 * time.Second},
		{"peer.address", cfg.Peer.Address, "192.0.2.20:7443"},
		{"sync.paths", len(cfg.Sync.Paths), 2},
		{"sync.rescan_interval", cfg.Sync.RescanInterval.Duration, 10 * time.Minute},
		{"verifier.interval", cfg.Verifier.Interval.Duration, 2 * time.Minute},
		{"verifier.timeout", cfg.Verifier.Timeout.Duration, 45 * time.Second},
		{"verifier.keep_results", cfg.Verifier.KeepResults, 500},
		{"alert.fail_after", cfg.Alert.FailAfter, 3},
		{"alert.resolve_after", cfg.Alert.ResolveAfter, 4},
		{"alert.reminder", cfg.Alert.Reminder.Duration, 12 * time.Hour},
		{"alert.mail.relay", cfg.Alert.Mail.Relay, "mail.example.org:587"},
		{"alert.mail.starttls", cfg.Alert.Mail.StartTLS, "opportunistic"},
		{"alert.mail.username", cfg.Alert.Mail.Username, "sentry"},
		{"alert.mail.password_file", cfg.Alert.Mail.PasswordFile, "/etc/sentry/smtp-password"},
		{"alert.mail.from", cfg.Alert.Mail.From, "Sentry <sentry@example.org>"},
		{"alert.mail.to", strings.Join(cfg.Alert.Mail.To, ","), "ops@example.org,oncall@example.org"},
		{"alert.mail.subject_prefix", cfg.Alert.Mail.SubjectPrefix, "[office]"},
		{"metrics.listen", cfg.Metrics.Listen, "127.0.0.1:9771"},
		{"log.level", cfg.Log.Level, "debug"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Path = "empty.toml"
	if cfg.Node.Name != "testhost" || cfg.Verifier.Interval.Duration != time.Minute ||
		cfg.Agent.Socket != "/run/sentry/agent.sock" || cfg.Node.StateDir != "/var/lib/sentry" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if err := want.Validate(); err != nil {
		t.Errorf("Default() does not validate: %v", err)
	}
	if a := cfg.Alert; a.FailAfter != 2 || a.ResolveAfter != 2 || a.Reminder.Duration != 4*time.Hour ||
		a.Mail.Relay != "" || a.Mail.StartTLS != "required" || a.Mail.SubjectPrefix != "[sentry]" {
		t.Errorf("alert defaults not applied: %+v", a)
	}
	if cfg.Verifier.KeepResults != 1000 {
		t.Errorf("verifier.keep_results default = %d, want 1000", cfg.Verifier.KeepResults)
	}
	if cfg.Metrics.Listen != "" {
		t.Errorf("metrics.listen default = %q, want \"\" (the endpoint off)", cfg.Metrics.Listen)
	}
}

// agent.read_socket: next to agent.socket when absent, none when "", and
// refused when relative or agent.socket itself.
func TestReadSocket(t *testing.T) {
	if d := Default(); d.Agent.ReadSocket != "/run/sentry/agent-read.sock" {
		t.Errorf("default: %q", d.Agent.ReadSocket)
	}
	for src, want := range map[string]string{
		"":                                      "/run/sentry/agent-read.sock",
		"[agent]\nsocket = \"/tmp/x/a.sock\"\n": "/tmp/x/agent-read.sock",
		"[agent]\nread_socket = \"\"\n":         "",
		"[agent]\nread_socket = \"/run/r.sock\"\n":                  "/run/r.sock",
		"[agent]\nsocket = \"/tmp/x/a.sock\"\nread_socket = \"\"\n": "",
	} {
		cfg, err := Parse("read.toml", []byte(src))
		if err != nil {
			t.Errorf("%q: %v", src, err)
		} else if cfg.Agent.ReadSocket != want {
			t.Errorf("%q: read socket %q, want %q", src, cfg.Agent.ReadSocket, want)
		}
	}
	for _, src := range []string{
		"[agent]\nread_socket = \"run/r.sock\"\n",
		"[agent]\nread_socket = \"/run/sentry/agent.sock\"\n",
		"[agent]\nsocket = \"/tmp/a.sock\"\nread_socket = \"/tmp//a.sock\"\n",
	} {
		_, err := Parse("read.toml", []byte(src))
		var e *Error
		if !errors.As(err, &e) || e.Key != "agent.read_socket" || e.Line == 0 {
			t.Errorf("%q: %v, want an error at agent.read_socket", src, err)
		}
	}
}

// metrics.listen values that are valid, and ones that are refused with
// the key named (the bad files pin the exact messages).
func TestMetricsListen(t *testing.T) {
	good := map[string]string{
		"off":                         "[metrics]\nlisten = \"\"\n",
		"every address":               "[metrics]\nlisten = \":9771\"\n",
		"IPv4 wildcard":               "[metrics]\nlisten = \"0.0.0.0:9771\"\n",
		"loopback":                    "[metrics]\nlisten = \"127.0.0.1:9771\"\n",
		"IPv6 VPN address":            "[metrics]\nlisten = \"[fd00:5e::1]:9771\"\n",
		"a name":                      "[metrics]\nlisten = \"vpn.example.org:9771\"\n",
		"agent's port, other address": "[agent]\nlisten = \"192.0.2.10:7443\"\n[metrics]\nlisten = \"127.0.0.1:7443\"\n",
	}
	for name, src := range good {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("metrics.toml", []byte(src)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
	bad := map[string]string{
		"no port":            "[metrics]\nlisten = \"127.0.0.1\"\n",
		"port out of range":  "[metrics]\nlisten = \"127.0.0.1:65536\"\n",
		"port not a number":  "[metrics]\nlisten = \"127.0.0.1:http\"\n",
		"agent's port":       "[metrics]\nlisten = \":7443\"\n",
		"agent's wildcard":   "[agent]\nlisten = \"0.0.0.0:9771\"\n[metrics]\nlisten = \"10.0.0.5:9771\"\n",
		"same address":       "[agent]\nlisten = \"10.0.0.5:9771\"\n[metrics]\nlisten = \"10.0.0.5:9771\"\n",
		"IPv6 wildcard port": "[metrics]\nlisten = \"[::]:7443\"\n",
	}
	for name, src := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("metrics.toml", []byte(src))
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, want an *Error wrapping ErrInvalid", err)
			}
			if e.Key != "metrics.listen" || e.File != "metrics.toml" || e.Line == 0 {
				t.Errorf("error %v: key %q at %s:%d, want key \"metrics.listen\" at its line", err, e.Key, e.File, e.Line)
			}
		})
	}
	if _, err := Parse("metrics.toml", []byte("[metrics]\nlisen = \":9771\"\n")); err == nil ||
		!strings.Contains(err.Error(), `did you mean "metrics.listen"?`) {
		t.Errorf("a misspelt key: %v, want a hint at metrics.listen", err)
	}
}

// Alert settings that are valid although they look close to a bad file.
func TestAlertGoodVariants(t *testing.T) {
	cases := map[string]string{
		"no reminders": "[alert]\nreminder = \"0\"\n",
		"auth in clear to a loopback relay": "[alert.mail]\nrelay = \"127.0.0.1:25\"\nstarttls = \"none\"\n" +
			"username = \"sentry\"\npassword_file = \"/etc/sentry/smtp-password\"\nfrom = \"sentry@example.org\"\nto = [\"ops@example.org\"]\n",
		"addresses without a relay": "[alert.mail]\nfrom = \"sentry@example.org\"\n",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("variant.toml", []byte(src)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

// The documented example in docs/configuration.md must stay valid.
func TestDocExampleValid(t *testing.T) {
	data, err := os.ReadFile("../../docs/sentry.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("docs/sentry.toml.example", data); err != nil {
		t.Fatal(err)
	}
}

func TestLocator(t *testing.T) {
	src := "# c\n[a]\nx = 1\n  \"y\" = 2\n[b.c]\nz = \"\"\"\nq = 3\n\"\"\"\nw = 4\n"
	l := tomlpos.New([]byte(src))
	for key, want := range map[string][2]int{
		"a": {2, 1}, "a.x": {3, 1}, "a.y": {4, 3}, "b.c.z": {6, 1}, "b.c.w": {9, 1}, "b.c.q": {5, 1}, "nope": {0, 0},
	} {
		l0, c0 := l.Find(key)
		if l0 != want[0] || c0 != want[1] {
			t.Errorf("find(%q) = %d:%d, want %d:%d", key, l0, c0, want[0], want[1])
		}
	}
}

// Package config reads /etc/sentry/sentry.toml: defaults first, then a strict
// decode (unknown keys are errors), then Validate. Every error names the file,
// the line and column, and the key.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/internal/tomlpos"
)

// DefaultPath is where the agent and the CLI look for the configuration.
const DefaultPath = "/etc/sentry/sentry.toml"

// ErrInvalid is wrapped by every error that is the configuration's fault
// (as opposed to an I/O error reading it). The CLI maps it to exit code 3.
var ErrInvalid = errors.New("invalid configuration")

// Config is the whole of sentry.toml. docs/configuration.md documents every
// key and its default; keep the two in step.
type Config struct {
	Cluster  Cluster  `toml:"cluster"`
	Node     Node     `toml:"node"`
	Agent    Agent    `toml:"agent"`
	Peer     Peer     `toml:"peer"`
	Sync     Sync     `toml:"sync"`
	Verifier Verifier `toml:"verifier"`
	Hardware Hardware `toml:"hardware"`
	Alert    Alert    `toml:"alert"`
	Metrics  Metrics  `toml:"metrics"`
	Log      Log      `toml:"log"`

	// Path is the file this configuration was read from ("" for defaults).
	Path string `toml:"-"`
}

// Cluster names the pair of nodes.
type Cluster struct {
	Name string `toml:"name"`
}

// Node describes this node.
type Node struct {
	Name     string `toml:"name"`
	StateDir string `toml:"state_dir"`
}

// Agent configures the daemon's listeners.
type Agent struct {
	Listen string `toml:"listen"`
	Socket string `toml:"socket"`
	// ReadSocket is the local API's read-only socket, for the members of
	// group sentry ("": none). Absent from the file, it is
	// DefaultReadSocket next to Socket.
	ReadSocket      string   `toml:"read_socket"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
}

// Peer is how this node reaches the other one.
type Peer struct {
	Address  string   `toml:"address"`
	Timeout  Duration `toml:"timeout"`
	Interval Duration `toml:"interval"`
}

// Hardware says how this machine is identified.
type Hardware struct {
	// Identity is "auto" (DMI when usable, else NIC MACs), "dmi" or "mac".
	Identity string `toml:"identity"`
	// NICKinds are the netlink link kinds counted as physical NICs.
	NICKinds []string `toml:"nic_kinds"`
}

// Sync configures which paths the synchronizer tracks.
type Sync struct {
	Paths          []string `toml:"paths"`
	Exclude        []string `toml:"exclude"`
	RescanInterval Duration `toml:"rescan_interval"`
	Debounce       Duration `toml:"debounce"`
	// EncryptSecrets sends private keys and password files to the
	// secondary encrypted to the cluster key instead of leaving them out.
	EncryptSecrets bool `toml:"encrypt_secrets"`
}

// Verifier configures the schedule of the probes.
type Verifier struct {
	Interval Duration `toml:"interval"`
	Jitter   Duration `toml:"jitter"`
	Timeout  Duration `toml:"timeout"`
	// KeepResults is how many results of each node and probe the state
	// store keeps; older ones are pruned.
	KeepResults int `toml:"keep_results"`
}

// Alert configures when a failing probe raises an alert and where the
// alert goes. An alert fires after FailAfter failures in a row, resolves
// after ResolveAfter successes in a row, and is repeated every Reminder
// while it fires (0: never).
type Alert struct {
	FailAfter    int       `toml:"fail_after"`
	ResolveAfter int       `toml:"resolve_after"`
	Reminder     Duration  `toml:"reminder"`
	Mail         AlertMail `toml:"mail"`
}

// AlertMail sends alerts as mail through an SMTP relay. An empty Relay
// turns mail alerts off; alerts are always written to the log.
type AlertMail struct {
	Relay string `toml:"relay"`
	// StartTLS is "required", "opportunistic" or "none".
	StartTLS string `toml:"starttls"`
	// Username, when set, makes the mailer log in with AUTH PLAIN, with the
	// password read from PasswordFile (mode 0600 or stricter).
	Username      string   `toml:"username"`
	PasswordFile  string   `toml:"password_file"`
	From          string   `toml:"from"`
	To            []string `toml:"to"`
	SubjectPrefix string   `toml:"subject_prefix"`
}

// Metrics configures the agent's Prometheus endpoint (docs/monitoring.md).
type Metrics struct {
	// Listen is the address of GET /metrics, host:port (empty host: every
	// address); "" turns the endpoint off. It has no authentication of its
	// own: bind it to a LAN or VPN address and firewall it.
	Listen string `toml:"listen"`
}

// Log configures logging.
type Log struct {
	Level string `toml:"level"`
}

// Duration is a time.Duration written as a string such as "90s" or "5m".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %s: write a number with a unit, such as \"90s\" or \"5m\"", tomlpos.Quote(string(b)))
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// hostname is read for the default node name (os.Hostname); the package's
// tests fix it, so that their expectations do not depend on the host.
var hostname = os.Hostname

// DefaultReadSocket is the read-only socket's name, in agent.socket's
// folder, when agent.read_socket is absent.
const DefaultReadSocket = "agent-read.sock"

// Default returns the configuration used when a key is absent.
func Default() Config {
	name, err := hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	return Config{
		Node:     Node{Name: name, StateDir: "/var/lib/sentry"},
		Agent:    Agent{Listen: ":7443", Socket: "/run/sentry/agent.sock", ReadSocket: "/run/sentry/agent-read.sock", ShutdownTimeout: Duration{10 * time.Second}},
		Peer:     Peer{Timeout: Duration{5 * time.Second}, Interval: Duration{10 * time.Second}},
		Hardware: Hardware{Identity: "auto", NICKinds: []string{"device"}},
		Sync:     Sync{RescanInterval: Duration{5 * time.Minute}, Debounce: Duration{time.Second}},
		Verifier: Verifier{Interval: Duration{60 * time.Second}, Jitter: Duration{10 * time.Second}, Timeout: Duration{30 * time.Second}, KeepResults: 1000},
		Alert:    Alert{FailAfter: 2, ResolveAfter: 2, Reminder: Duration{4 * time.Hour}, Mail: AlertMail{StartTLS: "required", SubjectPrefix: "[sentry]"}},
		Log:      Log{Level: "info"},
	}
}

// Error is a configuration error at a place in a file.
type Error struct {
	File    string
	Line    int // 0 when the key is absent from the file
	Col     int
	Key     string // dotted key, "" for a syntax error
	Message string
	Context string // the lines around the error, with a caret, when known
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Key != "" {
		fmt.Fprintf(&b, "key %s: ", tomlpos.Quote(e.Key))
	}
	b.WriteString(tomlpos.Clean(e.Message, maxMessage))
	return b.String()
}

// maxMessage is the most of a message an error shows: values in it are
// quoted and cut already, this bounds a message of the decoder's.
const maxMessage = 400

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// limits bound sentry.toml before it is parsed (internal/safetoml): it is
// read at boot and written by hand, a few KB.
func limits() safetoml.Limits { return safetoml.Small() }

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := safetoml.ReadFile(path, limits())
	if err != nil {
		var le *safetoml.Error
		if errors.As(err, &le) {
			return nil, &Error{File: path, Message: le.Message}
		}
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data)
}

var tomlLineErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// tomlKeyErr is a decode error with a key and no line (a value of the
// wrong type, say: "toml: (last key "alert.mail.to"): incompatible types").
var tomlKeyErr = regexp.MustCompile(`(?s)^toml: \(last key "([^"]*)"\): (.*)$`)

// Parse decodes and validates data, naming file in errors.
func Parse(file string, data []byte) (*Config, error) {
	cfg := Default()
	cfg.Path = file
	if err := safetoml.Check(file, data, limits()); err != nil {
		e := &Error{File: file, Message: err.Error()}
		var le *safetoml.Error
		if errors.As(err, &le) {
			e.Line, e.Message = le.Line, le.Message
			if e.Line > 0 {
				e.Col = 1
			}
		}
		return nil, e
	}
	loc := tomlpos.New(data)
	md, err := toml.NewDecoder(strings.NewReader(string(data))).Decode(&cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.Position.Line == 0 { // an error at the end of the file
				pe.Position.Line, pe.Position.Col = tomlpos.LineCol(data, pe.Position.Start)
			}
			e := &Error{File: file, Line: pe.Position.Line, Col: pe.Position.Col, Key: pe.LastKey, Message: pe.Message}
			if pe.Position.Line > 0 {
				e.Context = tomlpos.Context(data, pe.Position.Line, pe.Position.Col, pe.Position.Len, pe.Message)
			}
			if e.Key != "" && strings.HasPrefix(pe.Message, "invalid duration") {
				// A value error: point at the key, not somewhere in the value.
				e.Line, e.Col = loc.Find(e.Key)
			}
			return nil, e
		}
		if m := tomlLineErr.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			l, c := loc.Find(m[2])
			if l == 0 {
				l, c = line, 1
			}
			return nil, &Error{File: file, Line: l, Col: c, Key: m[2], Message: m[3]}
		}
		if m := tomlKeyErr.FindStringSubmatch(err.Error()); m != nil {
			l, c := loc.Find(m[1])
			return nil, &Error{File: file, Line: l, Col: c, Key: m[1], Message: m[2]}
		}
		return nil, &Error{File: file, Message: err.Error()}
	}
	if !md.IsDefined("agent", "read_socket") {
		cfg.Agent.ReadSocket = filepath.Join(filepath.Dir(cfg.Agent.Socket), DefaultReadSocket)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		l, c := loc.Find(k)
		return nil, &Error{File: file, Line: l, Col: c, Key: k, Message: "unknown key" + suggest(k)}
	}
	if err := cfg.validate(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = file
			e.Line, e.Col = loc.Find(e.Key)
		}
		return nil, err
	}
	return &cfg, nil
}

// Validate checks the values of an already decoded configuration.
func (c *Config) Validate() error {
	err := c.validate()
	var e *Error
	if errors.As(err, &e) {
		e.File = c.Path
	}
	return err
}

// keyErr is an error at key. A string among args is a value from the file:
// it is shown with its non-printable characters escaped and cut when long
// (tomlpos.Quote for %q).
func keyErr(key, format string, args ...any) error {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = shown(s)
		}
	}
	return &Error{Key: key, Message: fmt.Sprintf(format, args...)}
}

// shown prints a value from the file safely: %q as tomlpos.Quote, else
// tomlpos.Clean.
type shown string

func (s shown) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, tomlpos.Quote(string(s)))
		return
	}
	io.WriteString(f, tomlpos.Clean(string(s), tomlpos.MaxShown))
}

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (c *Config) validate() error {
	if c.Cluster.Name != "" && !nameRe.MatchString(c.Cluster.Name) {
		return keyErr("cluster.name", "%q is not a valid name: use lower-case letters, digits and '-', at most 63 characters", c.Cluster.Name)
	}
	if c.Node.Name == "" {
		return keyErr("node.name", "must not be empty")
	}
	if !nameRe.MatchString(c.Node.Name) {
		return keyErr("node.name", "%q is not a valid name: use lower-case letters, digits and '-', at most 63 characters", c.Node.Name)
	}
	if !filepath.IsAbs(c.Node.StateDir) {
		return keyErr("node.state_dir", "%q is not an absolute path", c.Node.StateDir)
	}
	if err := checkHostPort(c.Agent.Listen, true); err != nil {
		return keyErr("agent.listen", "%v", err)
	}
	if !filepath.IsAbs(c.Agent.Socket) {
		return keyErr("agent.socket", "%q is not an absolute path", c.Agent.Socket)
	}
	if r := c.Agent.ReadSocket; r != "" && (!filepath.IsAbs(r) || filepath.Clean(r) == filepath.Clean(c.Agent.Socket)) {
		return keyErr("agent.read_socket", "%q is not an absolute path other than agent.socket (\"\": none)", r)
	}
	if c.Peer.Address != "" {
		if err := checkHostPort(c.Peer.Address, false); err != nil {
			return keyErr("peer.address", "%v", err)
		}
	}
	for i, p := range c.Sync.Paths {
		if !filepath.IsAbs(p) {
			return keyErr("sync.paths", "entry %d: %q is not an absolute path", i+1, p)
		}
		if filepath.Clean(p) != p || strings.Contains(p, "/../") {
			return keyErr("sync.paths", "entry %d: %q is not a clean path (no '..', no trailing or double '/')", i+1, p)
		}
		if p == "/" {
			return keyErr("sync.paths", "entry %d: tracking \"/\" would copy node identity and executables; name directories under it", i+1)
		}
	}
	for i, g := range c.Sync.Exclude {
		if _, err := filepath.Match(g, ""); err != nil {
			return keyErr("sync.exclude", "entry %d: bad pattern %q: %v", i+1, g, err)
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
		min time.Duration
	}{
		{"agent.shutdown_timeout", c.Agent.ShutdownTimeout, time.Second},
		{"peer.timeout", c.Peer.Timeout, 100 * time.Millisecond},
		{"peer.interval", c.Peer.Interval, time.Second},
		{"sync.rescan_interval", c.Sync.RescanInterval, 10 * time.Second},
		{"sync.debounce", c.Sync.Debounce, 0},
		{"verifier.interval", c.Verifier.Interval, 5 * time.Second},
		{"verifier.jitter", c.Verifier.Jitter, 0},
		{"verifier.timeout", c.Verifier.Timeout, time.Second},
	} {
		if d.v.Duration < d.min {
			return keyErr(d.key, "%s is below the minimum of %s", d.v.Duration, d.min)
		}
	}
	if c.Verifier.Timeout.Duration >= c.Verifier.Interval.Duration {
		return keyErr("verifier.timeout", "%s must be shorter than verifier.interval (%s)", c.Verifier.Timeout.Duration, c.Verifier.Interval.Duration)
	}
	if c.Verifier.Jitter.Duration > c.Verifier.Interval.Duration/2 {
		return keyErr("verifier.jitter", "%s is more than half of verifier.interval (%s)", c.Verifier.Jitter.Duration, c.Verifier.Interval.Duration)
	}
	if c.Verifier.KeepResults < 1 {
		return keyErr("verifier.keep_results", "%d is below the minimum of 1", c.Verifier.KeepResults)
	}
	if err := c.Alert.validate(); err != nil {
		return err
	}
	if err := c.Metrics.validate(c.Agent.Listen); err != nil {
		return err
	}
	switch c.Hardware.Identity {
	case "auto", "dmi", "mac":
	default:
		return keyErr("hardware.identity", "%q is not one of auto, dmi, mac", c.Hardware.Identity)
	}
	if len(c.Hardware.NICKinds) == 0 {
		return keyErr("hardware.nic_kinds", "must name at least one link kind (\"device\" is a plain hardware NIC)")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return keyErr("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	return nil
}

func (a *Alert) validate() error {
	if a.FailAfter < 1 {
		return keyErr("alert.fail_after", "%d is below the minimum of 1", a.FailAfter)
	}
	if a.ResolveAfter < 1 {
		return keyErr("alert.resolve_after", "%d is below the minimum of 1", a.ResolveAfter)
	}
	if r := a.Reminder.Duration; r < 0 || (r > 0 && r < time.Minute) {
		return keyErr("alert.reminder", "%s is below the minimum of 1m (write \"0\" for no reminders)", r)
	}
	m := &a.Mail
	switch m.StartTLS {
	case "required", "opportunistic", "none":
	default:
		return keyErr("alert.mail.starttls", "%q is not one of required, opportunistic, none", m.StartTLS)
	}
	if strings.ContainsAny(m.SubjectPrefix, "\r\n") {
		return keyErr("alert.mail.subject_prefix", "must be one line")
	}
	if m.PasswordFile != "" && !filepath.IsAbs(m.PasswordFile) {
		return keyErr("alert.mail.password_file", "%q is not an absolute path", m.PasswordFile)
	}
	if m.PasswordFile != "" && m.Username == "" {
		return keyErr("alert.mail.password_file", "is set but alert.mail.username is empty")
	}
	if m.Username != "" && m.PasswordFile == "" {
		return keyErr("alert.mail.username", "is set but alert.mail.password_file is empty")
	}
	if m.From != "" {
		if _, err := mail.ParseAddress(m.From); err != nil {
			return keyErr("alert.mail.from", "%q is not a mail address", m.From)
		}
	}
	for i, to := range m.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return keyErr("alert.mail.to", "entry %d: %q is not a mail address", i+1, to)
		}
	}
	if m.Relay == "" {
		return nil
	}
	if err := checkHostPort(m.Relay, false); err != nil {
		return keyErr("alert.mail.relay", "%v", err)
	}
	if m.From == "" {
		return keyErr("alert.mail.from", "must be set when alert.mail.relay is set")
	}
	if len(m.To) == 0 {
		return keyErr("alert.mail.to", "must name at least one address when alert.mail.relay is set")
	}
	if m.Username != "" && m.StartTLS == "none" && !loopbackHost(m.Relay) {
		return keyErr("alert.mail.username", "with starttls = \"none\" the password would cross the network in clear; use starttls = \"required\" (or a relay on the loopback interface)")
	}
	return nil
}

// validate checks metrics.listen: off when empty, else host:port like
// agent.listen, on another port than the agent's peer API when the two
// could bind the same address.
func (m *Metrics) validate(agentListen string) error {
	if m.Listen == "" {
		return nil
	}
	if err := checkHostPort(m.Listen, true); err != nil {
		return keyErr("metrics.listen", "%v", err)
	}
	host, port, _ := net.SplitHostPort(m.Listen)
	aHost, aPort, err := net.SplitHostPort(agentListen)
	if err == nil && port == aPort && (host == aHost || wildcardHost(host) || wildcardHost(aHost)) {
		return keyErr("metrics.listen", "%q takes the port of agent.listen (%q): choose another port, such as 9771", m.Listen, agentListen)
	}
	return nil
}

// wildcardHost reports whether host, as a listen address, binds every
// address ("", 0.0.0.0, ::).
func wildcardHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// loopbackHost reports whether the host of hostPort is localhost or a
// loopback address.
func loopbackHost(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkHostPort(s string, allowEmptyHost bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", shown(s))
	}
	if host == "" && !allowEmptyHost {
		return fmt.Errorf("%q has no host", shown(s))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 1 to 65535", shown(s))
	}
	return nil
}

// knownKeys lists every dotted key of Config, for "did you mean" hints.
var knownKeys = []string{
	"cluster.name", "node.name", "node.state_dir",
	"agent.listen", "agent.socket", "agent.read_socket", "agent.shutdown_timeout",
	"peer.address", "peer.timeout", "peer.interval",
	"hardware.identity", "hardware.nic_kinds",
	"sync.paths", "sync.exclude", "sync.rescan_interval", "sync.debounce", "sync.encrypt_secrets",
	"verifier.interval", "verifier.jitter", "verifier.timeout", "verifier.keep_results",
	"alert.fail_after", "alert.resolve_after", "alert.reminder",
	"alert.mail.relay", "alert.mail.starttls", "alert.mail.username", "alert.mail.password_file",
	"alert.mail.from", "alert.mail.to", "alert.mail.subject_prefix",
	"metrics.listen",
	"log.level",
	"cluster", "node", "agent", "peer", "sync", "verifier", "hardware", "alert", "alert.mail", "metrics", "log",
}

func suggest(k string) string { return Suggest(k, knownKeys) }

// Suggest is a " (did you mean ...?)" hint: the known key closest to k
// (at most two edits away), or "". modules uses it for manifests too.
func Suggest(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		if abs(len(k)-len(c)) >= bestD {
			continue // cannot be closer; and a long key costs no time
		}
		if d := editDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func abs(n int) int { return max(n, -n) }

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

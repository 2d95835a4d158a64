package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The values of MailConfig.StartTLS.
const (
	// StartTLSRequired sends only after STARTTLS with a certificate that
	// verifies against the relay's name.
	StartTLSRequired = "required"
	// StartTLSOpportunistic uses STARTTLS when the relay offers it, without
	// verifying the certificate (like Postfix's "may"), and plain SMTP
	// otherwise.
	StartTLSOpportunistic = "opportunistic"
	// StartTLSNone never uses TLS.
	StartTLSNone = "none"
)

// Errors of the mailer, wrapped with details; compare with errors.Is.
var (
	// ErrPasswordFile means the password file is unsafe or unusable.
	ErrPasswordFile = errors.New("unusable password file")
	// ErrCleartextAuth means the password would have crossed the network
	// without TLS, so the mailer did not send it.
	ErrCleartextAuth = errors.New("refusing to send the password without TLS")
)

// MailConfig says how a Mailer reaches the relay and whom it mails.
type MailConfig struct {
	Relay         string // host:port
	StartTLS      string // StartTLSRequired, StartTLSOpportunistic or StartTLSNone; "" is required
	Username      string // AUTH PLAIN user; "" for no AUTH
	PasswordFile  string // holds the password; mode 0600 or stricter, owned by root or this process's user
	From          string
	To            []string
	SubjectPrefix string
	// Hostname is given in EHLO and in Message-IDs; "" is os.Hostname.
	Hostname string
	// TLSConfig is the base of the TLS configuration, for a private CA
	// (RootCAs); nil uses the system's roots. ServerName is set from Relay.
	TLSConfig *tls.Config
}

// secret holds the password and never prints it.
type secret struct{ v string }

func (secret) String() string               { return "[redacted]" }
func (secret) GoString() string             { return "[redacted]" }
func (secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Mailer sends notices as mail through an SMTP relay. It holds the
// password in memory; printing or logging a Mailer never shows it.
type Mailer struct {
	cfg      MailConfig
	host     string // of the relay
	from     *mail.Address
	to       []*mail.Address
	password secret
}

// NewMailer checks c and reads the password file. It fails if the file is
// readable by group or others, belongs to another user than root or this
// process's, or if AUTH would send the password in clear to a relay that
// is not on the loopback interface.
func NewMailer(c MailConfig) (*Mailer, error) {
	if c.StartTLS == "" {
		c.StartTLS = StartTLSRequired
	}
	switch c.StartTLS {
	case StartTLSRequired, StartTLSOpportunistic, StartTLSNone:
	default:
		return nil, fmt.Errorf("alert: mail: starttls %q is not one of required, opportunistic, none", c.StartTLS)
	}
	host, _, err := net.SplitHostPort(c.Relay)
	if err != nil || host == "" {
		return nil, fmt.Errorf("alert: mail: relay %q is not host:port", c.Relay)
	}
	m := &Mailer{cfg: c, host: host}
	if m.from, err = mail.ParseAddress(c.From); err != nil {
		return nil, fmt.Errorf("alert: mail: from %q is not a mail address", c.From)
	}
	if len(c.To) == 0 {
		return nil, errors.New("alert: mail: no recipients")
	}
	for _, s := range c.To {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("alert: mail: to %q is not a mail address", s)
		}
		m.to = append(m.to, a)
	}
	if strings.ContainsAny(c.SubjectPrefix, "\r\n") {
		return nil, errors.New("alert: mail: the subject prefix must be one line")
	}
	if m.cfg.Hostname == "" {
		if m.cfg.Hostname, err = os.Hostname(); err != nil || m.cfg.Hostname == "" {
			m.cfg.Hostname = "localhost"
		}
	}
	if c.Username != "" {
		if c.StartTLS == StartTLSNone && !isLoopback(host) {
			return nil, fmt.Errorf("alert: mail: %w: starttls is \"none\" and the relay %s is not on the loopback interface", ErrCleartextAuth, c.Relay)
		}
		pw, err := ReadPasswordFile(c.PasswordFile)
		if err != nil {
			return nil, err
		}
		m.password = secret{pw}
	}
	return m, nil
}

// String describes the mailer, without the password.
func (m *Mailer) String() string {
	var to []string
	for _, a := range m.to {
		to = append(to, a.Address)
	}
	s := fmt.Sprintf("mail via %s (starttls %s) to %s", m.cfg.Relay, m.cfg.StartTLS, strings.Join(to, ", "))
	if m.cfg.Username != "" {
		s += " as " + m.cfg.Username
	}
	return s
}

// GoString keeps %#v from printing the fields, the password among them.
func (m *Mailer) GoString() string { return "alert.Mailer(" + m.String() + ")" }

// LogValue makes slog show String.
func (m *Mailer) LogValue() slog.Value { return slog.StringValue(m.String()) }

// Name implements Sender.
func (m *Mailer) Name() string { return "mail" }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadPasswordFile reads a password from the one line of the file at path.
// The file must be a regular file, not readable or writable by group or
// others, and owned by root or by this process's user; otherwise the error
// wraps ErrPasswordFile and says how to fix it. The password is never part
// of an error.
func ReadPasswordFile(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("alert: %w: no password file given for the relay user", ErrPasswordFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("alert: %w: %v", ErrPasswordFile, err)
	}
	defer f.Close()
	// Checked on the open file, so that what is read is what was checked.
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("alert: %w: %v", ErrPasswordFile, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("alert: %w: %s is not a regular file", ErrPasswordFile, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("alert: %w: %s has mode %#o, so group or others can read it; run chmod 600 %s", ErrPasswordFile, path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Getuid() {
			return "", fmt.Errorf("alert: %w: %s belongs to uid %d, not to root or to the agent's user (uid %d); run chown root %s", ErrPasswordFile, path, uid, os.Getuid(), path)
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", fmt.Errorf("alert: %w: read %s: %v", ErrPasswordFile, path, err)
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("alert: %w: %s is longer than 4096 bytes; it must hold only the password", ErrPasswordFile, path)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("alert: %w: %s is empty", ErrPasswordFile, path)
	}
	if strings.ContainsAny(pw, "\r\n") {
		return "", fmt.Errorf("alert: %w: %s holds more than one line; it must hold only the password", ErrPasswordFile, path)
	}
	return pw, nil
}

// Send mails n. It gives up when ctx ends, wherever it is.
func (m *Mailer) Send(ctx context.Context, n Notice) error {
	msg, err := m.compose(n, time.Now())
	if err != nil {
		return err
	}
	err = m.send(ctx, msg)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("mail via %s: %w (%v)", m.cfg.Relay, ctx.Err(), err)
	}
	return err
}

// SendMessage sends msg, a whole message (its header names From and To;
// CRLF line ends), to the configured recipients through the relay, as Send
// does a notice: the weekly report's mail.
func (m *Mailer) SendMessage(ctx context.Context, msg []byte) error {
	err := m.send(ctx, msg)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("mail via %s: %w (%v)", m.cfg.Relay, ctx.Err(), err)
	}
	return err
}

func (m *Mailer) send(ctx context.Context, msg []byte) error {
	c, release, err := m.connect(ctx)
	if err != nil {
		return err
	}
	defer release()
	defer c.Close()
	if m.cfg.Username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS && !isLoopback(m.host) {
			return fmt.Errorf("mail via %s: %w: the relay offered no STARTTLS", m.cfg.Relay, ErrCleartextAuth)
		}
		if !c.SupportsAuth(sasl.Plain) {
			return fmt.Errorf("mail via %s: the relay does not offer AUTH PLAIN", m.cfg.Relay)
		}
		if err := c.Auth(sasl.NewPlainClient("", m.cfg.Username, m.password.v)); err != nil {
			return fmt.Errorf("mail via %s: AUTH PLAIN as %q: %w", m.cfg.Relay, m.cfg.Username, err)
		}
	}
	var to []string
	for _, a := range m.to {
		to = append(to, a.Address)
	}
	if err := c.SendMail(m.from.Address, to, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("mail via %s: %w", m.cfg.Relay, err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("mail via %s: QUIT: %w", m.cfg.Relay, err)
	}
	return nil
}

// dial connects to the relay and arranges for the connection to be closed
// when ctx ends, which stops any SMTP command waiting on it. release undoes
// the arrangement.
func (m *Mailer) dial(ctx context.Context) (net.Conn, func(), error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Relay)
	if err != nil {
		return nil, nil, fmt.Errorf("mail via %s: %w", m.cfg.Relay, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return conn, func() { stop() }, nil
}

func (m *Mailer) newClient(ctx context.Context, conn net.Conn, tlsCfg *tls.Config) (*smtp.Client, error) {
	var (
		c   *smtp.Client
		err error
	)
	if tlsCfg != nil {
		c, err = smtp.NewClientStartTLS(conn, tlsCfg)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("mail via %s: STARTTLS: %w", m.cfg.Relay, err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	if dl, ok := ctx.Deadline(); ok {
		// A backstop: the end of ctx closes the connection a little
		// earlier, so that the error says it was the deadline.
		c.CommandTimeout = time.Until(dl) + time.Second
		c.SubmissionTimeout = c.CommandTimeout
	}
	if err := c.Hello(m.cfg.Hostname); err != nil {
		c.Close()
		return nil, fmt.Errorf("mail via %s: EHLO: %w", m.cfg.Relay, err)
	}
	return c, nil
}

func (m *Mailer) tlsConfig(verify bool) *tls.Config {
	cfg := &tls.Config{}
	if m.cfg.TLSConfig != nil {
		cfg = m.cfg.TLSConfig.Clone()
	}
	cfg.ServerName = m.host
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if !verify {
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

// connect returns a client past EHLO, on TLS as StartTLS says.
func (m *Mailer) connect(ctx context.Context) (*smtp.Client, func(), error) {
	conn, release, err := m.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	switch m.cfg.StartTLS {
	case StartTLSRequired:
		c, err := m.newClient(ctx, conn, m.tlsConfig(true))
		if err != nil {
			release()
			return nil, nil, err
		}
		return c, release, nil
	case StartTLSNone:
		c, err := m.newClient(ctx, conn, nil)
		if err != nil {
			release()
			return nil, nil, err
		}
		return c, release, nil
	}
	// Opportunistic: ask, then start again on TLS if it is offered (the
	// client cannot start TLS after its own EHLO).
	c, err := m.newClient(ctx, conn, nil)
	if err != nil {
		release()
		return nil, nil, err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return c, release, nil
	}
	c.Quit()
	c.Close()
	release()
	conn, release, err = m.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	c, err = m.newClient(ctx, conn, m.tlsConfig(false))
	if err != nil {
		release()
		return nil, nil, err
	}
	return c, release, nil
}

var kindWord = map[Kind]string{Firing: "FIRING", Reminder: "REMINDER", Resolved: "RESOLVED"}

// oneLine makes s safe for a header: no line breaks, at most max runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// compose writes the message: headers, then a quoted-printable body.
func (m *Mailer) compose(n Notice, now time.Time) ([]byte, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	subject := kindWord[n.Kind] + " " + n.Text()
	if n.Kind == Reminder {
		subject += fmt.Sprintf(" (failing since %s)", n.Since.UTC().Format(time.RFC3339))
	}
	if m.cfg.SubjectPrefix != "" {
		subject = m.cfg.SubjectPrefix + " " + subject
	}
	var to []string
	for _, a := range m.to {
		to = append(to, a.String())
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", fmt.Sprintf("<%s.%d@%s>", hex.EncodeToString(id[:]), now.UnixNano(), oneLine(m.cfg.Hostname, 200)))
	header("From", m.from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(subject, 200)))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	header("X-Sentry-Alert", string(n.Kind))
	header("X-Sentry-Node", mime.QEncoding.Encode("utf-8", oneLine(n.Node, 100)))
	header("X-Sentry-Probe", mime.QEncoding.Encode("utf-8", oneLine(n.Probe, 100)))
	b.WriteString("\r\n")

	var body strings.Builder
	line := func(k, v string) { fmt.Fprintf(&body, "%-10s %s\n", k+":", v) }
	switch n.Kind {
	case Resolved:
		fmt.Fprintf(&body, "%s %s on %s works again.\n\n", kindWord[n.Kind], n.Probe, n.Node)
	default:
		fmt.Fprintf(&body, "%s %s\n\n", kindWord[n.Kind], n.Text())
	}
	line("Node", n.Node)
	line("Probe", n.Probe)
	phase := n.Phase
	if phase == "" {
		phase = "-"
	}
	if n.Kind == Resolved {
		line("Failed", fmt.Sprintf("from %s to %s (%s)", n.Since.UTC().Format(time.RFC3339), n.At.UTC().Format(time.RFC3339), n.At.Sub(n.Since).Round(time.Second)))
		line("Failures", fmt.Sprint(n.Failures))
		line("Phase", phase+" (the last failure)")
		line("Message", n.Message+" (the last failure)")
	} else {
		line("Phase", phase)
		line("Message", n.Message)
		line("Since", fmt.Sprintf("%s (%s)", n.Since.UTC().Format(time.RFC3339), n.At.Sub(n.Since).Round(time.Second)))
		line("Failures", fmt.Sprint(n.Failures))
	}
	line("Seen", n.At.UTC().Format(time.RFC3339))
	fmt.Fprintf(&body, "\n-- \nsentry on %s\n", m.cfg.Hostname)

	qp := quotedprintable.NewWriter(&b)
	// quotedprintable writes hard line breaks as CRLF.
	if _, err := qp.Write([]byte(body.String())); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

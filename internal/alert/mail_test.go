package alert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message the test relay accepted.
type received struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthUser string
}

// relay is a real go-smtp server on 127.0.0.1 that records what it gets.
type relay struct {
	Addr string
	srv  *smtp.Server

	user, password string // AUTH PLAIN accepts only these; "" offers no AUTH

	mu       sync.Mutex
	msgs     []received
	authFail int
}

func (r *relay) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{r: r, c: c}, nil
}

func (r *relay) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.msgs...)
}

type session struct {
	r    *relay
	c    *smtp.Conn
	user string
	cur  received
}

func (s *session) AuthMechanisms() []string {
	if s.r.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.r.user || password != s.r.password {
			s.r.mu.Lock()
			s.r.authFail++
			s.r.mu.Unlock()
			return errors.New("invalid username or password")
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.cur = received{From: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.cur.Data, s.cur.TLS, s.cur.AuthUser = b, isTLS, s.user
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, s.cur)
	s.r.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

// startRelay starts a relay; with cert, it offers STARTTLS.
func startRelay(t *testing.T, cert *tls.Certificate, user, password string) *relay {
	t.Helper()
	r := &relay{user: user, password: password}
	srv := smtp.NewServer(r)
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = discardLogger{}
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr, r.srv = l.Addr().String(), srv
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// passwordFile writes password to a file of the given mode.
func passwordFile(t *testing.T, password string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(p, []byte(password+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

func firingNotice() Notice {
	return Notice{Kind: Firing, Node: "node-s", Probe: "mail", Phase: "imap-fetch", Message: "canary not visible after 30s",
		Since: t0, At: t0.Add(3 * time.Minute), Failures: 3}
}

// parsed is a received message with its body decoded.
func parse(t *testing.T, data []byte) (*mail.Message, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	if m.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", m.Header.Get("Content-Transfer-Encoding"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return m, string(body)
}

const testPassword = "s3cr3t-Pa55word-do-not-log"

func TestMailStartTLSRequiredWithAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	r := startRelay(t, cert, "sentry", testPassword)
	m, err := NewMailer(MailConfig{
		Relay: r.Addr, StartTLS: StartTLSRequired, Username: "sentry", PasswordFile: passwordFile(t, testPassword, 0o600),
		From: "Sentry <sentry@example.org>", To: []string{"ops@example.org", "oncall@example.org"},
		SubjectPrefix: "[sentry]", Hostname: "node-p.example.org", TLSConfig: &tls.Config{RootCAs: pool},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Send(ctx, firingNotice()); err != nil {
		t.Fatal(err)
	}
	msgs := r.messages()
	if len(msgs) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if !got.TLS || got.AuthUser != "sentry" || got.From != "sentry@example.org" || strings.Join(got.To, ",") != "ops@example.org,oncall@example.org" {
		t.Errorf("envelope: tls=%v auth=%q from=%q to=%v", got.TLS, got.AuthUser, got.From, got.To)
	}
	msg, body := parse(t, got.Data)
	h := msg.Header
	if want := `[sentry] FIRING node-s mail: phase "imap-fetch": canary not visible after 30s`; h.Get("Subject") != want {
		t.Errorf("Subject %q, want %q", h.Get("Subject"), want)
	}
	if h.Get("From") != `"Sentry" <sentry@example.org>` || h.Get("To") != "<ops@example.org>, <oncall@example.org>" {
		t.Errorf("From %q To %q", h.Get("From"), h.Get("To"))
	}
	if d, err := h.Date(); err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Minute {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@node-p.example.org>") {
		t.Errorf("Message-ID %q", id)
	}
	for _, want := range []string{
		"Node:      node-s", "Probe:     mail", "Phase:     imap-fetch", "Message:   canary not visible after 30s",
		"Since:     2026-03-01T12:00:00Z (3m0s)", "Failures:  3",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if bytes.Contains(got.Data, []byte(testPassword)) {
		t.Error("the password is in the message")
	}
}

func TestMailTLSModes(t *testing.T) {
	cert, pool := selfSigned(t)
	cases := []struct {
		name     string
		tls      bool   // relay offers STARTTLS
		mode     string // MailConfig.StartTLS
		trust    bool   // the mailer trusts the relay's certificate
		wantErr  string
		wantSent bool
		wantTLS  bool
	}{
		{"required, offered", true, StartTLSRequired, true, "", true, true},
		{"required, not offered", false, StartTLSRequired, true, "doesn't support STARTTLS", false, false},
		{"required, untrusted certificate", true, StartTLSRequired, false, "certificate", false, false},
		{"opportunistic, offered, untrusted certificate", true, StartTLSOpportunistic, false, "", true, true},
		{"opportunistic, not offered", false, StartTLSOpportunistic, false, "", true, false},
		{"none, offered", true, StartTLSNone, false, "", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rc *tls.Certificate
			if c.tls {
				rc = cert
			}
			r := startRelay(t, rc, "", "")
			mc := MailConfig{Relay: r.Addr, StartTLS: c.mode, From: "sentry@example.org", To: []string{"ops@example.org"}}
			if c.trust {
				mc.TLSConfig = &tls.Config{RootCAs: pool}
			}
			m, err := NewMailer(mc)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = m.Send(ctx, firingNotice())
			if c.wantErr == "" && err != nil {
				t.Fatalf("Send: %v", err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("Send = %v, want an error containing %q", err, c.wantErr)
			}
			msgs := r.messages()
			if sent := len(msgs) == 1; sent != c.wantSent {
				t.Fatalf("relay got %d messages, want sent=%v", len(msgs), c.wantSent)
			}
			if c.wantSent && msgs[0].TLS != c.wantTLS {
				t.Errorf("message over TLS = %v, want %v", msgs[0].TLS, c.wantTLS)
			}
		})
	}
}

func TestMailAuthNeedsTLS(t *testing.T) {
	pw := passwordFile(t, testPassword, 0o600)
	// Refused up front for a relay off the loopback interface.
	_, err := NewMailer(MailConfig{Relay: "192.0.2.25:25", StartTLS: StartTLSNone, Username: "sentry", PasswordFile: pw,
		From: "sentry@example.org", To: []string{"ops@example.org"}})
	if !errors.Is(err, ErrCleartextAuth) {
		t.Errorf("NewMailer with AUTH in clear to 192.0.2.25 = %v, want ErrCleartextAuth", err)
	}
	if err != nil && strings.Contains(err.Error(), testPassword) {
		t.Error("the error holds the password")
	}
}

func TestMailDeadline(t *testing.T) {
	// A relay that accepts the connection and never says a word.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	m, err := NewMailer(MailConfig{Relay: l.Addr().String(), StartTLS: StartTLSOpportunistic, From: "sentry@example.org", To: []string{"ops@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Send(ctx, firingNotice()) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send to a silent relay = %v, want the deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send went on long past its deadline")
	}
}

func TestPasswordFile(t *testing.T) {
	good := passwordFile(t, testPassword, 0o600)
	if pw, err := ReadPasswordFile(good); err != nil || pw != testPassword {
		t.Errorf("ReadPasswordFile(0600) = %q, %v", pw, err)
	}
	if pw, err := ReadPasswordFile(passwordFile(t, testPassword, 0o400)); err != nil || pw != testPassword {
		t.Errorf("ReadPasswordFile(0400) = %q, %v", pw, err)
	}
	cases := []struct {
		name, path, want string
	}{
		{"mode 0644", passwordFile(t, testPassword, 0o644), "has mode 0644, so group or others can read it; run chmod 600"},
		{"mode 0640", passwordFile(t, testPassword, 0o640), "has mode 0640"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
		{"directory", t.TempDir(), "not a regular file"},
		{"empty", passwordFile(t, "", 0o600), "is empty"},
		{"two lines", passwordFile(t, "a\nb", 0o600), "more than one line"},
		{"no path", "", "no password file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pw, err := ReadPasswordFile(c.path)
			if !errors.Is(err, ErrPasswordFile) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ReadPasswordFile = %q, %v; want ErrPasswordFile with %q", pw, err, c.want)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("error %q holds the password", err)
			}
		})
	}
	// NewMailer refuses a loose file the same way.
	_, err := NewMailer(MailConfig{Relay: "127.0.0.1:25", Username: "sentry", PasswordFile: passwordFile(t, testPassword, 0o644),
		From: "sentry@example.org", To: []string{"ops@example.org"}})
	if !errors.Is(err, ErrPasswordFile) {
		t.Errorf("NewMailer with a 0644 password file = %v, want ErrPasswordFile", err)
	}
}

func TestPasswordFileOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give the file to another user")
	}
	p := passwordFile(t, testPassword, 0o600)
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := ReadPasswordFile(p)
	if !errors.Is(err, ErrPasswordFile) || !strings.Contains(err.Error(), "belongs to uid 65534, not to root or to the agent's user") {
		t.Errorf("ReadPasswordFile of a file owned by uid 65534 = %v", err)
	}
}

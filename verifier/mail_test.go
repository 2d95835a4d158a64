package verifier

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// mailServers is a real mail pair on 127.0.0.1: a go-smtp server that
// delivers into the INBOX of an in-memory IMAP server (go-imap's
// imapmemserver, with STARTTLS and UIDPLUS), or drops what it takes when
// deliver is false (a mail that never arrives).
type mailServers struct {
	smtp, imap  string
	user        *imapmemserver.User
	fingerprint string
	tls         *tls.Config
}

const mailUser, mailPassword = "canary", "canary-password"

func newMailServers(t *testing.T, deliver bool) *mailServers {
	t.Helper()
	cert, fp := selfSigned(t)
	ms := &mailServers{user: imapmemserver.NewUser(mailUser, mailPassword), fingerprint: fp}
	if err := ms.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem := imapmemserver.New()
	mem.AddUser(ms.user)
	ms.tls = &tls.Config{Certificates: []tls.Certificate{cert}}
	isrv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:      imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}},
		TLSConfig: ms.tls,
		Logger:    log.New(io.Discard, "", 0),
	})
	iln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go isrv.Serve(iln)
	t.Cleanup(func() { isrv.Close() })
	ms.imap = iln.Addr().String()

	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ssrv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		if !deliver {
			return &sinkSession{}, nil
		}
		return &deliverSession{user: ms.user}, nil
	}))
	ssrv.Domain = "localhost"
	go ssrv.Serve(sln)
	t.Cleanup(func() { ssrv.Close() })
	ms.smtp = sln.Addr().String()
	return ms
}

// params are the mail probe's parameters for these servers.
func (ms *mailServers) params() kv {
	return kv{"smtp": ms.smtp, "smtp_tls": "none", "imap": ms.imap, "to": mailUser + "@localhost",
		"user": mailUser, "password": mailPassword, "tls_fingerprint": ms.fingerprint}
}

// appendMail puts a message into the INBOX with the given internal date.
func (ms *mailServers) appendMail(t *testing.T, subject string, at time.Time) {
	t.Helper()
	msg := fmt.Sprintf("From: x@localhost\r\nTo: canary@localhost\r\nSubject: %s\r\nMessage-ID: <%d@test>\r\n\r\nbody\r\n", subject, at.UnixNano())
	if _, err := ms.user.Append("INBOX", bytes.NewReader([]byte(msg)), &imap.AppendOptions{Time: at}); err != nil {
		t.Fatal(err)
	}
}

// subjects lists the subjects in the INBOX, sorted, as an IMAP client sees them.
func (ms *mailServers) subjects(t *testing.T) []string {
	t.Helper()
	c, err := imapclient.DialStartTLS(ms.imap, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(mailUser, mailPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	if sel.NumMessages > 0 {
		msgs, err := c.Fetch(imap.SeqSetNum(seqRange(sel.NumMessages)...), &imap.FetchOptions{Envelope: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			out = append(out, m.Envelope.Subject)
		}
	}
	sort.Strings(out)
	return out
}

func seqRange(n uint32) []uint32 {
	var s []uint32
	for i := uint32(1); i <= n; i++ {
		s = append(s, i)
	}
	return s
}

// deliverSession delivers each message it takes into the user's INBOX.
type deliverSession struct {
	mu   sync.Mutex
	user *imapmemserver.User
}

func (*deliverSession) Reset()                               {}
func (*deliverSession) Logout() error                        { return nil }
func (*deliverSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*deliverSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *deliverSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.user.Append("INBOX", bytes.NewReader(b), &imap.AppendOptions{})
	return err
}

// selfSigned makes a certificate for 127.0.0.1 and its SHA-256 fingerprint.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:])
}

// The round trip against real servers: the canary is sent, seen, checked
// and deleted, and the latency is measured.
func TestMailRoundTrip(t *testing.T) {
	ms := newMailServers(t, true)
	r := Run(context.Background(), Spec{Name: "mail", Kind: "mail", Params: mustParams(t, "mail", ms.params()), Timeout: 5 * time.Second}, nil)
	if !r.OK {
		t.Fatalf("%+v", r)
	}
	var names []string
	for _, ph := range r.Phases {
		names = append(names, ph.Name)
	}
	if got := strings.Join(names, ", "); got != "smtp submit, imap login, canary visible, check token, delete" {
		t.Errorf("phases: %s", got)
	}
	if r.Values["latency_ms"] == "" {
		t.Errorf("no latency_ms: %v", r.Values)
	}
	if left := ms.subjects(t); len(left) != 0 {
		t.Errorf("the canary was not deleted: %v", left)
	}
	p := ms.params()
	p["tls_fingerprint"] = strings.Repeat("00", 32)
	r = Run(context.Background(), Spec{Name: "mail", Kind: "mail", Params: mustParams(t, "mail", p), Timeout: 5 * time.Second}, nil)
	if r.OK || !strings.HasPrefix(r.Message, "imap login: STARTTLS: ") || !strings.Contains(r.Message, "is not the pinned") {
		t.Errorf("a certificate other than the pinned one: %+v", r)
	}
}

// A canary that never arrives fails in its phase, saying so, before the
// probe's deadline, even with visible_within longer than the deadline.
func TestMailNotVisibleBeforeDeadline(t *testing.T) {
	ms := newMailServers(t, false)
	for _, c := range []struct {
		within  string
		timeout time.Duration
		after   time.Duration // at least this long waited
	}{
		{"", 2 * time.Second, 1500 * time.Millisecond},     // default 30s: capped to the deadline less 200ms
		{"1m", 3 * time.Second, 2500 * time.Millisecond},   // capped, margin 300ms
		{"500ms", 3 * time.Second, 500 * time.Millisecond}, // shorter than the deadline: as asked
	} {
		p := ms.params()
		if c.within != "" {
			p["visible_within"] = c.within
		}
		start := time.Now()
		r := Run(context.Background(), Spec{Name: "mail", Kind: "mail", Params: mustParams(t, "mail", p), Timeout: c.timeout}, nil)
		el := time.Since(start)
		const prefix = "canary visible: IMAP login ok, canary not visible after "
		if r.OK || !strings.HasPrefix(r.Message, prefix) || strings.Contains(r.Message, "deadline") || strings.Contains(r.Message, "no answer") {
			t.Errorf("visible_within %q, deadline %s: %q", c.within, c.timeout, r.Message)
			continue
		}
		waited, err := time.ParseDuration(strings.TrimPrefix(r.Message, prefix))
		if err != nil || waited < c.after || el >= c.timeout {
			t.Errorf("visible_within %q, deadline %s: waited %q (%v), the run took %s", c.within, c.timeout, strings.TrimPrefix(r.Message, prefix), err, el)
		}
		last := r.Phases[len(r.Phases)-1]
		if last.Name != "canary visible" || last.Error != strings.TrimPrefix(r.Message, "canary visible: ") {
			t.Errorf("last phase %+v", last)
		}
	}
}

// The delete phase also sweeps canaries older than SweepAge (an earlier
// run's leftovers) and leaves younger ones (another run's, in flight) and
// mail that is not a canary.
func TestMailSweepsOldCanaries(t *testing.T) {
	ms := newMailServers(t, true)
	ms.appendMail(t, "sentry canary leftover", time.Now().Add(-SweepAge-time.Minute))
	ms.appendMail(t, "sentry canary in flight", time.Now().Add(-SweepAge/2))
	ms.appendMail(t, "invoice", time.Now().Add(-24*time.Hour))
	r := Run(context.Background(), Spec{Name: "mail", Kind: "mail", Params: mustParams(t, "mail", ms.params()), Timeout: 5 * time.Second}, nil)
	if !r.OK {
		t.Fatalf("%+v", r)
	}
	if got := strings.Join(ms.subjects(t), ", "); got != "invoice, sentry canary in flight" {
		t.Errorf("left in the mailbox: %s, want invoice, sentry canary in flight", got)
	}
}

package alert

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects JSON log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the log records with the given msg.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runDispatcher(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// The whole path: results through the tracker, the dispatcher and the
// mailer to a real relay, with STARTTLS and AUTH PLAIN.
func TestTrackerToRelay(t *testing.T) {
	cert, pool := selfSigned(t)
	r := startRelay(t, cert, "sentry", testPassword)
	m, err := NewMailer(MailConfig{
		Relay: r.Addr, Username: "sentry", PasswordFile: passwordFile(t, testPassword, 0o600),
		From: "sentry@example.org", To: []string{"ops@example.org"}, SubjectPrefix: "[office]",
		TLSConfig: &tls.Config{RootCAs: pool},
	})
	if err != nil {
		t.Fatal(err)
	}
	log, logs := newLog()
	d := NewDispatcher(log, DispatcherOptions{SendTimeout: 5 * time.Second}, m)
	runDispatcher(t, d)
	tr := NewTracker(Policy{FailAfter: 2, ResolveAfter: 2})
	seq := []bool{false, true, false, false, false, true, true, true}
	for i, ok := range seq {
		d.Notify(tr.ObservePhase("node-s", "mail", ok, "imap-fetch", "canary not visible after 30s", t0.Add(time.Duration(i)*time.Minute))...)
	}
	waitFor(t, "two mails", func() bool { return len(r.messages()) >= 2 })
	time.Sleep(50 * time.Millisecond) // a third mail would be a bug
	msgs := r.messages()
	if len(msgs) != 2 {
		t.Fatalf("relay got %d mails, want firing and resolved", len(msgs))
	}
	for i, want := range []string{
		`[office] FIRING node-s mail: phase "imap-fetch": canary not visible after 30s`,
		`[office] RESOLVED node-s mail: works again`,
	} {
		msg, body := parse(t, msgs[i].Data)
		if got := msg.Header.Get("Subject"); got != want {
			t.Errorf("mail %d subject %q, want %q", i, got, want)
		}
		if !msgs[i].TLS || msgs[i].AuthUser != "sentry" {
			t.Errorf("mail %d: tls %v, auth %q", i, msgs[i].TLS, msgs[i].AuthUser)
		}
		if i == 0 && !strings.Contains(body, "Failures:  2") {
			t.Errorf("firing body:\n%s", body)
		}
		if i == 1 && !strings.Contains(body, "Failures:  3") {
			t.Errorf("resolved body:\n%s", body)
		}
	}
	// The journal has both, at error and info level.
	for msg, level := range map[string]string{
		`alert firing: node-s mail: phase "imap-fetch": canary not visible after 30s`: "ERROR",
		`alert resolved: node-s mail: works again`:                                    "INFO",
	} {
		recs := logs.records(t, msg)
		if len(recs) != 1 || recs[0]["level"] != level || recs[0]["node"] != "node-s" || recs[0]["phase"] != "imap-fetch" {
			t.Errorf("log records %q: %v", msg, recs)
		}
	}
	if strings.Contains(logs.String(), testPassword) {
		t.Error("the password is in the log")
	}
}

// A relay that is down: Notify returns at once, the dispatcher retries with
// a pause and then logs an error.
func TestRelayDownRetriesThenLogs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens there now
	m, err := NewMailer(MailConfig{Relay: addr, From: "sentry@example.org", To: []string{"ops@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	log, logs := newLog()
	d := NewDispatcher(log, DispatcherOptions{Attempts: 3, Backoff: 20 * time.Millisecond, SendTimeout: time.Second}, m)
	runDispatcher(t, d)
	start := time.Now()
	d.Notify(firingNotice())
	returned := time.Since(start)
	waitFor(t, "the give-up error", func() bool { return len(logs.records(t, "alert not sent, gave up")) == 1 })
	took := time.Since(start)

	retries := logs.records(t, "alert not sent, will retry")
	if len(retries) != 2 {
		t.Fatalf("%d retry warnings, want 2:\n%s", len(retries), logs)
	}
	for i, rec := range retries {
		if rec["attempt"] != float64(i+1) || rec["level"] != "WARN" || !strings.Contains(fmt.Sprint(rec["err"]), "connection refused") {
			t.Errorf("retry %d logged as %v", i+1, rec)
		}
	}
	if retries[0]["retry_in"] != "20ms" || retries[1]["retry_in"] != "40ms" {
		t.Errorf("pauses %v, %v; want 20ms then 40ms", retries[0]["retry_in"], retries[1]["retry_in"])
	}
	gave := logs.records(t, "alert not sent, gave up")[0]
	if gave["level"] != "ERROR" || gave["attempts"] != float64(3) || gave["sender"] != "mail" || gave["probe"] != "mail" {
		t.Errorf("give-up logged as %v", gave)
	}
	// The pauses were waited (20ms + 40ms), and Notify did not wait for
	// any of it.
	if took < 60*time.Millisecond || returned >= took {
		t.Errorf("gave up after %v, Notify returned after %v", took, returned)
	}
	if n := d.Pending(); n != 0 {
		t.Errorf("%d notices still queued", n)
	}
}

// blockingSender holds every Send until released.
type blockingSender struct {
	started chan string
	release chan struct{}
	mu      sync.Mutex
	sent    []string
}

func (b *blockingSender) Name() string { return "blocking" }

func (b *blockingSender) Send(ctx context.Context, n Notice) error {
	b.started <- n.Probe
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.sent = append(b.sent, n.Probe)
	b.mu.Unlock()
	return nil
}

func TestQueueFullDropsOldest(t *testing.T) {
	s := &blockingSender{started: make(chan string, 10), release: make(chan struct{})}
	log, logs := newLog()
	d := NewDispatcher(log, DispatcherOptions{QueueSize: 2, SendTimeout: 10 * time.Second}, s)
	runDispatcher(t, d)
	notice := func(probe string) Notice { n := firingNotice(); n.Probe = probe; return n }

	d.Notify(notice("p0"))
	if got := <-s.started; got != "p0" {
		t.Fatalf("first send was %s", got)
	}
	// The sender is stuck on p0. Notify must still return, every time.
	done := make(chan struct{})
	go func() {
		for i := 1; i <= 5; i++ {
			d.Notify(notice(fmt.Sprintf("p%d", i)))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify blocked while the sender was stuck")
	}
	drops := logs.records(t, "alert queue full: dropped the oldest alert, it was logged but not sent")
	var dropped []string
	for _, rec := range drops {
		dropped = append(dropped, fmt.Sprint(rec["probe"]))
		if rec["level"] != "WARN" {
			t.Errorf("drop logged at %v", rec["level"])
		}
	}
	if strings.Join(dropped, ",") != "p1,p2,p3" {
		t.Errorf("dropped %v, want p1,p2,p3", dropped)
	}
	// Every notice reached the log, dropped or not.
	if n := len(logs.records(t, `alert firing: node-s p3: phase "imap-fetch": canary not visible after 30s`)); n != 1 {
		t.Errorf("dropped notice p3 logged %d times, want 1", n)
	}
	close(s.release)
	waitFor(t, "the queue to drain", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.sent) == 3
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.Join(s.sent, ",") != "p0,p4,p5" {
		t.Errorf("sent %v, want p0,p4,p5", s.sent)
	}
}

// The password appears nowhere in the log: not when the relay refuses it,
// not when the mailer itself is logged or printed.
func TestPasswordNeverLogged(t *testing.T) {
	cert, pool := selfSigned(t)
	r := startRelay(t, cert, "sentry", "the-relay-wants-another-one")
	m, err := NewMailer(MailConfig{
		Relay: r.Addr, Username: "sentry", PasswordFile: passwordFile(t, testPassword, 0o600),
		From: "sentry@example.org", To: []string{"ops@example.org"}, TLSConfig: &tls.Config{RootCAs: pool},
	})
	if err != nil {
		t.Fatal(err)
	}
	log, logs := newLog()
	d := NewDispatcher(log, DispatcherOptions{Attempts: 2, Backoff: time.Millisecond, SendTimeout: 5 * time.Second}, m)
	runDispatcher(t, d)
	d.Notify(firingNotice())
	waitFor(t, "the give-up error", func() bool { return len(logs.records(t, "alert not sent, gave up")) == 1 })
	r.mu.Lock()
	fails := r.authFail
	r.mu.Unlock()
	if fails != 2 {
		t.Errorf("relay saw %d failed logins, want 2 (the password was sent and refused)", fails)
	}
	gave := logs.records(t, "alert not sent, gave up")[0]
	if err := fmt.Sprint(gave["err"]); !strings.Contains(err, "AUTH PLAIN as \"sentry\"") || !strings.Contains(err, "invalid username or password") {
		t.Errorf("give-up error %q does not say the login failed", err)
	}
	log.Info("mailer", "mailer", m, "any", any(m))
	log.Info("printed", "v", fmt.Sprintf("%v %+v %#v %s", m, m, m, m))

	out := logs.String()
	plain := base64.StdEncoding.EncodeToString([]byte("\x00sentry\x00" + testPassword))
	for _, secret := range []string{testPassword, plain} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "mail via "+r.Addr) {
		t.Errorf("the mailer was not logged at all:\n%s", out)
	}
}

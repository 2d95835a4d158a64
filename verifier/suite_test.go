package verifier

import (
	"context"
	"errors"
	"io"
	"sort"
	"sync"

	"github.com/emersion/go-smtp"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stallServer accepts connections and never says a word: the probe must
// give up at its deadline.
func stallServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func sortedNames(m map[string]fixture) []string {
	var ns []string
	for k := range m {
		ns = append(ns, k)
	}
	sort.Strings(ns)
	return ns
}

// acceptSMTP runs a go-smtp server on 127.0.0.1 that takes any message.
func acceptSMTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{}, nil }))
	srv.Domain = "localhost"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type sinkSession struct{}

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

// freeClosedPort returns a port on 127.0.0.1 with nothing listening.
func freeClosedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// fixture gives, for one kind, parameters for a target that passes (nil if
// the kind cannot pass outside the lab), and for one that stalls (nil if
// the kind does no network I/O).
type fixture struct {
	pass, stall, fail kv
	failPhase         string
	stallPhase        string // when set, the stall must be seen in this phase
}

func fixtures(t *testing.T) map[string]fixture {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("canary-ok")) }))
	t.Cleanup(web.Close)
	greet, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { greet.Close() })
	go func() {
		for {
			c, err := greet.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("220 test ESMTP\r\n"))
			c.Close()
		}
	}()
	stall := stallServer(t)
	closed := freeClosedPort(t)
	_, stallPort, _ := net.SplitHostPort(stall)
	backup := t.TempDir()
	mailPass := newMailServers(t, true)
	mailWrongPassword := mailPass.params()
	mailWrongPassword["password"] = "wrong"
	os.WriteFile(filepath.Join(backup, "today.tar"), []byte("x"), 0o644)
	return map[string]fixture{
		"http": {pass: kv{"url": web.URL, "marker": "canary-ok"}, stall: kv{"url": "http://" + stall + "/"},
			fail: kv{"url": web.URL, "marker": "not-there"}, failPhase: "check answer"},
		"tcp": {pass: kv{"address": greet.Addr().String(), "banner": "220 "}, stall: kv{"address": stall, "banner": "220 "},
			fail: kv{"address": greet.Addr().String(), "banner": "* OK"}, failPhase: "greeting"},
		// The passing case runs in the lab (e2e). Here: a unit that cannot
		// exist fails at "unit state" where there is a system bus, and at
		// "connect to systemd" where there is none (this build host).
		"systemd": {fail: kv{"unit": "sentry-no-such-unit-4711.service"}, failPhase: "connect to systemd|unit state"},
		"disk": {pass: kv{"path": t.TempDir(), "min_free_percent": "0"},
			fail: kv{"path": "/", "min_free_percent": "100"}, failPhase: "statfs"},
		"raid":   {pass: kv{"mdstat": "testdata/mdstat-clean"}, fail: kv{"mdstat": "testdata/mdstat-degraded"}, failPhase: "read mdstat"},
		"backup": {pass: kv{"path": backup}, fail: kv{"path": backup, "max_age": "1ns"}, failPhase: "newest file"},
		// No repository there (or no restic installed): a failure in the
		// restic phase either way. backup_test.go runs a real repository.
		"backup/restic": {fail: kv{"restic_repo": filepath.Join(backup, "no-repo"), "restic_password_file": filepath.Join(backup, "today.tar")},
			failPhase: "restic snapshots"},
		// The database round trips pass against the lab's real servers
		// (e2e); here: nothing listening, and a server that never answers.
		"postgres": {fail: kv{"port": closed, "user": "u", "database": "d"}, failPhase: "connect",
			stall: kv{"port": stallPort, "user": "u", "database": "d"}},
		"mail": {fail: kv{"smtp": "127.0.0.1:" + closed, "to": "c@localhost", "user": "c"}, failPhase: "smtp submit",
			stall: kv{"smtp": stall, "to": "c@localhost", "user": "c"}},
		// SMTP answers (a real go-smtp server that takes the message), IMAP
		// accepts the connection and never says a word.
		"mail/imap-stall": {fail: kv{"smtp": acceptSMTP(t), "smtp_tls": "none", "imap": "127.0.0.1:" + closed, "to": "c@localhost", "user": "c"},
			failPhase: "imap login", stallPhase: "imap login",
			stall: kv{"smtp": acceptSMTP(t), "smtp_tls": "none", "imap": stall, "to": "c@localhost", "user": "c"}},
		// Real servers on 127.0.0.1 (mail_test.go): the whole round trip
		// passes; a wrong password fails at the login.
		"mail/servers": {pass: mailPass.params(), fail: mailWrongPassword, failPhase: "imap login"},
		"smb": {fail: kv{"address": "127.0.0.1:" + closed, "share": "s", "user": "u"}, failPhase: "session",
			stall: kv{"address": stall, "share": "s", "user": "u"}},
		"sftp": {fail: kv{"address": "127.0.0.1:" + closed, "user": "u", "host_key": "SHA256:x"}, failPhase: "ssh login",
			stall: kv{"address": stall, "user": "u", "host_key": "SHA256:x"}},
		"mysql": {fail: kv{"port": closed, "user": "u", "database": "d"}, failPhase: "connect",
			stall: kv{"port": stallPort, "user": "u", "database": "d"}},
	}
}

// TestConformance: every kind, the same rules. A kind without a fixture
// fails the test, so a new kind cannot skip the suite.
func TestConformance(t *testing.T) {
	fx := fixtures(t)
	for _, kind := range KindNames() {
		if _, ok := fx[kind]; !ok {
			t.Errorf("probe kind %q has no conformance fixture", kind)
		}
	}
	for _, name := range sortedNames(fx) {
		f := fx[name]
		kind, _, _ := strings.Cut(name, "/")
		t.Run(name, func(t *testing.T) {
			if f.pass != nil {
				r := Run(context.Background(), Spec{Name: kind, Kind: kind, Params: mustParams(t, kind, f.pass), Timeout: 5 * time.Second}, nil)
				if !r.OK || len(r.Phases) == 0 {
					t.Errorf("pass case: %+v", r)
				}
				for _, ph := range r.Phases {
					if ph.Duration <= 0 || ph.Error != "" {
						t.Errorf("phase %+v not timed or failed", ph)
					}
				}
			}
			r := Run(context.Background(), Spec{Name: kind, Kind: kind, Params: mustParams(t, kind, f.fail), Timeout: 5 * time.Second}, nil)
			named := false
			for _, ph := range strings.Split(f.failPhase, "|") {
				named = named || strings.HasPrefix(r.Message, ph+": ")
			}
			if r.OK || !named {
				t.Errorf("fail case: message %q, want it to name the phase %q", r.Message, f.failPhase)
			}
			if f.stall != nil {
				start := time.Now()
				r := Run(context.Background(), Spec{Name: kind, Kind: kind, Params: mustParams(t, kind, f.stall), Timeout: 300 * time.Millisecond}, nil)
				// Bounded, not fast: a stalled server must not hold the probe
				// (it would hang forever). The margin allows for the race
				// detector on a loaded 2-core machine (1.09 s seen once).
				if el := time.Since(start); r.OK || el > 300*time.Millisecond+3*time.Second {
					t.Errorf("stall case: ok=%v after %s (deadline 300ms): %s", r.OK, el, r.Message)
				}
				if f.stallPhase != "" {
					last := r.Phases[len(r.Phases)-1]
					if last.Name != f.stallPhase || last.Error == "" {
						t.Errorf("stall case: stopped in phase %+v, want %q", last, f.stallPhase)
					}
				}
			}
			// A missing required parameter is a clear error, not a crash:
			// when the parameters are parsed, and when Run gets the
			// kind's defaults (no parameters).
			_, err := ParseParams(kind, nil)
			r = Run(context.Background(), Spec{Name: kind, Kind: kind, Timeout: time.Second}, nil)
			var pe *ParamError
			if kind == "disk" || kind == "raid" {
				if err != nil {
					t.Errorf("the defaults refused: %v", err)
				}
			} else if !errors.As(err, &pe) || r.OK || r.Message != pe.Error() || len(r.Phases) != 0 {
				t.Errorf("no parameters: parsed with %v, run: %+v", err, r)
			}
		})
	}
}

// The rules Run itself keeps, with test kinds: a probe that ignores its
// context is cut at the deadline; cleanups run whatever happens, even after
// a panic, and even when registered after the deadline.
func TestRunRules(t *testing.T) {
	var cleaned = make(chan string, 8)
	testKind(t, "test-ignores-deadline", func(ctx context.Context, p *testParams, rec *Recorder) error {
		rec.Cleanup(func(context.Context) { cleaned <- "early" })
		time.Sleep(500 * time.Millisecond)
		rec.Cleanup(func(context.Context) { cleaned <- "late" })
		return nil
	})
	testKind(t, "test-panics", func(ctx context.Context, p *testParams, rec *Recorder) error {
		rec.Cleanup(func(context.Context) { cleaned <- "panic" })
		panic("boom")
	})
	start := time.Now()
	r := Run(context.Background(), Spec{Name: "x", Kind: "test-ignores-deadline", Timeout: 100 * time.Millisecond}, nil)
	if r.OK || time.Since(start) > 300*time.Millisecond || !strings.Contains(r.Message, "no answer within 100ms") {
		t.Errorf("deadline: %+v after %s", r, time.Since(start))
	}
	r = Run(context.Background(), Spec{Name: "y", Kind: "test-panics", Timeout: time.Second}, nil)
	if r.OK || !strings.Contains(r.Message, "probe crashed: boom") {
		t.Errorf("panic: %+v", r)
	}
	got := map[string]bool{}
	timeout := time.After(2 * time.Second)
	for len(got) < 3 {
		select {
		case c := <-cleaned:
			got[c] = true
		case <-timeout:
			t.Fatalf("cleanups run: %v, want early, late and panic", got)
		}
	}
	if r := Run(context.Background(), Spec{Kind: "nope"}, nil); r.OK || !strings.Contains(r.Message, `unknown probe kind "nope"`) {
		t.Errorf("unknown kind: %+v", r)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a duplicate kind was accepted")
		}
	}()
	register("http", HTTPParams{}, probeHTTP)
}

func TestRAIDStates(t *testing.T) {
	for file, want := range map[string]string{
		"mdstat-clean": "", "mdstat-none": "", "mdstat-degraded": "md0 degraded [U_]", "mdstat-resync": "md1 [==>",
		"no-such-file": "",
	} {
		r := Run(context.Background(), Spec{Kind: "raid", Params: &RAIDParams{MDStat: "testdata/" + file}, Timeout: time.Second}, nil)
		if want == "" && !r.OK || want != "" && (r.OK || !strings.Contains(r.Message, want)) {
			t.Errorf("%s: ok=%v %q, want %q", file, r.OK, r.Message, want)
		}
	}
	r := Run(context.Background(), Spec{Kind: "raid", Params: &RAIDParams{MDStat: "testdata/mdstat-none", MinArrays: 1}, Timeout: time.Second}, nil)
	if r.OK || !strings.Contains(r.Message, "0 md array(s), want at least 1") {
		t.Errorf("min_arrays: %+v", r)
	}
}

func TestHTTPStatusAndTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	defer srv.Close()
	r := Run(context.Background(), Spec{Kind: "http", Params: &HTTPParams{URL: srv.URL, Status: 200, Insecure: true}, Timeout: 2 * time.Second}, nil)
	if r.OK || !strings.Contains(r.Message, "status 404, want 200") {
		t.Errorf("404: %+v", r)
	}
	if r.Values["tls_days_left"] == "" {
		t.Error("no tls_days_left for https")
	}
	r = Run(context.Background(), Spec{Kind: "http", Params: mustParams(t, "http", kv{"url": srv.URL}), Timeout: 2 * time.Second}, nil)
	if r.OK || !strings.HasPrefix(r.Message, "request: ") {
		t.Errorf("an untrusted certificate passed: %+v", r)
	}
}

// RunAll runs its specs side by side: each of three probes waits until all
// three have started (it would wait out its deadline if they ran one after
// another), and the results come in the specs' order.
func TestRunAllSideBySide(t *testing.T) {
	var started sync.WaitGroup
	started.Add(3)
	testKind(t, "test-barrier", func(ctx context.Context, p *testParams, rec *Recorder) error {
		started.Done()
		all := make(chan struct{})
		go func() { started.Wait(); close(all) }()
		select {
		case <-all:
			if p.Fail != "" {
				return errors.New(p.Fail)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	specs := []Spec{
		{Name: "a", Kind: "test-barrier", Timeout: 5 * time.Second},
		{Name: "b", Kind: "test-barrier", Timeout: 5 * time.Second, Params: &testParams{Fail: "b is red"}},
		{Name: "c", Kind: "test-barrier", Timeout: 5 * time.Second},
	}
	rs := RunAll(context.Background(), specs, nil)
	if len(rs) != 3 || rs[0].Name != "a" || rs[1].Name != "b" || rs[2].Name != "c" {
		t.Fatalf("results out of order: %+v", rs)
	}
	if !rs[0].OK || rs[1].OK || !strings.Contains(rs[1].Message, "b is red") || !rs[2].OK {
		t.Errorf("results: %+v", rs)
	}
}

// TestRunCutShort: a probe stopped because its caller gave up (the agent
// stopping) says so, not that the service gave no answer in time.
func TestRunCutShort(t *testing.T) {
	testKind(t, "test-blocks", func(ctx context.Context, p *testParams, rec *Recorder) error {
		return rec.Phase("login", func() error {
			time.Sleep(500 * time.Millisecond) // ignores its context
			return nil
		})
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	r := Run(ctx, Spec{Name: "x", Kind: "test-blocks", Timeout: 4 * time.Second}, nil)
	if r.OK || !strings.HasPrefix(r.Message, "login: cut short after ") || !strings.Contains(r.Message, "context canceled") || strings.Contains(r.Message, "no answer") {
		t.Errorf("cut short: %+v", r)
	}
}

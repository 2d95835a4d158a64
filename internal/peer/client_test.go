package peer

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/pki"
)

// testNodes makes a cluster CA and the certificates of node-p and node-s.
func testNodes(t *testing.T) (p, s *pki.Node) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("test-cluster", "test", now)
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string) *pki.Node {
		key, err := pki.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ca.SignKey(key, name, now)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "pki")
		if err := pki.Save(dir, ca.Cert, nil, cert, key); err != nil {
			t.Fatal(err)
		}
		n, err := pki.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return node("node-p"), node("node-s")
}

// peerServer serves h over mutual TLS as node p, counting connections.
func peerServer(t *testing.T, p *pki.Node, h http.Handler) (addr string, conns *atomic.Int32) {
	t.Helper()
	conns = new(atomic.Int32)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = p.ServerTLS()
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), conns
}

// One transport per target: calls share a connection; Close ends it.
func TestClientReusesItsTransport(t *testing.T) {
	p, s := testNodes(t)
	addr, conns := peerServer(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := Read(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, _ := Encode(TypeHello, "node-p", NodeStatus{Name: "node-p", Time: time.Now()})
		w.Write(b)
	}))
	c := NewClient(func() (Target, error) { return Target{Addr: addr, Name: "node-p", Node: s}, nil }, func() string { return "node-s" }, Codec{})
	for i := 0; i < 3; i++ {
		h, err := c.Hello(context.Background(), NodeStatus{Name: "node-s", Time: time.Now()})
		if err != nil || h.Name != "node-p" {
			t.Fatalf("hello %d: %+v %v", i, h, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 hellos, want 1", n)
	}
	c.Close()
	if _, err := c.Hello(context.Background(), NodeStatus{Name: "node-s", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections after Close and a hello, want 2", n)
	}
}

// A configuration fetch reads both forms of answer, and asks in the form
// the peer reads.
func TestFetchConfigBothForms(t *testing.T) {
	p, s := testNodes(t)
	const head = "0123456789abcdef0123456789abcdef01234567"
	var lastBody atomic.Value
	legacy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		lastBody.Store(string(b))
		w.Header().Set(HeaderConfigHead, head)
		w.Header().Set(HeaderPackEncoding, "gzip")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "PACK")
	})
	for _, c := range []struct {
		name     string
		h        http.Handler
		proto    int
		envelope bool
	}{
		{"protocol 2", legacy, 2, false},
		{"not known yet", legacy, 0, false},
		{"protocol 3", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			legacy(Codec{}.AnswerConfigPack(w, "node-p"), r)
		}), 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, _ := peerServer(t, p, c.h)
			cl := NewClient(func() (Target, error) { return Target{Addr: addr, Name: "node-p", Node: s}, nil }, func() string { return "node-s" }, Codec{})
			defer cl.Close()
			got, pack, err := cl.FetchConfig(context.Background(), "", c.proto)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(pack)
			pack.Close()
			if got != head || string(b) != "PACK" {
				t.Errorf("head %q, pack %q", got, b)
			}
			if sent := lastBody.Load().(string); IsEnvelope([]byte(sent)) != c.envelope || !strings.Contains(sent, `"have":""`) {
				t.Errorf("request %s, want a message: %v", sent, c.envelope)
			}
		})
	}
}

// A .deb is asked and read in both forms: protocol 2's bare request and
// headers, protocol 3's message and lead (what the link serves through
// AnswerDeb); a refusal reads the same in both.
func TestFetchDebBothForms(t *testing.T) {
	p, s := testNodes(t)
	const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	var lastBody atomic.Value
	legacy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		lastBody.Store(string(b))
		if strings.Contains(string(b), `"name":"nosuch"`) {
			w.WriteHeader(http.StatusNotFound)
			b, _ := Encode(TypeError, "node-p", ErrorBody{Message: "no file for nosuch"})
			w.Write(b)
			return
		}
		w.Header().Set(HeaderDebFilename, "hello_1.0_all.deb")
		w.Header().Set(HeaderDebSHA256, sum)
		w.Header().Set("Content-Length", "4")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "test")
	})
	for _, c := range []struct {
		name     string
		h        http.Handler
		proto    int
		envelope bool
	}{
		{"protocol 2", legacy, 2, false},
		{"not known yet", legacy, 0, false},
		{"protocol 3", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			legacy(Codec{}.AnswerDeb(w, "node-p"), r)
		}), 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, _ := peerServer(t, p, c.h)
			cl := NewClient(func() (Target, error) { return Target{Addr: addr, Name: "node-p", Node: s}, nil }, func() string { return "node-s" }, Codec{})
			defer cl.Close()
			deb, f, err := cl.FetchDeb(context.Background(), DebRequest{Name: "hello", Arch: "all", Version: "1.0"}, c.proto)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(f)
			f.Close()
			if deb.Filename != "hello_1.0_all.deb" || deb.SHA256 != sum || deb.Size != 4 || string(b) != "test" {
				t.Errorf("deb %+v, file %q", deb, b)
			}
			if sent := lastBody.Load().(string); IsEnvelope([]byte(sent)) != c.envelope || !strings.Contains(sent, `"name":"hello"`) {
				t.Errorf("request %s, want a message: %v", sent, c.envelope)
			}
			_, _, err = cl.FetchDeb(context.Background(), DebRequest{Name: "nosuch", Arch: "all", Version: "1.0"}, c.proto)
			if err == nil || err.Error() != "the peer has no file for it: no file for nosuch" {
				t.Errorf("refusal: %v", err)
			}
		})
	}
}

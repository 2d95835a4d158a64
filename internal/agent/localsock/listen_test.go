package localsock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dialEnv makes the test binary dial the socket it names and print the
// answer's status line instead of running the tests (TestMain), so that
// a test can be a peer with other credentials.
const dialEnv = "LOCALSOCK_TEST_DIAL"

func TestMain(m *testing.M) {
	if p := os.Getenv(dialEnv); p != "" {
		fmt.Println(dialGet(p))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// dialGet asks GET /v1/status on the socket at path and says what came
// back: the status line, "closed" when the agent dropped the connection,
// or the dial's error.
func dialGet(path string) string {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n"); err != nil {
		return "closed"
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "closed"
	}
	return strings.TrimSpace(line)
}

// serve serves inner on lns (Server) until the test ends.
func serve(t *testing.T, lns ...net.Listener) *inner {
	t.Helper()
	h := &inner{}
	srv := Server(h, nil)
	for _, ln := range lns {
		go srv.Serve(ln)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return h
}

// ask sends method path on the socket and returns the status code, or
// the error (the connection closed without an answer).
func ask(t *testing.T, sock, method, path string) (int, error) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(method, "http://agent"+path, strings.NewReader("{}"))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// otherGID is a group this process is not in.
func otherGID(t *testing.T) int {
	t.Helper()
	groups, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	g := 54321
	for g == os.Getgid() || slices.Contains(groups, g) {
		g++
	}
	return g
}

// The credential check with this process's own credentials as the peer's
// (SO_PEERCRED of a real unix socket): its group and its supplementary
// groups are served, a group it is not in is refused, and so is a peer
// the socket lists neither by user nor by group.
func TestCredentialCheck(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		a      access
		served bool
	}{
		{"its user", access{uids: []uint32{uint32(os.Geteuid())}, gid: -1}, true},
		{"a member by its group", access{gid: os.Getgid()}, true},
		{"a stranger to the group", access{gid: otherGID(t)}, false},
		{"no user, no group", access{uids: []uint32{uint32(os.Geteuid()) + 1}, gid: -1}, false},
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g != os.Getgid() {
			cases = append(cases, struct {
				name   string
				a      access
				served bool
			}{fmt.Sprintf("a member by its supplementary group %d", g), access{gid: g}, true})
			break
		}
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.a.readOnly = true
			sock := filepath.Join(dir, fmt.Sprintf("s%d.sock", i))
			ln, err := listen(sock, c.a)
			if err != nil {
				t.Fatal(err)
			}
			h := serve(t, ln)
			code, err := ask(t, sock, http.MethodGet, "/v1/status")
			if c.served && (err != nil || code != http.StatusOK || h.n != 1) {
				t.Errorf("GET /v1/status: %d %v (handler %d), want 200", code, err, h.n)
			}
			if !c.served && (err == nil || h.n != 0) {
				t.Errorf("GET /v1/status: %d %v (handler %d), want the connection closed", code, err, h.n)
			}
		})
	}
}

// The root-only socket's peers get the whole API, the read-only socket's
// the allow list.
func TestServerViews(t *testing.T) {
	dir := t.TempDir()
	root, read := filepath.Join(dir, "run", "agent.sock"), filepath.Join(dir, "run", "agent-read.sock")
	lns, err := listenWith(root, read, noGroup, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := serve(t, lns...)
	for _, c := range []struct {
		sock, method, path string
		want               int
	}{
		{root, http.MethodPost, "/v1/promote", 200},
		{root, http.MethodGet, "/v1/config/show", 200},
		{root, http.MethodGet, "/v1/status", 200},
		{read, http.MethodGet, "/v1/status", 200},
		{read, http.MethodGet, "/v1/events?n=5", 200},
		{read, http.MethodPost, "/v1/promote", 403},
		{read, http.MethodPost, "/v1/status", 403},
		{read, http.MethodGet, "/v1/config/show", 403},
	} {
		code, err := ask(t, c.sock, c.method, c.path)
		if err != nil || code != c.want {
			t.Errorf("%s %s on %s: %d %v, want %d", c.method, c.path, filepath.Base(c.sock), code, err, c.want)
		}
	}
	if h.n != 5 {
		t.Errorf("the handler served %d requests, want 5", h.n)
	}
}

func noGroup(name string) (*user.Group, error) { return nil, user.UnknownGroupError(name) }

func mode(t *testing.T, p string) (os.FileMode, int) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm(), int(fi.Sys().(*syscall.Stat_t).Gid)
}

func TestListenModes(t *testing.T) {
	t.Run("no group", func(t *testing.T) {
		dir := t.TempDir()
		run := filepath.Join(dir, "run")
		var logs bytes.Buffer
		lns, err := listenWith(filepath.Join(run, "agent.sock"), filepath.Join(run, "agent-read.sock"), noGroup, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer closeAll(lns)
		if len(lns) != 2 {
			t.Fatalf("%d listeners", len(lns))
		}
		for p, want := range map[string]os.FileMode{run: 0o700, filepath.Join(run, "agent.sock"): 0o600, filepath.Join(run, "agent-read.sock"): 0o600} {
			if m, _ := mode(t, p); m != want {
				t.Errorf("%s: %v, want %v", p, m, want)
			}
		}
		if n := strings.Count(logs.String(), `the read-only socket serves root only: there is no group \"sentry\"`); n != 1 {
			t.Errorf("said %d times that the group is missing:\n%s", n, logs.String())
		}
		// A second agent on the same sockets is refused.
		if _, err := listenWith(filepath.Join(run, "agent.sock"), "", noGroup, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "another agent already serves") {
			t.Errorf("a second agent: %v", err)
		}
	})
	t.Run("group", func(t *testing.T) {
		dir := t.TempDir()
		run := filepath.Join(dir, "run")
		gid := os.Getgid() // a group this process may give its files to
		lookup := func(name string) (*user.Group, error) {
			if name != Group {
				t.Errorf("looked up group %q", name)
			}
			return &user.Group{Gid: fmt.Sprint(gid), Name: name}, nil
		}
		var logs bytes.Buffer
		lns, err := listenWith(filepath.Join(run, "agent.sock"), filepath.Join(run, "agent-read.sock"), lookup, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer closeAll(lns)
		for p, want := range map[string]os.FileMode{run: 0o750, filepath.Join(run, "agent.sock"): 0o600, filepath.Join(run, "agent-read.sock"): 0o660} {
			m, g := mode(t, p)
			if m != want {
				t.Errorf("%s: %v, want %v", p, m, want)
			}
			if want&0o050 != 0 && g != gid {
				t.Errorf("%s: group %d, want %d", p, g, gid)
			}
		}
		if ro := lns[1].(*listener); ro.gid != gid || !ro.readOnly {
			t.Errorf("read-only listener: gid %d, read-only %v", ro.gid, ro.readOnly)
		}
		if logs.Len() != 0 {
			t.Errorf("logged: %s", logs.String())
		}
	})
	t.Run("a folder others may write", func(t *testing.T) {
		run := filepath.Join(t.TempDir(), "run")
		os.MkdirAll(run, 0o700)
		os.Chmod(run, 0o777)
		lookup := func(name string) (*user.Group, error) {
			return &user.Group{Gid: fmt.Sprint(os.Getgid()), Name: name}, nil
		}
		var logs bytes.Buffer
		lns, err := listenWith(filepath.Join(run, "agent.sock"), filepath.Join(run, "agent-read.sock"), lookup, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer closeAll(lns)
		if m, _ := mode(t, filepath.Join(run, "agent-read.sock")); m != 0o600 || lns[1].(*listener).gid != -1 {
			t.Errorf("read-only socket: %v, gid %d; want 0600 and root only", m, lns[1].(*listener).gid)
		}
		if !strings.Contains(logs.String(), "the read-only socket serves root only: it could not be given to group sentry") ||
			!strings.Contains(logs.String(), "writable by others") {
			t.Errorf("logged: %s", logs.String())
		}
	})
	t.Run("no read socket", func(t *testing.T) {
		lns, err := listenWith(filepath.Join(t.TempDir(), "agent.sock"), "", noGroup, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer closeAll(lns)
		if len(lns) != 1 || lns[0].(*listener).readOnly {
			t.Errorf("listeners: %v", lns)
		}
	})
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func TestPeerGroups(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "123"), 0o755)
	os.WriteFile(filepath.Join(proc, "123", "status"), []byte("Name:\tsentry\nUid:\t1000\t1001\t1001\t1001\nGid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 998 \nNgid:\t0\n"), 0o644)
	os.MkdirAll(filepath.Join(proc, "124"), 0o755)
	os.WriteFile(filepath.Join(proc, "124", "status"), []byte("Uid:\t0\t0\t0\t0\nGroups:\t\n"), 0o644)
	os.MkdirAll(filepath.Join(proc, "125"), 0o755)
	os.WriteFile(filepath.Join(proc, "125", "status"), []byte("Uid:\t0\t0\t0\t0\n"), 0o644)
	os.MkdirAll(filepath.Join(proc, "126"), 0o755)
	os.WriteFile(filepath.Join(proc, "126", "status"), []byte("Uid:\t0\t0\t0\t0\nGroups:\t4 x\n"), 0o644)

	if g, err := peerGroups(proc, 123, 1001); err != nil || !slices.Equal(g, []uint32{4, 24, 998}) {
		t.Errorf("pid 123: %v %v", g, err)
	}
	if g, err := peerGroups(proc, 124, 0); err != nil || len(g) != 0 {
		t.Errorf("pid 124 (no groups): %v %v", g, err)
	}
	for _, c := range []struct {
		pid  int32
		uid  uint32
		what string
	}{
		{123, 1000, "the real uid is not the peer's effective one"},
		{123, 0, "another user's process (a reused pid)"},
		{125, 0, "no Groups line"},
		{126, 0, "a bad group"},
		{127, 0, "no such process"},
		{0, 0, "no pid"},
	} {
		if g, err := peerGroups(proc, c.pid, c.uid); err == nil {
			t.Errorf("%s: %v, want an error", c.what, g)
		}
	}
	// This process, as /proc says.
	if _, err := os.Stat("/proc/self/status"); err == nil {
		g, err := peerGroups("", int32(os.Getpid()), uint32(os.Geteuid()))
		want, _ := os.Getgroups()
		var w []uint32
		for _, x := range want {
			w = append(w, uint32(x))
		}
		if err != nil || !slices.Equal(g, w) {
			t.Errorf("this process: %v %v, want %v", g, err, w)
		}
	}
}

// A peer of another user, in the group by a supplementary group only (as
// a member who logged in gets it): served; one whose groups do not
// include it: closed; one the socket's mode keeps out: refused at
// connect. Needs root, to run the peer as nobody.
func TestAnotherUsersGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root to run a peer as another user (CI must run it)")
		}
		t.Skip("needs root to run a peer as another user")
	}
	dir := t.TempDir()
	// The peer reaches the test's folder and runs a copy of this binary.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "localsock.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	const member, outsider = 4242, 4343
	open := func(name string, served int) string {
		sock := filepath.Join(dir, "run", name)
		ln, err := listen(sock, access{uids: []uint32{0}, gid: served, readOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := share(sock, member); err != nil {
			t.Fatal(err)
		}
		serve(t, ln)
		return sock
	}
	servesMember := open("member.sock", member)
	servesOther := open("other.sock", outsider)
	if m, g := mode(t, filepath.Join(dir, "run")); m != 0o750 || g != member {
		t.Fatalf("the sockets' folder: %v group %d, want 0750 group %d", m, g, member)
	}
	peer := func(sock string, groups ...uint32) string {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), dialEnv+"="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("peer: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := peer(servesMember, member); !strings.Contains(got, " 200 ") {
		t.Errorf("a member by a supplementary group: %q, want 200", got)
	}
	if got := peer(servesOther, member); got != "closed" {
		t.Errorf("a peer not in the socket's group: %q, want the connection closed", got)
	}
	if got := peer(servesMember); !strings.Contains(got, "permission denied") {
		t.Errorf("a peer in no group: %q, want permission denied", got)
	}
}

package modset

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sentryha/sentry/modules"
)

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// call serves one request of the module routes; it returns the status and
// the body, decoded into out when it is 200.
func call(t *testing.T, s *testSet, method, path, body string, out any) (int, string) {
	t.Helper()
	mux := http.NewServeMux()
	s.Routes(mux, reply)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	if rec.Code == http.StatusOK && out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, rec.Body.String())
		}
	}
	return rec.Code, rec.Body.String()
}

func module(l *List, name string) *Module {
	for i := range l.Modules {
		if l.Modules[i].Name == name {
			return &l.Modules[i]
		}
	}
	return nil
}

// GET /v1/modules answers the modules as `sentry modules list --json`
// shows them: the same rows, field for field.
func TestRoutesList(t *testing.T) {
	s := newTestSet(t, false)
	var l List
	if code, body := call(t, s, "GET", "/v1/modules", "", &l); code != http.StatusOK {
		t.Fatalf("GET /v1/modules: %d %s", code, body)
	}
	want, _, err := modules.List(s.opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []modules.Status
	for _, m := range l.Modules {
		got = append(got, m.Status)
		if len(m.HeldBack) > 0 {
			t.Errorf("the primary holds back %v of %s", m.HeldBack, m.Name)
		}
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if string(wb) != string(gb) {
		t.Errorf("GET /v1/modules differs from sentry modules list --json:\n got %s\nwant %s", gb, wb)
	}
	if l.Node != "node-s" || l.Secondary || len(l.Pending) > 0 {
		t.Errorf("node %q secondary %v pending %v", l.Node, l.Secondary, l.Pending)
	}
	w := module(&l, "web-nginx")
	if w == nil || w.Selected != "9.0.0" || w.Origin != modules.OriginInstalled || !slices.Equal(w.History, []string{"1.0.0"}) || len(w.Available) != 2 {
		t.Errorf("web-nginx: %+v", w)
	}
}

// On the secondary the list says what the primary's modules ask beyond
// its approved boundary, and which module asks for it.
func TestRoutesListSecondaryHeldBack(t *testing.T) {
	s := newTestSet(t, true)
	s.PolicyUnits() // the sync's policy: what is held back is known
	var l List
	if code, body := call(t, s, "GET", "/v1/modules", "", &l); code != http.StatusOK {
		t.Fatalf("GET /v1/modules: %d %s", code, body)
	}
	if !l.Secondary || !slices.Equal(l.Pending, []string{"/etc/cron.d"}) {
		t.Fatalf("secondary %v pending %v", l.Secondary, l.Pending)
	}
	for _, m := range l.Modules {
		want := []string(nil)
		if m.Name == "web-nginx" {
			want = []string{"/etc/cron.d"}
		}
		if !slices.Equal(m.HeldBack, want) {
			t.Errorf("%s: held back %v, want %v", m.Name, m.HeldBack, want)
		}
	}
}

// POST /v1/modules/use and /rollback do what `sentry modules use` and
// `rollback` do, and the set in use is the new one at once.
func TestRoutesUseRollback(t *testing.T) {
	s := newTestSet(t, false)
	if v := s.Modules().Module("web-nginx").Version; v != "9.0.0" {
		t.Fatalf("in use: %s", v)
	}
	var ch Changed
	if code, body := call(t, s, "POST", "/v1/modules/use", `{"name":"web-nginx","version":"1.0.0"}`, &ch); code != http.StatusOK {
		t.Fatalf("use: %d %s", code, body)
	}
	if ch.Status.Selected != "1.0.0" || ch.Status.Origin != modules.OriginBuiltin || !slices.Equal(ch.Status.History, []string{"1.0.0", "9.0.0"}) {
		t.Errorf("use: %+v", ch.Status)
	}
	// Read again at once, even with the files' fingerprint unchanged.
	if v := s.Modules().Module("web-nginx").Version; v != "1.0.0" {
		t.Errorf("after use, the agent uses %s", v)
	}
	if n := len(s.events); n != 1 || s.events[0].kind != "modules-use" || !strings.Contains(s.events[0].msg, "web-nginx: 1.0.0 selected, was 9.0.0") {
		t.Errorf("events: %+v", s.events)
	}
	// What the CLI reads is what the API wrote.
	list, _, _ := modules.List(s.opts)
	for _, st := range list {
		if st.Name == "web-nginx" && st.Selected != "1.0.0" {
			t.Errorf("sentry modules list: %+v", st)
		}
	}

	ch = Changed{}
	if code, body := call(t, s, "POST", "/v1/modules/rollback", `{"name":"web-nginx"}`, &ch); code != http.StatusOK {
		t.Fatalf("rollback: %d %s", code, body)
	}
	if ch.Status.Selected != "9.0.0" || !ch.Status.Pinned || !slices.Equal(ch.Status.History, []string{"1.0.0"}) {
		t.Errorf("rollback: %+v", ch.Status)
	}
	if v := s.Modules().Module("web-nginx").Version; v != "9.0.0" {
		t.Errorf("after rollback, the agent uses %s", v)
	}
	if s.events[len(s.events)-1].kind != "modules-rollback" {
		t.Errorf("events: %+v", s.events)
	}
	call(t, s, "POST", "/v1/modules/rollback", `{"name":"web-nginx"}`, nil) // to 1.0.0
	code, body := call(t, s, "POST", "/v1/modules/rollback", `{"name":"web-nginx"}`, nil)
	if code == http.StatusOK || !strings.Contains(body, "no previous version") {
		t.Errorf("rollback with an empty history: %d %s", code, body)
	}
}

// A request that is wrong changes nothing and records nothing.
func TestRoutesRefusals(t *testing.T) {
	s := newTestSet(t, false)
	before, err := os.ReadFile(s.opts.SelectionFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, body, says string }{
		{"/v1/modules/use", `{"name":"web-nginx"}`, "needs a module name and a version"},
		{"/v1/modules/use", `{"name":"web-nginx","version":"7.7.7"}`, "has no version 7.7.7"},
		{"/v1/modules/use", `{"name":"no-such","version":"1.0.0"}`, "no module no-such"},
		{"/v1/modules/use", `{"name":"web-nginx","version":"1.0.0","yes":true}`, "bad request"},
		{"/v1/modules/use", `not json`, "bad request"},
		{"/v1/modules/rollback", `{}`, "needs a module name"},
		{"/v1/modules/rollback", `{"name":"../etc"}`, "not a module name"},
		{"/v1/modules/rollback", `{"name":"db-mariadb"}`, "no previous version"},
	} {
		code, body := call(t, s, "POST", c.path, c.body, nil)
		if code == http.StatusOK || !strings.Contains(body, c.says) {
			t.Errorf("POST %s %s: %d %s, want an error saying %q", c.path, c.body, code, body, c.says)
		}
	}
	after, _ := os.ReadFile(s.opts.SelectionFile)
	if string(after) != string(before) {
		t.Errorf("a refused request changed the selection:\n%s", after)
	}
	if len(s.events) != 0 {
		t.Errorf("events: %+v", s.events)
	}
	if code, _ := call(t, s, "GET", "/v1/modules/use", "", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/modules/use: %d", code)
	}
}

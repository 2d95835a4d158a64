package localsock

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/agent/api"
)

// inner answers 200 and counts the requests that reach it.
type inner struct{ n int }

func (h *inner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.n++
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(`{"ok":true}`))
}

func TestReadOnlyServesTheAllowList(t *testing.T) {
	h := &inner{}
	ro := ReadOnly(h)
	paths := Readable()
	if len(paths) == 0 {
		t.Fatal("the allow list is empty")
	}
	for _, p := range paths {
		for _, target := range []string{p, p + "?n=5&rev=HEAD"} {
			rec := httptest.NewRecorder()
			before := h.n
			ro.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			if rec.Code != http.StatusOK || h.n != before+1 {
				t.Errorf("GET %s: %d (handler called %d times), want 200 from the handler", target, rec.Code, h.n-before)
			}
		}
	}
}

func TestReadOnlyRefusesTheRest(t *testing.T) {
	h := &inner{}
	ro := ReadOnly(h)
	cases := []struct{ method, target string }{
		// What acts, whatever its method.
		{http.MethodPost, "/v1/promote"},
		{http.MethodPost, "/v1/token"},
		{http.MethodPost, "/v1/init"},
		{http.MethodPost, "/v1/config/rollback"},
		{http.MethodPost, "/v1/parity/apply"},
		{http.MethodPost, "/v1/verify/now"},
		{http.MethodPost, "/v1/reload"},
		{http.MethodPost, "/v1/report/run"},
		{http.MethodGet, "/v1/promote"},
		// A readable path with another method.
		{http.MethodPost, "/v1/status"},
		{http.MethodPut, "/v1/status"},
		{http.MethodDelete, "/v1/events"},
		{http.MethodPatch, "/v1/ready"},
		{http.MethodHead, "/v1/status"},
		{http.MethodOptions, "/v1/status"},
		// GETs left out, and ones that are not there.
		{http.MethodGet, "/v1/config/show?rev=HEAD&path=/etc/hosts"},
		{http.MethodGet, "/v1/config/diff"},
		{http.MethodGet, "/v1/config/drift"},
		{http.MethodGet, "/v1/verify/debug?probe=web"},
		{http.MethodGet, "/v1/nothing"},
		{http.MethodGet, "/"},
		{http.MethodGet, "/v1/status/"},
		{http.MethodGet, "/v1//status"},
		{http.MethodGet, "/v1/./status"},
		{http.MethodGet, "/v1/x/../config/show"},
		// Escapes are matched as written.
		{http.MethodGet, "/v1/%73tatus"},
		{http.MethodGet, "/v1/config%2Fshow"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		ro.ServeHTTP(rec, httptest.NewRequest(c.method, c.target, strings.NewReader("{}")))
		var ae api.Error
		if rec.Code != http.StatusForbidden || json.Unmarshal(rec.Body.Bytes(), &ae) != nil || ae.Error != Refusal {
			t.Errorf("%s %s: %d %q, want 403 {\"error\": %q}", c.method, c.target, rec.Code, rec.Body.String(), Refusal)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", c.method, c.target, ct)
		}
	}
	if h.n != 0 {
		t.Errorf("the handler was called %d times", h.n)
	}
	if Refusal != "read-only: this needs root (sudo sentry ...)" {
		t.Errorf("Refusal = %q", Refusal)
	}
}

// Every GET route of the local API (its patterns in internal/agent's
// source) is decided: on the allow list, or withheld with a reason; and
// each path decided is a route.
func TestEveryGetRouteIsDecided(t *testing.T) {
	pat := regexp.MustCompile(`"GET (/[^" ]*)"`)
	found := map[string]string{}
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range pat.FindAllSubmatch(b, -1) {
			found[string(m[1])] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 10 {
		t.Fatalf("found %d GET routes only: %v", len(found), found)
	}
	for p, file := range found {
		if readable[p] == (withheld[p] != "") {
			t.Errorf("GET %s (%s): put it on the read-only socket's allow list (readable) or in withheld with why, not both or neither", p, file)
		}
	}
	var all []string
	for p := range readable {
		all = append(all, p)
	}
	for p := range withheld {
		all = append(all, p)
	}
	sort.Strings(all)
	for _, p := range all {
		if _, ok := found[p]; !ok {
			t.Errorf("%s is decided but no GET route has that path", p)
		}
	}
}

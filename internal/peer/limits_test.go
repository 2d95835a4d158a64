package peer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// Issue 20, finding 10: the peer's results are bounded before anything
// stores them: at most 64 a message, names of a strict form.
func TestPeerResultsBounded(t *testing.T) {
	now := time.Now().UTC()
	res := func(n int, name func(i int) string) []store.StoredResult {
		var out []store.StoredResult
		for i := 0; i < n; i++ {
			out = append(out, store.StoredResult{Node: "node-p", Probe: name(i), Kind: "tcp", Start: now})
		}
		return out
	}
	plain := func(i int) string { return fmt.Sprintf("probe %d", i) }
	for _, tc := range []struct {
		what    string
		results []store.StoredResult
		ok      bool
	}{
		{"64 results", res(64, plain), true},
		{"the module probe names", res(1, func(int) string { return "unit smbd.service/x:1@a-b" }), true},
		{"65 results", res(65, plain), false},
		{"a line break", res(1, func(int) string { return "web\nFIRING" }), false},
		{"a terminal escape", res(1, func(int) string { return "web\x1b[2J" }), false},
		{"a path", res(1, func(int) string { return "../../etc/cron.d" }), false},
		{"65 bytes", res(1, func(int) string { return strings.Repeat("p", 65) }), false},
	} {
		h := hello()
		h.Results = tc.results
		for i := range h.Results {
			h.Results[i].Node = h.Name
		}
		b, err := Encode(TypeHello, h.Name, h)
		if err != nil {
			t.Fatal(err)
		}
		_, herr := Decode(b)
		vb, err := Encode(TypeVerifyResults, h.Name, VerifyResults{Results: h.Results})
		if err != nil {
			t.Fatal(err)
		}
		_, verr := Decode(vb)
		for what, err := range map[string]error{"hello": herr, "verify results": verr} {
			if tc.ok && err != nil {
				t.Errorf("%s with %s refused: %v", what, tc.what, err)
			}
			if !tc.ok && !errors.Is(err, ErrMalformed) {
				t.Errorf("%s with %s: %v, want it refused", what, tc.what, err)
			}
		}
	}
}

func TestCheckGeneration(t *testing.T) {
	for _, tc := range []struct {
		gen, known uint64
		ok         bool
	}{
		{1, 0, true}, {1 << 62, 0, true}, {1<<62 + 1, 0, false}, {1 << 63, 0, false}, {1<<64 - 1, 0, false},
		{2, 1, true}, {17, 1, true}, {18, 1, false}, {0, 5, true}, {1 << 62, 1 << 62, true}, {1<<62 + 1, 1 << 62, false},
	} {
		err := CheckGeneration(tc.gen, tc.known)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrGeneration)) {
			t.Errorf("generation %d, known %d: %v, want ok %v", tc.gen, tc.known, err, tc.ok)
		}
	}
}

package peer

import (
	"errors"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/store"
)

// TestVerifyResults: a node may only send results of its own probes.
func TestVerifyResults(t *testing.T) {
	ok, err := Encode(TypeVerifyResults, "node-s", VerifyResults{Results: []store.StoredResult{{Node: "node-s", Probe: "mail", OK: true}}})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Decode(ok)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := env.VerifyResults()
	if err != nil || len(vr.Results) != 1 || vr.Results[0].Probe != "mail" {
		t.Fatalf("%+v %v", vr, err)
	}
	forged, _ := Encode(TypeVerifyResults, "node-s", VerifyResults{Results: []store.StoredResult{{Node: "node-p", Probe: "mail", OK: true}}})
	if _, err := Decode(forged); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), `of node "node-p" from node-s`) {
		t.Fatalf("results of another node taken: %v", err)
	}
	long, _ := Encode(TypeVerifyRequest, "node-p", VerifyRequest{Service: strings.Repeat("x", 200)})
	if _, err := Decode(long); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a 200-byte service name taken: %v", err)
	}
}

package verifier

import (
	"context"
	"testing"
)

// kv is a probe's parameters in their text form, as --param gives them.
type kv map[string]string

// mustParams parses the text form for kind, as `sentry verify --param` does.
func mustParams(t testing.TB, kind string, p kv) Params {
	t.Helper()
	out, err := ParseParams(kind, p)
	if err != nil {
		t.Fatalf("%s parameters %v: %v", kind, p, err)
	}
	return out
}

// testParams are the parameters of the kinds tests register.
type testParams struct {
	Fail string `param:"fail"`
}

func (*testParams) probeParams() {}

// testKind registers a kind for one test.
func testKind(t *testing.T, name string, fn func(context.Context, *testParams, *Recorder) error) {
	t.Helper()
	register(name, testParams{}, fn)
	t.Cleanup(func() { delete(kinds, name) })
}

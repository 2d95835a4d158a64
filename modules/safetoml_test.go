package modules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// nestedTables is 4n+6 bytes of inline tables n deep: BurntSushi/toml's
// cost grows with n² (issue 20, finding 8).
func nestedTables(n int) string {
	return strings.Repeat("{b=", n) + "1" + strings.Repeat("}", n)
}

// Manifests and the selection come from the peer: a nested one is refused
// before the parser sees it, as an *Error (exit 3) naming file and line.
func TestNestedManifestAndSelectionRefused(t *testing.T) {
	manifest := "schema = 2\nname = \"web-x\"\nversion = \"1.0.0\"\nkind = \"web\"\ndescription = " + nestedTables(2000) + "\n"
	for _, follower := range []bool{false, true} {
		_, _, err := parse("web-x.toml", []byte(manifest), follower)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) ||
			err.Error() != "web-x.toml:5:1: keys nested 9 deep, over the limit of 8 (refused before parsing)" {
			t.Errorf("parse (follower %v) = %v", follower, err)
		}
	}
	path := filepath.Join(t.TempDir(), "modules.toml")
	if err := os.WriteFile(path, []byte("schema_version = 1\n[modules.web-nginx]\nversion = "+nestedTables(2000)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadSelection(path)
	var e *Error
	if !errors.As(err, &e) || err.Error() != path+":3:1: keys nested 9 deep, over the limit of 8 (refused before parsing)" {
		t.Errorf("ReadSelection = %v", err)
	}
}

// The context of a syntax error is safe to print: control characters
// escaped, a long line cut around the error.
func TestSyntaxContextIsSafe(t *testing.T) {
	doc := "schema = 2\nname = \"web-\x1b]0;x\x07" + strings.Repeat("y", 5000) + "\n"
	_, _, err := Parse("m.toml", []byte(doc))
	var e *Error
	if !errors.As(err, &e) || e.Context == "" {
		t.Fatalf("Parse = %v, want a syntax error with its context", err)
	}
	if len(e.Context) > 1000 || !strings.Contains(e.Context, `\x1b]0;x\a`) {
		t.Errorf("context of %d bytes:\n%.600s", len(e.Context), e.Context)
	}
	for _, r := range e.Context {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Fatalf("%q printed raw in the context:\n%.600s", r, e.Context)
		}
	}
}

package bootcheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/safetoml"
)

// Issue 20, finding 8: machines.toml comes from the peer and is read at
// boot; a nested or oversized one is refused before BurntSushi/toml
// (quadratic in nesting) parses it, naming the file, the line and the limit.
func TestReadMachinesRefusesNestedAndLarge(t *testing.T) {
	dir := t.TempDir()
	nested := filepath.Join(dir, "machines.toml")
	// 8 KB: about half a second and 500 MB in the parser alone.
	doc := "schema_version = 1\n[[machine]]\nid = \"mac:02\"\nsource = " + strings.Repeat("{b=", 2000) + "1" + strings.Repeat("}", 2000) + "\n"
	if err := os.WriteFile(nested, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	large := filepath.Join(dir, "large.toml")
	if err := os.WriteFile(large, []byte("schema_version = 1\n#"+strings.Repeat("x", safetoml.PeerBytes)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{nested, nested + ":4: keys nested 9 deep, over the limit of 8 (refused before parsing)"},
		{large, large + ": 1048597 bytes, over the limit of 1048576 for this file (refused before parsing)"},
	} {
		m, err := ReadMachines(c.path)
		if m != nil || !errors.Is(err, safetoml.ErrLimit) || err.Error() != c.want {
			t.Errorf("ReadMachines = %v, %v\nwant %s", m, err, c.want)
		}
	}
}

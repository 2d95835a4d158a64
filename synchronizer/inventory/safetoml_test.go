package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/safetoml"
)

// Issue 20, finding 8: hardware profiles are synced from the primary; a
// nested one is refused before BurntSushi/toml (quadratic in nesting)
// parses it, naming the file, the line and the limit. A TOML inventory
// (a state file) is bounded the same way.
func TestNestedProfileAndInventoryRefused(t *testing.T) {
	dir := t.TempDir()
	nested := "schema_version = 1\nmachine_id = " + strings.Repeat("{b=", 2000) + "1" + strings.Repeat("}", 2000) + "\n"
	profile := filepath.Join(dir, "mac-02.toml")
	inv := filepath.Join(dir, "inventory.toml")
	for _, p := range []string{profile, inv} {
		if err := os.WriteFile(p, []byte(nested), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ReadProfile(profile); !errors.Is(err, safetoml.ErrLimit) ||
		err.Error() != profile+":2: keys nested 9 deep, over the limit of 8 (refused before parsing)" {
		t.Errorf("ReadProfile = %v", err)
	}
	if _, err := Load(inv); !errors.Is(err, safetoml.ErrLimit) ||
		err.Error() != "load inventory "+inv+": line 2: keys nested 9 deep, over the limit of 8 (refused before parsing)" {
		t.Errorf("Load = %v", err)
	}
	large := filepath.Join(dir, "large.toml")
	if err := os.WriteFile(large, []byte("schema_version = 1\n#"+strings.Repeat("x", safetoml.PeerBytes)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadProfile(large); !errors.Is(err, safetoml.ErrLimit) ||
		err.Error() != large+": 1048597 bytes, over the limit of 1048576 for this file (refused before parsing)" {
		t.Errorf("ReadProfile(large) = %v", err)
	}
}

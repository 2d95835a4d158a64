package stamp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/safetoml"
)

// Issue 20, finding 8: the stamp and cluster.toml are read at boot; a
// nested or oversized file is refused before BurntSushi/toml (quadratic in
// nesting) sees it, with the file, the line and the limit.
func TestReadRefusesNestedAndLarge(t *testing.T) {
	dir := t.TempDir()
	nested := filepath.Join(dir, "nested.toml")
	doc := "schema_version = 1\ncluster_id = \"c\"\nx = " + strings.Repeat("{b=", 2000) + "1" + strings.Repeat("}", 2000) + "\n"
	if err := os.WriteFile(nested, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	large := filepath.Join(dir, "large.toml")
	if err := os.WriteFile(large, []byte("schema_version = 1\n# "+strings.Repeat("x", safetoml.SmallBytes)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{nested, nested + ":3: keys nested 9 deep, over the limit of 8 (refused before parsing)"},
		{large, large + ": 65558 bytes, over the limit of 65536 for this file (refused before parsing)"},
	} {
		if _, err := ReadStamp(c.path); !errors.Is(err, safetoml.ErrLimit) || err.Error() != c.want {
			t.Errorf("ReadStamp = %v\nwant %s", err, c.want)
		}
		if _, err := ReadCluster(c.path); !errors.Is(err, safetoml.ErrLimit) || err.Error() != c.want {
			t.Errorf("ReadCluster = %v\nwant %s", err, c.want)
		}
	}
}

// FuzzStamp: ReadStamp and ReadCluster on any file give a checked value
// or an error naming the file; never a panic.
//
//	go test -run '^$' -fuzz '^FuzzStamp$' -fuzztime 30s ./internal/stamp
func FuzzStamp(f *testing.F) {
	good := "schema_version = 1\ncluster_id = \"c1\"\ncluster_name = \"office\"\ndisk_set = \"d1\"\nrole = \"primary\"\n" +
		"generation = 3\nhome_hardware = \"mac:02:00:00:00:0a:01\"\nother_generation = 2\nwritten = 2026-11-22T01:02:03Z\n"
	for _, s := range []string{
		good,
		"schema_version = 1\ncluster_id = \"c1\"\nnode_name = \"node-p\"\npeer_name = \"node-s\"\npeer_address = \"192.0.2.20:7443\"\n",
		"schema_version = 2\n", "cluster_id = \"c\"\n", "schema_version = 1\ngeneration = 9223372036854775807\n",
		"schema_version = 1\ngeneration = -1\n", "schema_version = \"1\"\n", "schema_version = 1\ncolour = 1\n",
		"schema_version = 1\ncluster_id = \"c\n", "x = {a = {b = {c = {d = {e = {f = {g = {h = 1}}}}}}}}\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, StampFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := ReadStamp(path)
		switch {
		case err != nil && !strings.Contains(err.Error(), path):
			t.Fatalf("ReadStamp error does not name the file: %v", err)
		case err == nil:
			if verr := s.Validate(); verr != nil {
				t.Fatalf("ReadStamp returned a stamp Validate refuses: %v", verr)
			}
		}
		c, err := ReadCluster(path)
		switch {
		case err != nil && !strings.Contains(err.Error(), path):
			t.Fatalf("ReadCluster error does not name the file: %v", err)
		case err == nil:
			if verr := c.Validate(); verr != nil {
				t.Fatalf("ReadCluster returned a state Validate refuses: %v", verr)
			}
		}
	})
}

package stamp

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The reader reads the file again when it was rewritten, and only then.
func TestStampReader(t *testing.T) {
	p := filepath.Join(t.TempDir(), StampFile)
	r := NewStampReader(p)
	if _, err := r.Read(); !errors.Is(err, ErrMissing) {
		t.Fatalf("no file: %v", err)
	}
	s := goodStamp()
	if err := WriteStamp(p, s); err != nil {
		t.Fatal(err)
	}
	first, err := r.Read()
	if err != nil || first.Role != RolePrimary {
		t.Fatalf("%+v, %v", first, err)
	}
	if again, _ := r.Read(); again != first {
		t.Error("the same file was read again")
	}
	s.Role, s.Generation = RoleSecondary, 2
	if err := WriteStamp(p, s); err != nil {
		t.Fatal(err)
	}
	second, err := r.Read()
	if err != nil || second.Role != RoleSecondary || second.Generation != 2 {
		t.Fatalf("after a rewrite: %+v, %v", second, err)
	}
	if err := os.WriteFile(p, []byte("schema_version = 1\nrole = \"bogus\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(); err == nil {
		t.Error("a broken stamp was read as the last good one")
	}
	os.Remove(p)
	if _, err := r.Read(); !errors.Is(err, ErrMissing) {
		t.Errorf("removed: %v", err)
	}
}

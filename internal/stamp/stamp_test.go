package stamp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func goodStamp() *Stamp {
	return &Stamp{ClusterID: "c1", ClusterName: "office", DiskSet: "d1", Role: RolePrimary,
		Generation: 1, HomeHardware: "mac:02:00:00:00:0a:01", Written: time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)}
}

func TestStampRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), StampFile)
	in := goodStamp()
	if err := WriteStamp(p, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadStamp(p)
	if err != nil {
		t.Fatal(err)
	}
	if *out != *in {
		t.Errorf("read %+v, wrote %+v", out, in)
	}
	if out.SchemaVersion != SchemaVersion {
		t.Errorf("schema version %d", out.SchemaVersion)
	}
}

func TestStampErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"newer", "schema_version = 99\ncluster_id = \"c\"\n", "schema version 99 is newer than this sentry knows (1): upgrade sentry"},
		{"noversion", "cluster_id = \"c\"\n", `key "schema_version" is missing`},
		{"corrupt", "schema_version = 1\ncluster_id = \"c\n", "line 2, column"},
		{"unknown", "schema_version = 1\ncluster_id = \"c\"\nrole = \"primary\"\ncolour = 1\n", `unknown key "colour"`},
		{"badrole", "schema_version = 1\ncluster_id = \"c\"\ndisk_set = \"d\"\nrole = \"boss\"\ngeneration = 1\nhome_hardware = \"h\"\n", `key "role" "boss" is neither`},
		{"nogen", "schema_version = 1\ncluster_id = \"c\"\ndisk_set = \"d\"\nrole = \"secondary\"\nhome_hardware = \"h\"\n", `key "generation" must be 1 or more`},
	} {
		p := filepath.Join(dir, tc.name+".toml")
		os.WriteFile(p, []byte(tc.content), 0o644)
		_, err := ReadStamp(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err %v, want it to name %s and say %q", tc.name, err, p, tc.want)
		}
	}
	if _, err := ReadStamp(filepath.Join(dir, "absent.toml")); !errors.Is(err, ErrMissing) {
		t.Errorf("absent stamp: %v, want ErrMissing", err)
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	p := filepath.Join(t.TempDir(), StampFile)
	s := goodStamp()
	s.Role = ""
	if err := WriteStamp(p, s); err == nil {
		t.Fatal("an invalid stamp was written")
	}
	if _, err := os.Stat(p); err == nil {
		t.Error("a file was left by a refused write")
	}
}

func TestClusterRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), ClusterFile)
	in := &Cluster{ClusterID: "c1", ClusterName: "office", NodeName: "node-s", PeerName: "node-p", PeerAddress: "192.0.2.10:7443"}
	if err := WriteCluster(p, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadCluster(p)
	if err != nil || *out != *in {
		t.Fatalf("read %+v, %v; wrote %+v", out, err, in)
	}
	in.PeerAddress = ""
	if err := WriteCluster(p, in); err == nil {
		t.Error("peer name without address accepted")
	}
}

// Issue 20, finding 3: a generation TOML cannot read back (>= 2^63) was
// written, and the next boot found the stamp unreadable. It is refused at
// the write, and the file keeps what it held.
func TestWriteRefusesUnreadableGeneration(t *testing.T) {
	p := filepath.Join(t.TempDir(), StampFile)
	first := goodStamp()
	if err := WriteStamp(p, first); err != nil {
		t.Fatal(err)
	}
	for _, set := range []func(*Stamp){
		func(s *Stamp) { s.OtherGeneration = 1 << 63 },
		func(s *Stamp) { s.Generation = 1 << 63 },
		func(s *Stamp) { s.OtherGeneration = 1<<64 - 1 },
		func(s *Stamp) { s.OtherGeneration = 1<<62 + 1 },
	} {
		s := goodStamp()
		set(s)
		err := WriteStamp(p, s)
		if err == nil || !strings.Contains(err.Error(), "generation") {
			t.Errorf("stamp with generations %d/%d: write %v, want a refusal naming the generation", s.Generation, s.OtherGeneration, err)
		}
		got, rerr := ReadStamp(p)
		if rerr != nil || *got != *first {
			t.Fatalf("after the refused write the stamp reads %+v, %v", got, rerr)
		}
	}
	// The limit itself is written and read back.
	s := goodStamp()
	s.Generation, s.OtherGeneration = 1<<62, 1<<62
	if err := WriteStamp(p, s); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadStamp(p); err != nil || *got != *s {
		t.Fatalf("read %+v, %v", got, err)
	}
}

// A stamp with a generation above the limit (written by hand, or by an
// older sentry) is refused by name at the read.
func TestReadRefusesGenerationAboveLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), StampFile)
	os.WriteFile(p, []byte("schema_version = 1\ncluster_id = \"c\"\ndisk_set = \"d\"\nrole = \"secondary\"\ngeneration = 1\nhome_hardware = \"h\"\nother_generation = 9223372036854775807\n"), 0o644)
	if _, err := ReadStamp(p); err == nil || !strings.Contains(err.Error(), `key "other_generation" 9223372036854775807 is above the limit of 4611686018427387904`) {
		t.Errorf("read: %v", err)
	}
}

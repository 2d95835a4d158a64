// Package stamp reads and writes the two small files that say what a disk
// set is: the disk stamp (stamp.toml: cluster, disk set, role, generation,
// home hardware) and the cluster state (cluster.toml: this node and its peer).
// Both carry a schema version and are written atomically (temp, fsync,
// rename), so a power loss leaves the old or the new file, never half of one.
package stamp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/safetoml"
)

// SchemaVersion is the version of both files that this binary writes.
const SchemaVersion = 1

// File names in the state folder.
const (
	StampFile   = "stamp.toml"
	ClusterFile = "cluster.toml"
)

// Roles of a disk set.
const (
	RolePrimary   = "primary"
	RoleSecondary = "secondary"
)

// ErrMissing is returned when the file does not exist.
var ErrMissing = errors.New("missing")

// MaxGeneration bounds every generation a stamp holds, this disk set's and
// the other's. A generation counts role changes, so a real one stays small;
// the bound is far below 2^63, the first value TOML (whose integers are
// int64) cannot read back, and leaves room to add one without overflow.
// A stamp with a generation above it is neither written nor read.
const MaxGeneration uint64 = 1 << 62

// Stamp is the disk stamp.
type Stamp struct {
	SchemaVersion int    `toml:"schema_version" json:"schema_version"`
	ClusterID     string `toml:"cluster_id" json:"cluster_id"`
	ClusterName   string `toml:"cluster_name" json:"cluster_name"`
	DiskSet       string `toml:"disk_set" json:"disk_set"`
	Role          string `toml:"role" json:"role"`
	// Generation is raised on every role change of this disk set.
	Generation uint64 `toml:"generation" json:"generation"`
	// HomeHardware is the identity of the machine this set was made on.
	HomeHardware string `toml:"home_hardware" json:"home_hardware"`
	// OtherGeneration is the last generation seen of the other disk set.
	OtherGeneration uint64    `toml:"other_generation" json:"other_generation"`
	Written         time.Time `toml:"written" json:"written"`
}

// Validate checks a stamp's fields.
func (s *Stamp) Validate() error {
	switch {
	case s.ClusterID == "":
		return fieldErr("cluster_id", "is empty")
	case s.DiskSet == "":
		return fieldErr("disk_set", "is empty")
	case s.Role != RolePrimary && s.Role != RoleSecondary:
		return fieldErr("role", fmt.Sprintf("%q is neither %q nor %q", s.Role, RolePrimary, RoleSecondary))
	case s.Generation == 0:
		return fieldErr("generation", "must be 1 or more")
	case s.Generation > MaxGeneration:
		return fieldErr("generation", fmt.Sprintf("%d is above the limit of %d", s.Generation, MaxGeneration))
	case s.OtherGeneration > MaxGeneration:
		return fieldErr("other_generation", fmt.Sprintf("%d is above the limit of %d", s.OtherGeneration, MaxGeneration))
	case s.HomeHardware == "":
		return fieldErr("home_hardware", "is empty")
	}
	return nil
}

// Cluster is this node's view of the cluster.
type Cluster struct {
	SchemaVersion int    `toml:"schema_version" json:"schema_version"`
	ClusterID     string `toml:"cluster_id" json:"cluster_id"`
	ClusterName   string `toml:"cluster_name" json:"cluster_name"`
	NodeName      string `toml:"node_name" json:"node_name"`
	// PeerName and PeerAddress are empty on a primary nobody joined yet.
	PeerName    string `toml:"peer_name" json:"peer_name"`
	PeerAddress string `toml:"peer_address" json:"peer_address"`
}

// Validate checks the cluster state's fields.
func (c *Cluster) Validate() error {
	switch {
	case c.ClusterID == "":
		return fieldErr("cluster_id", "is empty")
	case c.NodeName == "":
		return fieldErr("node_name", "is empty")
	case (c.PeerName == "") != (c.PeerAddress == ""):
		return fieldErr("peer_address", "peer_name and peer_address must be set together")
	}
	return nil
}

type fieldError struct{ key, msg string }

func (e *fieldError) Error() string { return fmt.Sprintf("key %q %s", e.key, e.msg) }

func fieldErr(key, msg string) error { return &fieldError{key, msg} }

// ReadStamp reads and checks a disk stamp.
func ReadStamp(path string) (*Stamp, error) {
	var s Stamp
	if err := read(path, &s); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("disk stamp %s: %w", path, err)
	}
	return &s, nil
}

// WriteStamp writes a disk stamp atomically.
func WriteStamp(path string, s *Stamp) error {
	s.SchemaVersion = SchemaVersion
	if err := s.Validate(); err != nil {
		return fmt.Errorf("disk stamp %s: %w", path, err)
	}
	return write(path, s, "# Sentry disk stamp: what this disk set is. Written by sentry; do not edit.\n", func(text string) error {
		// What the next boot will read: the generations as written.
		var back Stamp
		if _, err := toml.Decode(text, &back); err != nil {
			return err
		}
		if back.Generation != s.Generation || back.OtherGeneration != s.OtherGeneration {
			return fmt.Errorf("generations %d and %d would read back as %d and %d", s.Generation, s.OtherGeneration, back.Generation, back.OtherGeneration)
		}
		return nil
	})
}

// ReadCluster reads and checks the cluster state.
func ReadCluster(path string) (*Cluster, error) {
	var c Cluster
	if err := read(path, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("cluster state %s: %w", path, err)
	}
	return &c, nil
}

// WriteCluster writes the cluster state atomically.
func WriteCluster(path string, c *Cluster) error {
	c.SchemaVersion = SchemaVersion
	if err := c.Validate(); err != nil {
		return fmt.Errorf("cluster state %s: %w", path, err)
	}
	return write(path, c, "# Sentry cluster state of this node. Written by sentry; do not edit.\n", func(text string) error {
		var back Cluster
		_, err := toml.Decode(text, &back)
		return err
	})
}

func read(path string, v any) error {
	// Both files are read at boot; bounded before parsing (internal/safetoml).
	b, err := safetoml.ReadFile(path, safetoml.Small())
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, ErrMissing)
	}
	if err != nil {
		return err
	}
	if err := safetoml.Check(path, b, safetoml.Small()); err != nil {
		return err
	}
	// The schema version first, alone, so that a newer file is refused by
	// name rather than by an unknown key.
	var head struct {
		SchemaVersion int `toml:"schema_version"`
	}
	if _, err := toml.Decode(string(b), &head); err != nil {
		return fmt.Errorf("%s: %s", path, tomlMsg(err))
	}
	switch {
	case head.SchemaVersion == 0:
		return fmt.Errorf("%s: key \"schema_version\" is missing", path)
	case head.SchemaVersion > SchemaVersion:
		return fmt.Errorf("%s: schema version %d is newer than this sentry knows (%d): upgrade sentry", path, head.SchemaVersion, SchemaVersion)
	}
	md, err := toml.Decode(string(b), v)
	if err != nil {
		return fmt.Errorf("%s: %s", path, tomlMsg(err))
	}
	if und := md.Undecoded(); len(und) > 0 {
		return fmt.Errorf("%s: unknown key %q", path, und[0].String())
	}
	return nil
}

func tomlMsg(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d, column %d: %s", pe.Position.Line, pe.Position.Col, pe.Message)
	}
	return err.Error()
}

// write encodes v and writes it atomically, once readBack accepts the
// text: a file the next read would refuse is never written, and the old
// one stays.
func write(path string, v any, header string, readBack func(text string) error) error {
	var buf bytes.Buffer
	buf.WriteString(header)
	if err := toml.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	if err := readBack(buf.String()); err != nil {
		return fmt.Errorf("%s: not written, it would not read back: %v", path, err)
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

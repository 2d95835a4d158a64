package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 13, defect 8: an apt sources file that cannot be read is an error
// that names the file and the line, and says it is apt's sources.
func TestReadAptSourcesErrors(t *testing.T) {
	long := "deb http://deb.example.invalid/debian bookworm " + strings.Repeat("x", 2<<20)
	for _, c := range []struct {
		file, text string
		want       string // after the file's path
		corrupt    bool
	}{
		{"sources.list.d/a.list", "# options\ndeb [arch=amd64 http://deb.example.invalid/debian bookworm main\n",
			":2: options not closed with ]", true},
		{"sources.list", "deb http://deb.example.invalid/debian bookworm main\ndeb-src\n",
			`:2: not "deb[-src] [options] <uri> <suite> [component...]": "deb-src"`, true},
		{"sources.list.d/b.sources", "Types: deb\nURIs: http://deb.example.invalid/debian\nSuites: bookworm\n\nTypes: deb\nSuites: bookworm\n",
			":5: stanza needs Types, URIs and Suites", true},
		{"sources.list.d/c.sources", "Types: deb\nnot a field\n",
			`:2: not "Field: value": "not a field"`, true},
		{"sources.list", "# a comment\n\n" + long + "\n",
			":3: bufio.Scanner: token too long", false},
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
		path := filepath.Join(dir, c.file)
		if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		srcs, err := ReadAptSources(dir)
		want := "corrupt apt sources: " + path + c.want
		if !c.corrupt {
			want = "read " + path + c.want
		}
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v (%d sources)\nwant %s", c.file, err, len(srcs), want)
			continue
		}
		if c.corrupt && (!errors.Is(err, ErrCorruptSources) || !errors.Is(err, ErrCorrupt)) {
			t.Errorf("%s: %v is not ErrCorruptSources and ErrCorrupt", c.file, err)
		}
	}

	// sources.list.d that cannot be listed: an error naming it, not no
	// sources.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sources.list.d"), []byte("a file"), 0o644)
	if _, err := ReadAptSources(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "sources.list.d")) {
		t.Errorf("sources.list.d a file: %v", err)
	}
	// No sources at all is no error.
	if srcs, err := ReadAptSources(t.TempDir()); err != nil || len(srcs) != 0 {
		t.Errorf("no sources: %v %v", srcs, err)
	}
}

package unitfile

import (
	"os"
	"strings"
	"testing"
)

// TestOperationsShowsTheUnit keeps docs/operations.md true: its section on
// the agent unit shows the unit as `sentry agent unit` prints it.
func TestOperationsShowsTheUnit(t *testing.T) {
	const doc = "../../../docs/operations.md"
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## The agent unit\n")
	if i < 0 {
		t.Fatalf("%s: no section \"## The agent unit\"", doc)
	}
	s = s[i:]
	start := strings.Index(s, "\n```\n")
	if start < 0 {
		t.Fatalf("%s: the agent unit's section has no code block", doc)
	}
	s = s[start+len("\n```\n"):]
	end := strings.Index(s, "```\n")
	if end < 0 {
		t.Fatalf("%s: the agent unit's code block does not end", doc)
	}
	if got := s[:end]; got != Unit {
		line := 1 + strings.Count(string(b[:len(b)-len(s)]), "\n")
		t.Errorf("%s:%d: the unit shown is not the unit `sentry agent unit` prints; want:\n%s\ngot:\n%s", doc, line, Unit, got)
	}
}

package tomlpos

import (
	"strings"
	"testing"
	"unicode"
)

func TestQuoteAndClean(t *testing.T) {
	for _, c := range []struct{ in, quote, clean string }{
		{"plain", `"plain"`, "plain"},
		{"é and ✓", `"é and ✓"`, "é and ✓"},
		{"esc\x1b[2Jbel\a", `"esc\x1b[2Jbel\a"`, `esc\x1b[2Jbel\a`},
		{"bidi\u202e", `"bidi\u202e"`, `bidi\u202e`},
		{"bad\xffutf8", `"bad\xffutf8"`, `bad\xffutf8`},
		{"nul\x00", `"nul\x00"`, `nul\x00`},
		{strings.Repeat("x", 100), `"` + strings.Repeat("x", 80) + `"… (100 bytes)`, strings.Repeat("x", 80) + "… (100 bytes)"},
		// A long value is cut at the start of a character.
		{strings.Repeat("x", 79) + "éé" + strings.Repeat("y", 30), `"` + strings.Repeat("x", 79) + `"… (113 bytes)`, strings.Repeat("x", 79) + "… (113 bytes)"},
	} {
		if got := Quote(c.in); got != c.quote {
			t.Errorf("Quote(%q) = %s, want %s", c.in, got, c.quote)
		}
		if got := Clean(c.in, MaxShown); got != c.clean {
			t.Errorf("Clean(%q) = %s, want %s", c.in, got, c.clean)
		}
	}
}

func TestContext(t *testing.T) {
	// Tabs expanded, a control character escaped and underlined whole.
	data := []byte("a = 1\n\tb = 2\nc = \"x\x1by\"\n")
	got := Context(data, 3, 7, 1, "control\x07 character")
	want := "toml: error: control\\a character\n\nAt line 3, column 7:\n\n" +
		"      1 | a = 1\n" +
		"      2 |         b = 2\n" +
		"      3 | c = \"x\\x1by\"\n" +
		"                ^^^^\n"
	if got != want {
		t.Errorf("Context:\n%s\nwant:\n%s", got, want)
	}
	// On a long line of escapes, cut around the error, the caret stays
	// under its character.
	line := "k = \"" + strings.Repeat("\x00", 3000) + "!" + strings.Repeat("\x00", 3000) + "\""
	got = Context([]byte(line), 1, 5+3000+1, 1, "here")
	lines := strings.Split(got, "\n")
	src, caret := lines[4], lines[5]
	if len(src) > 2*maxLine || !strings.HasSuffix(src, "…") || !strings.Contains(src, "| …") {
		t.Errorf("long line shown as %q", src)
	}
	at := strings.Index(caret, "^")
	if rs := []rune(src); at < 0 || at >= len(rs) || rs[at] != '!' {
		t.Errorf("caret at %d is not under the '!':\n%s\n%s", at, src, caret)
	}
	for _, r := range got {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Fatalf("%q printed raw", r)
		}
	}
	if Context(data, 9, 1, 1, "x") != "" {
		t.Error("a line past the end has a context")
	}
}

func TestLineCol(t *testing.T) {
	data := []byte("a = 1\nbc = \"\\")
	for off, want := range map[int][2]int{0: {1, 1}, 4: {1, 5}, 6: {2, 1}, 12: {2, 7}, 99: {2, 8}} {
		if l, c := LineCol(data, off); l != want[0] || c != want[1] {
			t.Errorf("LineCol(%d) = %d:%d, want %d:%d", off, l, c, want[0], want[1])
		}
	}
}

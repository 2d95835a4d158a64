package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/sentryha/sentry/internal/safetoml"
)

// Issue 20, finding 8: sentry.toml is read at boot; a nested document is
// refused before BurntSushi/toml, which is quadratic in nesting, sees it.
func TestNestedRefusedBeforeParsing(t *testing.T) {
	// 16 KB of nested inline tables: 11 s and 725 MB in the parser alone.
	doc := "[node]\nname = \"p\"\nx = " + strings.Repeat("{b=", 4000) + "1" + strings.Repeat("}", 4000) + "\n"
	_, err := Parse("sentry.toml", []byte(doc))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse = %v, want an *Error wrapping ErrInvalid", err)
	}
	if want := "sentry.toml:3:1: keys nested 9 deep, over the limit of 8 (refused before parsing)"; err.Error() != want {
		t.Errorf("message\n got: %s\nwant: %s", err, want)
	}

	path := filepath.Join(t.TempDir(), "sentry.toml")
	if err := os.WriteFile(path, []byte("# "+strings.Repeat("x", safetoml.SmallBytes)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) ||
		err.Error() != path+": 65539 bytes, over the limit of 65536 for this file (refused before parsing)" {
		t.Errorf("Load of a 64 KiB file = %v", err)
	}
}

// Low of issue 20: `sentry config check` echoed raw binary and 10 MB values
// to the terminal. Every value an error quotes is escaped and cut, and so
// are the lines of a syntax error's context.
func TestErrorsShowValuesSafely(t *testing.T) {
	long := strings.Repeat("x", 60000)
	cases := map[string]struct {
		doc  string
		want []string // in the message or the context
	}{
		"a long value": {"[node]\nname = \"" + long + "\"\n",
			[]string{`key "node.name": "` + strings.Repeat("x", 80) + `"… (60000 bytes) is not a valid name`}},
		"escapes in a value": {"[node]\nname = \"ab\\u001b[2J\\u0007\\u202e\"\n",
			[]string{`"ab\x1b[2J\a\u202e" is not a valid name`}},
		"escapes in a key": {"[agent]\n\"lis\\u001bten\" = 1\n",
			[]string{`key "agent.\"lis\\u001bten\"": unknown key`}},
		"a long duration": {"[verifier]\ninterval = \"" + long + "\"\n",
			[]string{`invalid duration "` + strings.Repeat("x", 80) + `"… (60000 bytes)`}},
		"a long host": {"[peer]\naddress = \"" + long + "\"\n",
			[]string{`"… (60000 bytes) is not host:port`}},
		"control characters in the file": {"[node]\nname = \"a\x1b]0;pwned\x07b\"\n",
			[]string{`name = "a\x1b]0;pwned\ab"`, "At line 2, column"}},
		"a long line with binary": {"[node]\nname = 1" + strings.Repeat("\x00", 50000) + "\n",
			[]string{`name = 1\x00\x00`, "…\n"}},
		"a duplicate key with escapes": {"\"\\u001b[2J\" = 1\n\"\\u001b[2J\" = 2\n",
			[]string{`Key '"\u001b[2J"' has already been defined.`}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("sentry.toml", []byte(c.doc))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v, want an *Error", err)
			}
			msg := err.Error()
			if len(msg) > 600 {
				t.Errorf("message of %d bytes: %.300s...", len(msg), msg)
			}
			if len(e.Context) > 2000 {
				t.Errorf("context of %d bytes: %.300s...", len(e.Context), e.Context)
			}
			for _, s := range []string{msg, e.Context} {
				for _, r := range s {
					if r != '\n' && !unicode.IsPrint(r) {
						t.Errorf("%q is printed raw in:\n%.500s", r, s)
						break
					}
				}
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) && !strings.Contains(e.Context, w) {
					t.Errorf("%q is in neither\n%.500s\nnor\n%.500s", w, msg, e.Context)
				}
			}
		})
	}
}

// FuzzConfig: any document either gives a configuration that validates or
// an *Error naming the file (and a line, unless the key is absent from the
// file), safe to print and of bounded length; never a panic.
//
//	go test -run '^$' -fuzz '^FuzzConfig$' -fuzztime 30s ./internal/config
func FuzzConfig(f *testing.F) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a configuration that Validate refuses: %v", verr)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse = %T %v, want an *Error wrapping ErrInvalid", err, err)
		}
		msg := err.Error()
		if e.File != "fuzz.toml" || !strings.HasPrefix(msg, "fuzz.toml") {
			t.Fatalf("error does not name the file: %q", msg)
		}
		if e.Line == 0 && e.Key == "" {
			t.Fatalf("error names neither a line nor a key: %q", msg)
		}
		if len(msg) > 1200 || len(e.Context) > 4000 {
			t.Fatalf("error of %d bytes, context of %d: %.300q", len(msg), len(e.Context), msg)
		}
		for _, s := range []string{msg, e.Context} {
			for _, r := range s {
				if r != '\n' && !unicode.IsPrint(r) {
					t.Fatalf("%q printed raw in %q", r, s)
				}
			}
		}
	})
}

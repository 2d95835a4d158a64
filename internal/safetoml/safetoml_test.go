package safetoml

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// nestedInline is the shape of issue 20, finding 8: n inline tables one
// inside the other, 4n+6 bytes. BurntSushi/toml's cost grows with n².
func nestedInline(n int) string {
	return "a = " + strings.Repeat("{b=", n) + "1" + strings.Repeat("}", n) + "\n"
}

// longKey is upstream issue #496's shape: one dotted key of n parts.
func longKey(n int) string { return strings.Repeat("a.", n-1) + "a = 1\n" }

// Documents every preset must pass: every TOML file of the repository,
// and the corners of the syntax where a bracket or a dot is not nesting.
func TestCheckPasses(t *testing.T) {
	docs := map[string]string{
		"brackets in strings":      "a = \"[[[[[[[[[[{{{{{{{{{{\"\nb = '[[[[[[[[[[[[{{{{{{{{'\n",
		"escaped quotes":           "a = \"\\\"[[[[[[[[[[[[\\\\\"\nb = \"\\\\\"\nc = [[[1]]]\n",
		"multi-line basic":         "a = \"\"\"\n[[[[[[[[[[[[[[\n\\\"\"\"[[[[[[[[[[[[\n\"\"\"\nb = 1\n",
		"multi-line quotes at end": "a = \"\"\"x[[[[[[[[[[\"\"\"\"\"\nb = '''y{{{{{{{{{{{{{{{{'''''\n",
		"multi-line literal":       "a = '''\n\\'[[[[[[[[[[[[[[\n'''\n",
		"comments":                 "# [[[[[[[[[[[[[[[[ {{{{{{{{{{{{\na = 1 # [[[[[[[[[[[[[[[[[\n[t] # ]]]]]]]]]]]]\n",
		"dots in quoted keys":      "\"a.b.c.d.e.f.g.h.i.j\" = 1\n['x.y.z.w.v.u.t.s.r.q']\n",
		"depth 8 exactly":          "[a.b.c]\nd.e.f.g.h = 1\n",
		"inline depth 8":           "a = {b = {c = {d = {e = {f = {g = {h = 1}}}}}}}\n",
		"array depth 8":            "a = [[[[[[[1]]]]]]]\n",
		"toml 1.1 inline":          "a = {\n  b = 1, # [[[[[[[[[[[[\n  c = {d = 2},\n}\n",
		"array of tables":          "[[a.b]]\nc = 1\n[[a.b]]\nc = 2\n[a.b.d]\ne = 1\n",
		"dates and numbers":        "a = 1979-05-27T07:32:00Z\nb = 1e10\nc = 0x1f\nd = [1.5, -2, inf, nan]\n",
		"empty":                    "",
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			if err := Check("t.toml", []byte(doc), Small()); err != nil {
				t.Fatalf("Check: %v", err)
			}
			var v map[string]any
			if _, err := Decode("t.toml", []byte(doc), &v, Small()); err != nil {
				t.Fatalf("Decode of a valid document: %v", err)
			}
		})
	}
	var files []string
	for _, g := range []string{"../../*/testdata/*.toml", "../../*/*/testdata/*.toml", "../../*/testdata/*/*.toml", "../../modules/builtin/*.toml"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if len(files) < 50 {
		t.Fatalf("only %d of the repository's TOML files found", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(f, data, Small()); err != nil {
			t.Errorf("a file of the repository is refused: %v", err)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	small := Limits{MaxBytes: 1000, MaxDepth: 8, MaxKeys: 100}
	cases := []struct {
		name  string
		doc   string
		limit string
		line  int
		got   int64
	}{
		{"header", "a = 1\n[a.b.c.d.e.f.g.h.i]\n", LimitDepth, 2, 9},
		{"array header", "[[a.b.c.d.e.f.g.h.i]]\n", LimitDepth, 1, 9},
		{"dotted key under a header", "[a.b.c]\nx = 1\nd.e.f.g.h.i = 1\n", LimitDepth, 3, 9},
		{"quoted parts", "\"a\".'b'.c . d.e.f.g.h.i = 1\n", LimitDepth, 1, 9},
		{"inline tables", "a = {b = {c = {d = {e = {f = {g = {h = {i = 1}}}}}}}}\n", LimitDepth, 1, 9},
		{"arrays", "a = [[[[[[[[1]]]]]]]]\n", LimitDepth, 1, 9},
		{"array of inline tables", "w.x.y = [{a = [{b = [{c = 1}]}]}]\n", LimitDepth, 1, 9},
		{"after a multi-line string", "s = \"\"\"\n{{{{\n\"\"\"\nt = '''\n'''\n[a.b.c.d.e.f.g.h.i]\n", LimitDepth, 6, 9},
		{"unterminated string ends at its line", "s = \"[[[[\nt = [[[[[[[[[1]]]]]]]]]\n", LimitDepth, 2, 9},
		{"keys", strings.Repeat("k = 1\n", 101), LimitKeys, 101, 101},
		{"keys weighted by depth", "[a.b.c]\n" + strings.Repeat("d = 1\n", 30), LimitKeys, 26, 103},
		{"size", strings.Repeat("#", 1001), LimitSize, 0, 1001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check("t.toml", []byte(c.doc), small)
			var le *Error
			if !errors.As(err, &le) || !errors.Is(err, ErrLimit) {
				t.Fatalf("Check = %v, want an *Error", err)
			}
			if le.Limit != c.limit || le.Line != c.line || le.Got != c.got || le.File != "t.toml" {
				t.Errorf("refused %+v, want limit %s at line %d, got %d", *le, c.limit, c.line, c.got)
			}
			want := fmt.Sprintf("t.toml:%d: ", c.line)
			if c.line == 0 {
				want = "t.toml: "
			}
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprint(le.Max)) {
				t.Errorf("message %q does not start with %q and name the limit %d", err, want, le.Max)
			}
			var v map[string]any
			if _, err := Decode("t.toml", []byte(c.doc), &v, small); !errors.Is(err, ErrLimit) {
				t.Errorf("Decode = %v, want the check's refusal", err)
			}
		})
	}
	err := Check("", []byte("[a.b.c.d.e.f.g.h.i]"), Small())
	if err == nil || err.Error() != "line 1: keys nested 9 deep, over the limit of 8 (refused before parsing)" {
		t.Errorf("without a file name: %v", err)
	}
}

// Issue 20, finding 8: BurntSushi/toml is quadratic in nesting. The
// documents of the issue are refused at once, before the parser sees them;
// what the parser alone costs is logged on smaller ones (the benchmarks
// below measure it properly).
func TestQuadraticRefused(t *testing.T) {
	for name, doc := range map[string]string{
		"16 KB of nested inline tables (the issue's 725 MB, 11 s)": nestedInline(4000),
		"200 KB of nested inline tables (the issue's 24 GB)":       nestedInline(50000),
		"a key of 30,000 parts (upstream #496's 15 GB)":            longKey(30000),
		"a table header of 30,000 parts":                           "[" + strings.TrimSuffix(longKey(30000), " = 1\n") + "]\n",
	} {
		for _, lim := range []Limits{Small(), Peer(), Large()} {
			start := time.Now()
			var v map[string]any
			_, err := Decode("big.toml", []byte(doc), &v, lim)
			var le *Error
			switch {
			case !errors.As(err, &le):
				t.Fatalf("%s: Decode = %v, want refused", name, err)
			case len(doc) > lim.MaxBytes && le.Limit != LimitSize,
				len(doc) <= lim.MaxBytes && (le.Limit != LimitDepth || le.Line != 1):
				t.Fatalf("%s: Decode = %v, want refused for its size over %d bytes, else its depth at line 1", name, err, lim.MaxBytes)
			}
			t.Logf("%s (%d bytes): refused in %v: %v", name, len(doc), time.Since(start), err)
		}
	}
	// The raw parser on the same shape, smaller: twice the nesting costs
	// about four times the memory.
	for _, n := range []int{250, 500} {
		doc := nestedInline(n)
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		start := time.Now()
		var v map[string]any
		if _, err := toml.Decode(doc, &v); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		runtime.ReadMemStats(&m1)
		t.Logf("raw parser, %d nested inline tables (%d bytes): %v, %.1f MB allocated", n, len(doc), d, float64(m1.TotalAlloc-m0.TotalAlloc)/1e6)
	}
}

// The parser alone on the shape: allocations grow with n².
//
//	go test -run '^$' -bench Raw -benchmem ./internal/safetoml
func BenchmarkRawNestedInline(b *testing.B) {
	for _, n := range []int{125, 250, 500, 1000} {
		doc := nestedInline(n)
		b.Run(fmt.Sprintf("n=%d,%dB", n, len(doc)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var v map[string]any
				if _, err := toml.Decode(doc, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The check on a document at the Peer limit: a linear scan.
func BenchmarkCheck(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < PeerBytes-200; i++ {
		fmt.Fprintf(&sb, "[[entry]]\nname = \"file%d.conf\"\ntype = \"file\"\nmode = \"0644\"\n# a [comment]\nowner = 'root'\n\n", i)
	}
	doc := []byte(sb.String())
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if err := Check("", doc, Peer()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{MaxBytes: 10, MaxDepth: 8}
	ok := filepath.Join(dir, "ok.toml")
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(ok, []byte("a = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, []byte("a = 12345678\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(ok, lim); err != nil || string(b) != "a = 1\n" {
		t.Errorf("ReadFile(ok) = %q, %v", b, err)
	}
	_, err := ReadFile(big, lim)
	var le *Error
	if !errors.As(err, &le) || le.Limit != LimitSize || le.Got != 13 || !strings.HasPrefix(err.Error(), big+": 13 bytes, over the limit of 10") {
		t.Errorf("ReadFile(big) = %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "none"), lim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want ErrNotExist", err)
	}
	var v struct{ A int }
	if _, err := DecodeFile(ok, &v, lim); err != nil || v.A != 1 {
		t.Errorf("DecodeFile(ok) = %+v, %v", v, err)
	}
	if _, err := DecodeFile(big, &v, lim); !errors.Is(err, ErrLimit) {
		t.Errorf("DecodeFile(big) = %v", err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("a = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeFile(bad, &v, lim); err == nil || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("DecodeFile(bad) = %v, want the parser's error naming the file", err)
	}
}

// The scan must never see less nesting than the parser builds: whenever a
// document passes Check and parses, no key of the result is deeper than
// the limit. A tight limit makes a miscount easy to find.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"a.b.c = 1\n", "[a.b]\nc = 1\n", "a = {b = {c = 1}}\n", "a = [[1]]\n", "[[a]]\n[a.b]\nc = 1\n",
		"s = \"\"\"\n[x.y.z.w]\n\"\"\"\n", "s = '''\n'''''\n[a.b.c.d]\n", "\"a.b.c.d\" = 1\n", "a = {\nb.c.d = 1,\n}\n",
		"a = \"\\\"\" # \"\n[b.c.d.e]\n", "a = [{b = 1}, {c.d = 2}]\n",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBytes: 4096, MaxDepth: 3, MaxKeys: 256}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check("f.toml", data, lim)
		if err != nil {
			var le *Error
			if !errors.As(err, &le) || le.File != "f.toml" || (le.Limit != LimitSize && le.Line < 1) {
				t.Fatalf("Check = %#v", err)
			}
			return
		}
		var v map[string]any
		if _, err := toml.Decode(string(data), &v); err != nil {
			return
		}
		if d := keyDepth(v); d > lim.MaxDepth {
			t.Fatalf("the check passed a document whose keys are %d deep (limit %d):\n%s", d, lim.MaxDepth, data)
		}
	})
}

// keyDepth is the longest chain of keys in v (arrays add nothing).
func keyDepth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, 1+keyDepth(e))
		}
	case []map[string]any:
		for _, e := range x {
			d = max(d, keyDepth(e))
		}
	case []any:
		for _, e := range x {
			d = max(d, keyDepth(e))
		}
	}
	return d
}

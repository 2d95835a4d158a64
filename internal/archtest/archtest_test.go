package archtest

import (
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Limits of issue 14 (docs: shared/notes/agent-split.md).
const (
	agentDir     = "internal/agent"
	maxMethods   = 30
	maxWiringLOC = 1500
)

// sharedAgentPkgs are the packages under internal/agent that are not
// components: any component may import them.
var sharedAgentPkgs = []string{"api"}

// pendingIssue14 listed the offenders the tree had when these checks were
// written, while the agent split (issue 14) was in progress; it shrank to
// nothing as the work landed. A new offender fails the tests; so would a
// listed one that no longer offends.
var pendingIssue14 = map[string]bool{}

func fixture(t *testing.T, name string) Module {
	t.Helper()
	m, err := FindModule(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != "example.com/fix" {
		t.Fatalf("fixture %s: module %q", name, m.Path)
	}
	return m
}

func realModule(t *testing.T) Module {
	t.Helper()
	m, err := FindModule(".")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkPending compares the offenders of one check (keys with their prefix)
// against pendingIssue14 and fails on a new offender or on a listed one that
// is gone.
func checkPending(t *testing.T, prefix string, found map[string]string) {
	t.Helper()
	var news, gone, pending []string
	for k, msg := range found {
		if pendingIssue14[prefix+k] {
			pending = append(pending, msg)
		} else {
			news = append(news, fmt.Sprintf("%s\n\t(key %q)", msg, prefix+k))
		}
	}
	for k := range pendingIssue14 {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			if _, ok := found[rest]; !ok {
				gone = append(gone, k)
			}
		}
	}
	sort.Strings(news)
	sort.Strings(gone)
	sort.Strings(pending)
	for _, p := range pending {
		t.Logf("pending (issue 14): %s", p)
	}
	for _, n := range news {
		t.Errorf("%s", n)
	}
	for _, g := range gone {
		t.Errorf("%q is listed in pendingIssue14 but no longer offends: delete it from the list", g)
	}
}

// ---------------------------------------------------------------------------
// a. Component imports

func TestComponentImportsFixture(t *testing.T) {
	m := fixture(t, "imports")
	got, err := ComponentImports(m, agentDir, sharedAgentPkgs...)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, v := range got {
		s = append(s, v.String())
	}
	want := []string{
		"example.com/fix/internal/agent/a imports example.com/fix/internal/agent/b (internal/agent/a/a.go)",
		"example.com/fix/internal/agent/api imports example.com/fix/internal/agent/c (internal/agent/api/api_test.go)",
		"example.com/fix/internal/agent/c/sub imports example.com/fix/internal/agent/a/deeper (internal/agent/c/sub/sub.go)",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(s, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestComponentImports(t *testing.T) {
	m := realModule(t)
	got, err := ComponentImports(m, agentDir, sharedAgentPkgs...)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, v := range got {
		found[v.Importer+" -> "+v.Imported] = "component " + v.String() + ": only the wiring (internal/agent) may import a component"
	}
	checkPending(t, "imports: ", found)
}

// ---------------------------------------------------------------------------
// b. Exported package variables assigned by tests

func TestVarAssignmentsFixture(t *testing.T) {
	m := fixture(t, "vars")
	got, err := TestVarAssignments(m)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, a := range got {
		s = append(s, a.String())
	}
	want := []string{
		"p/p_test.go:6: = p.X",
		"p/p_test.go:8: ++ p.X",
		"p/p_test.go:14: = p.V",
		"q/q_test.go:12: = p.Y",
		"q/q_test.go:13: & p.X",
		"q/q_test.go:14: = p.M",
		"q/q_test.go:15: = p.X",
		"q/q_test.go:16: += p.X",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(s, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestNoTestAssignsExportedVar(t *testing.T) {
	m := realModule(t)
	got, err := TestVarAssignments(m)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, a := range got {
		k := a.Key()
		if prev, ok := found[k]; ok {
			found[k] = prev + fmt.Sprintf(", %d", a.Line)
			continue
		}
		found[k] = fmt.Sprintf("test writes exported package variable %s.%s (%s): make it an option or a field; lines %s:%d",
			a.Pkg, a.Name, a.How, a.File, a.Line)
	}
	checkPending(t, "testvar: ", found)
}

// ---------------------------------------------------------------------------
// c. Methods per type

func TestMethodsOverFixture(t *testing.T) {
	m := fixture(t, "methods")
	got, err := MethodsOver(m, 2)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, c := range got {
		s = append(s, c.String())
	}
	want := []string{"t.Big has 3 methods", "t.G has 3 methods"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %q, want %q", s, want)
	}
}

func TestMethodsPerType(t *testing.T) {
	m := realModule(t)
	got, err := MethodsOver(m, maxMethods)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, c := range got {
		found[c.Key()] = fmt.Sprintf("type %s has %d methods, more than %d", c.Key(), c.Count, maxMethods)
	}
	checkPending(t, "methods: ", found)
}

// ---------------------------------------------------------------------------
// d. Wiring size

func TestLinesFixture(t *testing.T) {
	m := fixture(t, "lines")
	n, err := Lines(m, agentDir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 { // a.go and b.go 3 lines each; tests and sub/ not counted
		t.Errorf("Lines = %d, want 6", n)
	}
}

func TestWiringSize(t *testing.T) {
	m := realModule(t)
	n, err := Lines(m, agentDir)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	if n >= maxWiringLOC {
		found[agentDir] = fmt.Sprintf("%s has %d non-test lines, want under %d: move code into its components", agentDir, n, maxWiringLOC)
	} else {
		t.Logf("%s: %d non-test lines", agentDir, n)
	}
	checkPending(t, "wiring: ", found)
}

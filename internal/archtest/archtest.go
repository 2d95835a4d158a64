// Package archtest holds the architecture checks of issue 14: the agent's
// component packages stay apart, tests do not reassign exported package
// variables, no type grows past a method budget, and the agent's wiring stays
// small. Every check reads source with go/parser from a module root, so the
// tests are hermetic: no network, no build cache, no `go list`.
//
// Each check is a function over a tree, tested on fixture trees under
// testdata; archtest_test.go runs them on the real module.
package archtest

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Module is a Go module found on disk.
type Module struct {
	Root string // directory holding go.mod
	Path string // module path from go.mod
}

// FindModule walks up from dir to the first go.mod and reads its module path.
func FindModule(dir string) (Module, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Module{}, err
	}
	for {
		p, err := modulePath(filepath.Join(dir, "go.mod"))
		if err == nil {
			return Module{Root: dir, Path: p}, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return Module{}, err
		}
		up := filepath.Dir(dir)
		if up == dir {
			return Module{}, fmt.Errorf("no go.mod above %s", dir)
		}
		dir = up
	}
}

func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			p := strings.TrimSpace(rest)
			if uq, err := strconv.Unquote(p); err == nil {
				p = uq
			}
			if p != "" {
				return p, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no module line", gomod)
}

// file is one parsed Go source file of the module.
type file struct {
	rel  string // slash path relative to the module root
	dir  string // slash directory relative to the module root ("." for the root)
	test bool   // name ends in _test.go
	ast  *ast.File
}

// parseTree parses every .go file under root/sub, skipping testdata, vendor
// and directories whose names start with "." or "_" (as the go tool does),
// and nested modules.
func parseTree(fset *token.FileSet, root, sub string) ([]file, error) {
	var files []file
	start := filepath.Join(root, filepath.FromSlash(sub))
	err := filepath.WalkDir(start, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != start && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if p != root {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		files = append(files, file{rel: rel, dir: path.Dir(rel), test: strings.HasSuffix(name, "_test.go"), ast: f})
		return nil
	})
	return files, err
}

func (m Module) importPath(dir string) string {
	if dir == "." {
		return m.Path
	}
	return m.Path + "/" + dir
}

// relDir maps an import path inside the module to its slash directory, or
// reports false for a path outside the module.
func (m Module) relDir(importPath string) (string, bool) {
	if importPath == m.Path {
		return ".", true
	}
	if rest, ok := strings.CutPrefix(importPath, m.Path+"/"); ok {
		return rest, true
	}
	return "", false
}

// ---------------------------------------------------------------------------
// a. Component imports

// ImportViolation is a component package importing another component.
type ImportViolation struct {
	File     string // slash path of the importing file
	Importer string // import path of the importing package
	Imported string // import path it imports
}

func (v ImportViolation) String() string {
	return fmt.Sprintf("%s imports %s (%s)", v.Importer, v.Imported, v.File)
}

// ComponentImports checks that the component packages, every direct
// subdirectory of parent (a slash path relative to the module root, e.g.
// "internal/agent") holding Go files, never import one another. A component
// may import the shared packages named in shared (directory names under
// parent, e.g. "api"), which are not components themselves and import no
// component. A component's subpackages count as the component. Test files
// count too.
func ComponentImports(m Module, parent string, shared ...string) ([]ImportViolation, error) {
	fset := token.NewFileSet()
	files, err := parseTree(fset, m.Root, parent)
	if err != nil {
		return nil, err
	}
	isShared := map[string]bool{}
	for _, s := range shared {
		isShared[s] = true
	}
	// component returns the component directory name for a slash dir under
	// parent, or "" for parent itself.
	component := func(dir string) string {
		rest, ok := strings.CutPrefix(dir, parent+"/")
		if !ok {
			return ""
		}
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	var out []ImportViolation
	seen := map[string]bool{}
	for _, f := range files {
		from := component(f.dir)
		if from == "" {
			continue
		}
		for _, imp := range f.ast.Imports {
			ip, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				continue
			}
			dir, ok := m.relDir(ip)
			if !ok {
				continue
			}
			// A shared package imports no component either: through it,
			// a component would depend on another.
			to := component(dir)
			if to == "" || to == from || isShared[to] {
				continue
			}
			v := ImportViolation{File: f.rel, Importer: m.importPath(f.dir), Imported: ip}
			if k := v.Importer + " " + v.Imported; !seen[k] {
				seen[k] = true
				out = append(out, v)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// ---------------------------------------------------------------------------
// b. Exported package variables assigned by tests

// VarAssignment is a test writing to an exported package-level variable.
type VarAssignment struct {
	File string // slash path of the test file
	Line int
	Pkg  string // slash directory of the package declaring the variable
	Name string // the variable
	How  string // "=", "+=", "++", "&" ...
}

func (a VarAssignment) String() string {
	return fmt.Sprintf("%s:%d: %s %s.%s", a.File, a.Line, a.How, a.Pkg, a.Name)
}

// Key identifies the finding without its line number: test file and variable.
func (a VarAssignment) Key() string {
	return a.File + ": " + a.Pkg + "." + a.Name
}

// TestVarAssignments scans every _test.go file of the module for a statement
// that writes to an exported package-level variable declared in the non-test
// files of a module package: an assignment (=, op=, ++, --, a range with =)
// whose left side is, or is an element or field of, such a variable, either
// unqualified in a test of the same package or as pkg.Var, and any &Var
// (taking its address to write through it, e.g. a save/restore helper).
//
// Names are resolved with the parser's scopes: an unqualified identifier
// refers to the package variable only when nothing in the file (a local, a
// parameter, a file-level declaration) declares it.
func TestVarAssignments(m Module) ([]VarAssignment, error) {
	fset := token.NewFileSet()
	files, err := parseTree(fset, m.Root, ".")
	if err != nil {
		return nil, err
	}
	// Exported package-level vars and package names, by slash directory.
	vars := map[string]map[string]bool{}
	names := map[string]string{}
	for _, f := range files {
		if f.test {
			continue
		}
		names[f.dir] = f.ast.Name.Name
		for _, d := range f.ast.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if n.IsExported() {
						if vars[f.dir] == nil {
							vars[f.dir] = map[string]bool{}
						}
						vars[f.dir][n.Name] = true
					}
				}
			}
		}
	}
	var out []VarAssignment
	for _, f := range files {
		if !f.test {
			continue
		}
		out = append(out, scanTestFile(fset, m, f, vars, names)...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out, nil
}

func scanTestFile(fset *token.FileSet, m Module, f file, vars map[string]map[string]bool, names map[string]string) []VarAssignment {
	// Import names of the file that refer to module packages.
	imports := map[string]string{} // local name -> slash dir
	for _, imp := range f.ast.Imports {
		ip, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			continue
		}
		dir, ok := m.relDir(ip)
		if !ok {
			continue
		}
		name := names[dir]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "" || name == "_" || name == "." {
			continue
		}
		imports[name] = dir
	}
	// An in-package test (package p, not p_test) sees p's variables unqualified.
	own := ""
	if pn, ok := names[f.dir]; ok && pn == f.ast.Name.Name {
		own = f.dir
	}
	// target resolves the variable an expression writes to, if it is an
	// exported package-level variable of a module package.
	var target func(e ast.Expr) (dir, name string, ok bool)
	target = func(e ast.Expr) (string, string, bool) {
		switch x := e.(type) {
		case *ast.ParenExpr:
			return target(x.X)
		case *ast.StarExpr:
			return target(x.X)
		case *ast.UnaryExpr:
			if x.Op == token.AND {
				return target(x.X)
			}
		case *ast.IndexExpr:
			return target(x.X)
		case *ast.IndexListExpr:
			return target(x.X)
		case *ast.SliceExpr:
			return target(x.X)
		case *ast.Ident:
			if own != "" && x.Obj == nil && vars[own][x.Name] {
				return own, x.Name, true
			}
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok && id.Obj == nil {
				if dir, ok := imports[id.Name]; ok {
					if vars[dir][x.Sel.Name] {
						return dir, x.Sel.Name, true
					}
					return "", "", false
				}
			}
			return target(x.X)
		}
		return "", "", false
	}
	var out []VarAssignment
	seen := map[token.Pos]bool{}
	add := func(e ast.Expr, how string) {
		dir, name, ok := target(e)
		if !ok {
			return
		}
		// *&pkg.X = v is one write: mark the nodes on the way down so the
		// inner &pkg.X is not reported again.
		if seen[e.Pos()] {
			return
		}
		for x := e; x != nil; {
			seen[x.Pos()] = true
			switch y := x.(type) {
			case *ast.StarExpr:
				x = y.X
			case *ast.ParenExpr:
				x = y.X
			case *ast.UnaryExpr:
				x = y.X
			default:
				x = nil
			}
		}
		out = append(out, VarAssignment{File: f.rel, Line: fset.Position(e.Pos()).Line, Pkg: dir, Name: name, How: how})
	}
	ast.Inspect(f.ast, func(n ast.Node) bool {
		switch s := n.(type) {
		case *ast.AssignStmt:
			if s.Tok == token.DEFINE {
				return true
			}
			for _, l := range s.Lhs {
				add(l, s.Tok.String())
			}
		case *ast.IncDecStmt:
			add(s.X, s.Tok.String())
		case *ast.RangeStmt:
			if s.Tok == token.ASSIGN {
				if s.Key != nil {
					add(s.Key, "range =")
				}
				if s.Value != nil {
					add(s.Value, "range =")
				}
			}
		case *ast.UnaryExpr:
			if s.Op == token.AND {
				add(s.X, "&")
				return false // report &pkg.X once, not again inside
			}
		}
		return true
	})
	return out
}

// ---------------------------------------------------------------------------
// c. Methods per type

// MethodCount is a type and the number of methods declared on it.
type MethodCount struct {
	Pkg   string // slash directory
	Type  string
	Count int
}

func (c MethodCount) String() string {
	return fmt.Sprintf("%s.%s has %d methods", c.Pkg, c.Type, c.Count)
}

// Key names the type: package directory and type name.
func (c MethodCount) Key() string { return c.Pkg + "." + c.Type }

// MethodsOver lists every type of the module's non-test code that has more
// than max methods declared on it (value and pointer receivers together).
func MethodsOver(m Module, max int) ([]MethodCount, error) {
	fset := token.NewFileSet()
	files, err := parseTree(fset, m.Root, ".")
	if err != nil {
		return nil, err
	}
	counts := map[[2]string]int{}
	for _, f := range files {
		if f.test {
			continue
		}
		for _, d := range f.ast.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) == 0 {
				continue
			}
			if t := recvType(fd.Recv.List[0].Type); t != "" {
				counts[[2]string{f.dir, t}]++
			}
		}
	}
	var out []MethodCount
	for k, n := range counts {
		if n > max {
			out = append(out, MethodCount{Pkg: k[0], Type: k[1], Count: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

func recvType(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return recvType(x.X)
	case *ast.ParenExpr:
		return recvType(x.X)
	case *ast.IndexExpr:
		return recvType(x.X)
	case *ast.IndexListExpr:
		return recvType(x.X)
	case *ast.Ident:
		return x.Name
	}
	return ""
}

// ---------------------------------------------------------------------------
// d. Wiring size

// Lines counts the lines of the non-test .go files directly in dir (a slash
// path relative to the module root; subdirectories are not counted).
func Lines(m Module, dir string) (int, error) {
	ents, err := os.ReadDir(filepath.Join(m.Root, filepath.FromSlash(dir)))
	if err != nil {
		return 0, err
	}
	total := 0
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.Root, filepath.FromSlash(dir), n))
		if err != nil {
			return 0, err
		}
		total += strings.Count(string(b), "\n")
		if len(b) > 0 && b[len(b)-1] != '\n' {
			total++
		}
	}
	return total, nil
}

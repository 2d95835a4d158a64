package main

import (
	"bufio"
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoLabInSentry: the sentry binary, what an operator installs on a
// server, holds no part of the lab (package lab is sentry-lab's). It walks
// the imports of this package and of every module package it imports, as
// `go list -deps ./sentry` would, from the sources (no network).
func TestNoLabInSentry(t *testing.T) {
	root := ".."
	mod := modulePath(t, filepath.Join(root, "go.mod"))
	forbidden := []string{mod + "/lab", mod + "/cmd"}
	// via is the import that brought each package in, for the message.
	via := map[string]string{mod + "/sentry": ""}
	queue := []string{mod + "/sentry"}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		p, err := build.Default.ImportDir(filepath.Join(root, strings.TrimPrefix(path, mod)), 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range p.Imports {
			if imp != mod && !strings.HasPrefix(imp, mod+"/") {
				continue
			}
			if _, ok := via[imp]; ok {
				continue
			}
			via[imp] = path
			for _, f := range forbidden {
				if imp == f || strings.HasPrefix(imp, f+"/") {
					chain := imp
					for p := path; p != ""; p = via[p] {
						chain = p + " -> " + chain
					}
					t.Errorf("sentry depends on %s: %s", imp, chain)
				}
			}
			queue = append(queue, imp)
		}
	}
	if len(via) < 10 {
		t.Errorf("only %d module packages found under sentry: the walk is broken", len(via))
	}
}

// modulePath is the module line of go.mod.
func modulePath(t *testing.T, gomod string) string {
	t.Helper()
	f, err := os.Open(gomod)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`)
		}
	}
	t.Fatalf("%s: no module line", gomod)
	return ""
}

// Command sentry-deb builds sentry's Debian package (make deb) with nfpm
// as a library: no packaging tool is needed on the host.
//
//	sentry-deb version [-repo DIR]
//	    print the package version of the commit checked out in DIR
//	    (packaging/previous-release; a vX.Y.Z tag on it wins)
//	sentry-deb build -binary PATH -version VERSION [-repo DIR] [-out DIR]
//	    package the binary (built with -X main.version=VERSION) into
//	    DIR/sentry_VERSION_amd64.deb and print its path
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	usage := func() int {
		fmt.Fprintln(stderr, "usage: sentry-deb version [-repo DIR]\n       sentry-deb build -binary PATH -version VERSION [-repo DIR] [-out DIR]")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	fs := flag.NewFlagSet("sentry-deb "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "the repository's top folder")
	switch args[0] {
	case "version":
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
			return usage()
		}
		c, err := VersionOf(*repo)
		if err != nil {
			fmt.Fprintln(stderr, "sentry-deb:", err)
			return 1
		}
		fmt.Fprintln(stdout, c.Version)
		return 0
	case "build":
		binary := fs.String("binary", "", "the sentry binary to package")
		version := fs.String("version", "", "the package version (sentry-deb version)")
		out := fs.String("out", "dist", "folder for the package")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *binary == "" || *version == "" {
			return usage()
		}
		o := Options{Repo: *repo, Binary: *binary, Version: *version, OutDir: *out}
		if c, err := VersionOf(*repo); err == nil {
			o.MTime, o.Commit = c.Time, c.Short
			if c.Version != *version {
				fmt.Fprintf(stderr, "sentry-deb: note: version %s is not this commit's (%s)\n", *version, c.Version)
			}
		}
		p, err := Build(o)
		if err != nil {
			fmt.Fprintln(stderr, "sentry-deb:", err)
			return 1
		}
		fmt.Fprintln(stdout, p)
		return 0
	}
	return usage()
}

package modules

import (
	"embed"
	"io/fs"
	"path"
	"sort"
)

//go:embed builtin/*.toml
var builtinFS embed.FS

// DefaultSelection are the built-ins selected when the selection file says
// nothing of them: the services of the lab and of a typical office server.
// The other built-ins (web-apache2) are there to be selected.
var DefaultSelection = []string{
	"web-nginx", "mail-postfix-dovecot", "db-postgresql", "db-mariadb",
	"file-samba", "file-sftp", "system-base",
}

// Builtins returns the manifests shipped in the binary, by name. Their
// Source is "builtin/NAME.toml".
func Builtins() ([]*Manifest, error) {
	files, err := fs.Glob(builtinFS, "builtin/*.toml")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*Manifest
	for _, f := range files {
		data, err := builtinFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, _, err := Parse(f, data)
		if err != nil {
			return nil, err
		}
		if base := path.Base(f); base != m.Name+".toml" {
			return nil, m.err("name", "built-in %s names module %q; the file must be %s.toml", base, m.Name, m.Name)
		}
		m.Origin = OriginBuiltin
		out = append(out, m)
	}
	return out, nil
}

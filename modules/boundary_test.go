package modules_test

import (
	"slices"
	"testing"

	"github.com/sentryha/sentry/modules"
)

func TestBoundary(t *testing.T) {
	opts := modules.OptionsAt(t.TempDir())
	b, err := modules.BuiltinBoundary(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/nginx", "/etc/nginx/sites-enabled/default", "/etc/dovecot/conf.d/10-mail.conf", opts.SelectionFile, opts.InstallDir + "/web-nginx/1.1.0.toml"} {
		if !b.Allows(p) {
			t.Errorf("the built-in boundary does not allow %s", p)
		}
	}
	for _, p := range []string{"/etc/cron.d", "/etc/nginxx", "/etc", "/etc/sentry-web-extra/site.conf"} {
		if b.Allows(p) {
			t.Errorf("the built-in boundary allows %s", p)
		}
	}
	want := modules.Boundary{Roots: []string{"/etc/nginx", "/etc/cron.d", "/etc/sentry-web-extra"}, Executables: []string{"/etc/nginx/hook", "/etc/nginx/hook"}}
	beyond := b.Beyond(want)
	if !slices.Equal(beyond.Roots, []string{"/etc/cron.d", "/etc/sentry-web-extra"}) || !slices.Equal(beyond.Executables, []string{"/etc/nginx/hook"}) {
		t.Errorf("beyond: %+v", beyond)
	}
	wider := b.Union(beyond)
	if !wider.Beyond(want).Empty() || !wider.Allows("/etc/cron.d/x") {
		t.Errorf("after approval: %+v", wider.Beyond(want))
	}
}

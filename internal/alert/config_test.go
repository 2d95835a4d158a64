package alert

import (
	"reflect"
	"testing"

	"github.com/sentryha/sentry/internal/config"
)

func TestFromConfig(t *testing.T) {
	def := config.Default()
	if got := PolicyFromConfig(def.Alert); got != DefaultPolicy() {
		t.Errorf("policy of the default [alert] = %+v, want %+v", got, DefaultPolicy())
	}
	if _, on := MailConfigFromConfig(def.Alert.Mail); on {
		t.Error("mail alerts on without a relay")
	}
	cfg, err := config.Load("../config/testdata/good.toml")
	if err != nil {
		t.Fatal(err)
	}
	mc, on := MailConfigFromConfig(cfg.Alert.Mail)
	want := MailConfig{
		Relay: "mail.example.org:587", StartTLS: "opportunistic", Username: "sentry", PasswordFile: "/etc/sentry/smtp-password",
		From: "Sentry <sentry@example.org>", To: []string{"ops@example.org", "oncall@example.org"}, SubjectPrefix: "[office]",
	}
	if !on || !reflect.DeepEqual(mc, want) {
		t.Errorf("MailConfigFromConfig = %+v, %v; want %+v", mc, on, want)
	}
	if p := PolicyFromConfig(cfg.Alert); p.FailAfter != 3 || p.ResolveAfter != 4 || p.Reminder.Hours() != 12 {
		t.Errorf("PolicyFromConfig(good.toml) = %+v", p)
	}
}

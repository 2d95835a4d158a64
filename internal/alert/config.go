package alert

import "github.com/sentryha/sentry/internal/config"

// PolicyFromConfig returns the thresholds of the [alert] table.
func PolicyFromConfig(a config.Alert) Policy {
	return Policy{FailAfter: a.FailAfter, ResolveAfter: a.ResolveAfter, Reminder: a.Reminder.Duration}
}

// MailConfigFromConfig returns the mail settings of the [alert.mail]
// table, and false when mail alerts are off (no relay).
func MailConfigFromConfig(m config.AlertMail) (MailConfig, bool) {
	if m.Relay == "" {
		return MailConfig{}, false
	}
	return MailConfig{
		Relay:         m.Relay,
		StartTLS:      m.StartTLS,
		Username:      m.Username,
		PasswordFile:  m.PasswordFile,
		From:          m.From,
		To:            append([]string(nil), m.To...),
		SubjectPrefix: m.SubjectPrefix,
	}, true
}

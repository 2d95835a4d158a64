package events

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sentryha/sentry/internal/atomicfile"
)

// VersionFile is the file in the state folder that holds the version of
// sentry that last started on this disk set.
const VersionFile = "agent-version"

// Started is the agent-started event of a start of version: its message
// names the version and, when another one ran here before, that one (an
// upgrade or a downgrade: a package installed, or a disk set moved to a
// node with another build). It records version in path for the next start.
// hadState says the state folder held a store before this start: with no
// version recorded (releases up to 0.1.0 did not record it), the message
// says the version before is not known rather than calling this a first
// start. The error is the record's; the message is right either way.
func Started(path, version string, hadState bool) (msg string, fields map[string]string, err error) {
	fields = map[string]string{"version": version}
	b, rerr := os.ReadFile(path)
	before := strings.TrimSpace(string(b))
	switch {
	case rerr == nil && before == version:
		msg = fmt.Sprintf("sentry %s started", version)
	case rerr == nil && before != "":
		fields["previous_version"] = before
		msg = fmt.Sprintf("sentry %s started; sentry %s ran here before", version, before)
	case errors.Is(rerr, os.ErrNotExist) && !hadState:
		msg = fmt.Sprintf("sentry %s started on a new state folder", version)
	default:
		fields["previous_version"] = "unknown"
		msg = fmt.Sprintf("sentry %s started; the version that ran here before is not recorded (sentry 0.1.0 and earlier did not record it)", version)
	}
	if before != version {
		err = atomicfile.Write(path, []byte(version+"\n"), 0o644)
	}
	return msg, fields, err
}

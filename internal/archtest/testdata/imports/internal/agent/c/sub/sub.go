package sub

import _ "example.com/fix/internal/agent/a/deeper"

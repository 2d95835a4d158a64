package b

import _ "example.com/fix/internal/agent/api"

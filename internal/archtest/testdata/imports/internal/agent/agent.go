package agent

import (
	_ "example.com/fix/internal/agent/a"
	_ "example.com/fix/internal/agent/b"
)

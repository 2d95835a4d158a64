package a

import (
	_ "example.com/fix/internal/agent/api"
	_ "example.com/fix/internal/agent/b"
)

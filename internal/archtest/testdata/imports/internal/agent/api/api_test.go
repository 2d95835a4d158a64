package api_test

import (
	_ "example.com/fix/internal/agent/api"
	_ "example.com/fix/internal/agent/c"
)

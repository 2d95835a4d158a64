package agent

import "testing"

func TestA(t *testing.T) {
}

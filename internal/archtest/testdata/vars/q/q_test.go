package q_test

import (
	"testing"

	pp "example.com/fix/p"
)

func save(p *int) func() { v := *p; return func() { *p = v } }

func TestQ(t *testing.T) {
	pp.Y = "t"          // flagged
	defer save(&pp.X)() // flagged
	pp.M["k"] = 1       // flagged
	*&pp.X = 5          // flagged once
	pp.X += 1           // flagged
	_ = pp.X            // a read: fine
}

func shadow(pp struct{ Y string }) {
	pp.Y = "" // a parameter, not the package: fine
}

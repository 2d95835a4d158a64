package p

import "testing"

func TestP(t *testing.T) {
	X = 2 // flagged
	z = 1 // unexported: fine
	X++   // flagged
	{
		X := 3
		X = 4 // a local: fine
		_ = X
	}
	V.F = 1 // flagged: a field of an exported variable
}

func helper(X int) {
	X = 5 // a parameter: fine
}

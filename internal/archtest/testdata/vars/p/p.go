package p

var X = 1

var (
	Y = "s"
	z = 0
	M = map[string]int{}
)

type T struct{ F int }

var V T

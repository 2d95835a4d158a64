package agent

var b = 2

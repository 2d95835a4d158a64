package agent

var a = 1

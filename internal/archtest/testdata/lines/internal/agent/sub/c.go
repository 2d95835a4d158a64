package sub

var c = 3

var d = 4

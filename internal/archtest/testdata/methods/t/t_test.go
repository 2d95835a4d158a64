package t

func (Small) B() {}
func (Small) C() {}
func (Small) D() {}

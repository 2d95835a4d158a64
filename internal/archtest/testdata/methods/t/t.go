package t

type Big struct{}

func (Big) A()  {}
func (*Big) B() {}
func (Big) C()  {}

type Small struct{}

func (Small) A() {}

type G[T any] struct{}

func (G[T]) A()  {}
func (*G[T]) B() {}
func (G[T]) C()  {}

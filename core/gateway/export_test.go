package gateway

// Hooks for the external tests of this package.

// SetOursLimit lowers the bound of the puppet key cache (oursLimit).
func (g *Gateway) SetOursLimit(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.oursLimit = n
}

// OursLen is how many puppet keys the cache holds.
func (g *Gateway) OursLen() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.ours)
}

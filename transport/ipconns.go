package transport

import "sync"

// This file owns the count of anonymous visitors' open sockets per client
// IP address (Config.MaxAnonymousConnsPerIP): anonymous identities cost
// nothing to make, so the bound that matters is the address's.

// ipConns counts sockets per address. It is safe for concurrent use.
type ipConns struct {
	mu    sync.Mutex
	max   int // 0: unlimited
	count map[string]int
}

func newIPConns(max int) *ipConns { return &ipConns{max: max, count: map[string]int{}} }

// acquire counts one more socket of addr, unless addr has max already.
func (c *ipConns) acquire(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.count[addr] >= c.max {
		return false
	}
	c.count[addr]++
	return true
}

// release counts one socket of addr less.
func (c *ipConns) release(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count[addr] <= 1 {
		delete(c.count, addr)
		return
	}
	c.count[addr]--
}

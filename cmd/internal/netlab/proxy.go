package netlab

import (
	"errors"
	"net"
	"strings"
	"sync"
)

// Proxy forwards TCP connections to a service of the host (PostgreSQL,
// etcd) that listens where the lab's namespaces cannot reach it (loopback),
// and can cut one client address off from it. Cut stops forwarding that
// address's bytes, both ways: its connections stay open and new ones are
// accepted, but nothing crosses, as across a silent network fault (its
// client sees timeouts, not errors). Heal lets the held bytes flow again,
// nothing lost, as TCP would after a partition heals.
type Proxy struct {
	ln     net.Listener
	target string
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	gates map[string]*gate // by client IP
	conns map[net.Conn]struct{}
}

// gate is open, or closed until Heal; wait blocks while it is closed.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		if !open {
			g.open = make(chan struct{})
		}
	default:
		if open {
			close(g.open)
		}
	}
}

// wait blocks until the gate is open (true) or done is closed (false).
func (g *gate) wait(done <-chan struct{}) bool {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

// Listen starts a proxy on addr (host:port; port 0 picks one) to target.
func Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, done: make(chan struct{}), gates: map[string]*gate{}, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut holds every byte between ip and the target until Heal.
func (p *Proxy) Cut(ip string) { p.gate(ip).set(false) }

// Heal undoes Cut.
func (p *Proxy) Heal(ip string) { p.gate(ip).set(true) }

func (p *Proxy) gate(ip string) *gate {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.gates[ip]
	if g == nil {
		g = newGate()
		p.gates[ip] = g
	}
	return g
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	close(p.done)
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		select {
		case <-p.done:
			return false
		default:
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		host, _, _ := strings.Cut(c.RemoteAddr().String(), ":")
		g := p.gate(host)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c, g)
		}()
	}
}

func (p *Proxy) serve(c net.Conn, g *gate) {
	defer c.Close()
	if !p.track(c, true) {
		return
	}
	defer p.track(c, false)
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(up, true) {
		return
	}
	defer p.track(up, false)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(up, c, g) }()
	go func() { defer wg.Done(); p.pipe(c, up, g) }()
	wg.Wait()
}

// pipe copies src to dst through the gate, then closes both (either side's
// end ends the pair).
func (p *Proxy) pipe(dst, src net.Conn, g *gate) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !g.wait(p.done) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a broken connection: the pair ends
		}
	}
}

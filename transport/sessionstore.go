package transport

import "sync"

// connSession is each socket's gws session storage. The server keeps one
// value there (the socket's *conn, under connKey): one slot instead of gws's
// default map saves a map per connection. Other keys go to a map made on
// first use.
type connSession struct {
	mu    sync.Mutex
	conn  any
	set   bool
	other map[string]any
}

func (s *connSession) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.other)
	if s.set {
		n++
	}
	return n
}

func (s *connSession) Load(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == connKey {
		return s.conn, s.set
	}
	v, ok := s.other[key]
	return v, ok
}

func (s *connSession) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == connKey {
		s.conn, s.set = nil, false
		return
	}
	delete(s.other, key)
}

func (s *connSession) Store(key string, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == connKey {
		s.conn, s.set = value, true
		return
	}
	if s.other == nil {
		s.other = make(map[string]any)
	}
	s.other[key] = value
}

func (s *connSession) Range(f func(key string, value any) bool) {
	s.mu.Lock()
	entries := make(map[string]any, len(s.other)+1)
	for k, v := range s.other {
		entries[k] = v
	}
	if s.set {
		entries[connKey] = s.conn
	}
	s.mu.Unlock()
	for k, v := range entries {
		if !f(k, v) {
			return
		}
	}
}

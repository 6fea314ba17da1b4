package batch

// Test hooks. They read the Appender's state without changing it, so that
// tests can wait for a condition (with a deadline) instead of sleeping.

// QueuedForTest returns how many appends wait in the queue (not yet taken by a
// writer).
func (a *Appender) QueuedForTest() int { return len(a.queue) }

// ClosingForTest reports whether Close has been called.
func (a *Appender) ClosingForTest() bool {
	select {
	case <-a.quit:
		return true
	default:
		return false
	}
}

package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// workerDispatcher runs actor mailboxes on long-lived goroutines.
//
// protoactor's default dispatcher starts a goroutine each time an idle
// mailbox receives a message. A fresh goroutine starts with a small stack
// that grows, by copying, while it runs the actor: under load the copying
// took about a sixth of chatd's CPU (docs/BENCHMARKS.md). Here an idle worker,
// whose stack has grown already, takes the mailbox; when none is idle at that
// instant, the mailbox gets a goroutine of its own as before, so a slow actor
// never delays another and Schedule never blocks.
type workerDispatcher struct {
	throughput int
	jobs       chan func() // unbuffered: a send succeeds only when a worker waits
	quit       chan struct{}
	wg         sync.WaitGroup
	once       sync.Once
}

var _ actor.Dispatcher = (*workerDispatcher)(nil)

// newWorkerDispatcher starts workers goroutines; each runs at most
// throughput messages of a mailbox before yielding (protoactor's meaning).
func newWorkerDispatcher(workers, throughput int) *workerDispatcher {
	d := &workerDispatcher{throughput: throughput, jobs: make(chan func()), quit: make(chan struct{})}
	d.wg.Add(workers)
	for range workers {
		go d.work()
	}
	return d
}

func (d *workerDispatcher) work() {
	defer d.wg.Done()
	for {
		select {
		case fn := <-d.jobs:
			fn()
		case <-d.quit:
			return
		}
	}
}

// Schedule implements actor.Dispatcher.
func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.jobs <- fn:
	default:
		go fn()
	}
}

// Throughput implements actor.Dispatcher.
func (d *workerDispatcher) Throughput() int { return d.throughput }

// Close stops the idle workers and waits for the busy ones to finish their
// mailbox; mailboxes scheduled afterwards get goroutines of their own.
func (d *workerDispatcher) Close() {
	d.once.Do(func() { close(d.quit) })
	d.wg.Wait()
}

package batch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/batch"
)

// submitted is what one Submit's done callback received.
type submitted struct {
	res []storage.AppendResult
	err error
}

func submit(t *testing.T, a *batch.Appender, expires time.Time, msgs ...storage.NewMessage) <-chan submitted {
	t.Helper()
	ch := make(chan submitted, 2) // 2: a second call of done would be seen
	if err := a.Submit(msgs, expires, func(res []storage.AppendResult, err error) { ch <- submitted{res, err} }); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return ch
}

func awaitSubmitted(t *testing.T, ch <-chan submitted) submitted {
	t.Helper()
	select {
	case s := <-ch:
		select {
		case again := <-ch:
			t.Fatalf("done called twice: %+v then %+v", s, again)
		default:
		}
		return s
	case <-time.After(waitTimeout):
		t.Fatalf("done not called within %v", waitTimeout)
		return submitted{}
	}
}

// TestSubmit_groupsInOrder: several submissions (one of several messages
// each) waiting together are written in one call, each gets exactly its own
// results in its own order, and seqs follow the submission order.
func TestSubmit_groupsInOrder(t *testing.T) {
	f := newFixture(t, 2)
	g := newGate(f.store)
	obs := &observer{}
	a := mustNewAppender(t, g, g, batch.Options{Writers: 1, Observe: obs.observe})

	first := submit(t, a, time.Time{}, f.msg(0, "first", ""))
	g.waitEntered(t)
	var chans []<-chan submitted
	for i := range 4 {
		chans = append(chans, submit(t, a, time.Time{},
			f.msg(i%2, fmt.Sprintf("s%d-a", i), ""),
			f.msg(i%2, fmt.Sprintf("s%d-b", i), fmt.Sprintf("id-%d", i)),
			f.msg(i%2, fmt.Sprintf("s%d-c", i), "")))
	}
	waitFor(t, "4 queued submissions", func() bool { return a.QueuedForTest() == 4 })
	g.Release()

	if s := awaitSubmitted(t, first); s.err != nil || len(s.res) != 1 || s.res[0].Message.Body != "first" {
		t.Fatalf("first: %+v", s)
	}
	lastSeq := map[int]int64{0: 1, 1: 0}
	for i, ch := range chans {
		s := awaitSubmitted(t, ch)
		if s.err != nil || len(s.res) != 3 {
			t.Fatalf("submission %d: %d results, err %v", i, len(s.res), s.err)
		}
		for k, suffix := range []string{"a", "b", "c"} {
			m := s.res[k].Message
			if s.res[k].Err != nil || m.Body != fmt.Sprintf("s%d-%s", i, suffix) {
				t.Fatalf("submission %d result %d: %+v", i, k, s.res[k])
			}
			lastSeq[i%2]++
			if m.Seq != lastSeq[i%2] {
				t.Fatalf("submission %d result %d: seq %d, want %d", i, k, m.Seq, lastSeq[i%2])
			}
		}
	}
	if sizes, _ := obs.snapshot(); len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 12 {
		t.Fatalf("batch sizes %v, want [1 12]", sizes)
	}
}

// TestSubmit_expiredIsNotWritten: a submission still queued after its expiry
// fails with EUNAVAILABLE and is never written.
func TestSubmit_expiredIsNotWritten(t *testing.T) {
	f := newFixture(t, 1)
	g := newGate(f.store)
	a := mustNewAppender(t, g, g, batch.Options{Writers: 1})

	first := submit(t, a, time.Time{}, f.msg(0, "first", ""))
	g.waitEntered(t)
	late := submit(t, a, time.Now().Add(10*time.Millisecond), f.msg(0, "late", ""))
	waitFor(t, "the late submission queued", func() bool { return a.QueuedForTest() == 1 })
	deadline := time.Now().Add(10 * time.Millisecond)
	waitFor(t, "its expiry", func() bool { return time.Now().After(deadline) })
	g.Release()

	if s := awaitSubmitted(t, first); s.err != nil {
		t.Fatalf("first: %v", s.err)
	}
	s := awaitSubmitted(t, late)
	if code := storage.ErrorCode(s.err); code != storage.EUNAVAILABLE || s.res != nil {
		t.Fatalf("late: results %v, error %v (code %q), want %q", s.res, s.err, code, storage.EUNAVAILABLE)
	}
	msgs, err := f.store.Messages(t.Context(), f.convs[0].ID, storage.Page{})
	if err != nil || len(msgs) != 1 || msgs[0].Body != "first" {
		t.Fatalf("stored %+v, %v; want only first", msgs, err)
	}
}

// panicOnce is a store whose first AppendMessages panics.
type panicOnce struct {
	storage.Store
	done bool
}

func (p *panicOnce) AppendMessages(ctx context.Context, msgs []storage.NewMessage) ([]storage.AppendResult, error) {
	if !p.done {
		p.done = true
		panic("store bug")
	}
	return p.Store.AppendMessages(ctx, msgs)
}

// TestSubmit_storePanic: a panicking store fails that batch with EINTERNAL
// and the appender keeps working (the process does not crash).
func TestSubmit_storePanic(t *testing.T) {
	f := newFixture(t, 1)
	a := mustNewAppender(t, &panicOnce{Store: f.store}, nil, batch.Options{Writers: 1})
	s := awaitSubmitted(t, submit(t, a, time.Time{}, f.msg(0, "lost to a bug", "")))
	if code := storage.ErrorCode(s.err); code != storage.EINTERNAL || s.res != nil {
		t.Fatalf("first submission: results %v, error %v (code %q), want %q", s.res, s.err, code, storage.EINTERNAL)
	}
	s = awaitSubmitted(t, submit(t, a, time.Time{}, f.msg(0, "stored", "")))
	if s.err != nil || len(s.res) != 1 || s.res[0].Message.Seq != 1 || s.res[0].Message.Body != "stored" {
		t.Fatalf("second submission: %+v", s)
	}
}

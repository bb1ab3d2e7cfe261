package irc

import (
	"context"
	"strconv"
	"sync"

	"github.com/lrstanley/girc"
)

// barrier is the delivery proof of one connection. IRC acknowledges nothing, and girc
// drops a line silently when the connection is gone, so lines written just before a
// drop could be lost without Send knowing. A server processes one connection's
// commands in order, so a PONG to "PING :<token>" written after a message's lines
// proves that the server read every one of them: Send returns nil only then.
//
// At most one PING is in flight per connection: a Send whose lines went out before
// the in-flight PING was written waits for that PONG; a later one waits for the next
// PING. So concurrent Sends (other channels, other senders of a ghost) share PINGs
// (group commit) and one Send costs at most two round trips.
//
// The PINGs do not take tokens from the connection's bucket: there is at most one
// outstanding, so they add at most one line per round trip to what the server sees.
type barrier struct {
	client *girc.Client
	prefix string // token prefix, unique per connection

	mu       sync.Mutex
	written  uint64    // lines handed to girc so far
	seq      uint64    // tokens used
	inflight *pingWait // the PING whose PONG is awaited, nil if none
	closed   error     // set once the connection ended; later waits fail with it
}

// pingWait is one PING in flight. err and covers are set before done is closed.
type pingWait struct {
	token  string
	covers uint64 // written when the PING was queued: the lines its PONG proves read
	done   chan struct{}
	err    error
}

func newBarrier(cl *girc.Client, start int64) *barrier {
	return &barrier{client: cl, prefix: "sg" + strconv.FormatInt(start, 36) + "-"}
}

// wrote counts n lines just handed to girc (girc.Client.Send queues them in order
// before it returns). It returns the count a later wait must cover.
func (b *barrier) wrote(n int) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.written += uint64(n)
	return b.written
}

// wait returns nil once the server has answered a PING written after the first upto
// lines, or the connection's end error (ErrNotConnected) if it ended first, or
// ctx.Err(). It never blocks beyond ctx.
func (b *barrier) wait(ctx context.Context, upto uint64) error {
	for {
		b.mu.Lock()
		if b.closed != nil {
			b.mu.Unlock()
			return b.closed
		}
		w := b.inflight
		fresh := w == nil
		if fresh {
			b.seq++
			w = &pingWait{token: b.prefix + strconv.FormatUint(b.seq, 10), covers: b.written, done: make(chan struct{})}
			b.inflight = w
		}
		b.mu.Unlock()
		if fresh {
			// Outside the lock: girc may block up to 30 s for room in its queue.
			b.client.Send(&girc.Event{Command: girc.PING, Params: []string{w.token}})
		}
		select {
		case <-w.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if w.err != nil {
			return w.err
		}
		if w.covers >= upto {
			return nil
		}
	}
}

// pong settles the in-flight PING if token is its token. Called from the PONG
// handler (girc's exec goroutine).
func (b *barrier) pong(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.inflight; w != nil && w.token == token {
		b.inflight = nil
		close(w.done)
	}
}

// close fails the in-flight and every later wait with err. Called once the
// connection has ended.
func (b *barrier) close(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed != nil {
		return
	}
	b.closed = err
	if w := b.inflight; w != nil {
		b.inflight = nil
		w.err = err
		close(w.done)
	}
}

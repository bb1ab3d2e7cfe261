package bridgestest

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// Runner runs a connector in sessions as the gateway does: Run, and when it returns
// before the Runner is stopped, the state the gateway would report
// (StateBadCredentials for an error wrapping bridges.ErrBadCredentials, else
// StateTransientDisconnect), a pause, and Run again. Unlike the gateway it does not
// back off: tests want the next session now. Build it with Start.
type Runner struct {
	c      bridges.Connector
	h      *Host
	cancel context.CancelFunc
	done   chan struct{} // closed when the run loop returned

	mu    sync.Mutex
	ended []error // each session's result, in order
	last  error   // the result of the Run that saw the stop (nil expected)
	wake  chan struct{}
	once  sync.Once
}

// Pause is how long a Runner waits between a session's end and the next Run.
const Pause = 20 * time.Millisecond

// Start runs c with h in sessions until Stop or the end of the test, when it also
// checks that the last Run returned nil. A panic in Run fails the test with its stack.
func Start(t testing.TB, c bridges.Connector, h *Host) *Runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{c: c, h: h, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{})}
	go r.loop(ctx, t)
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("bridgestest: %s: Run after cancel: %v", c.Name(), err)
		}
	})
	return r
}

func (r *Runner) loop(ctx context.Context, t testing.TB) {
	defer close(r.done)
	for {
		err := r.run(ctx)
		if ctx.Err() != nil {
			r.mu.Lock()
			r.last = err
			r.mu.Unlock()
			return
		}
		if err == nil {
			err = errors.New("Run returned nil before it was cancelled")
			t.Errorf("bridgestest: %s: %v", r.c.Name(), err)
		}
		state := bridges.StateTransientDisconnect
		if errors.Is(err, bridges.ErrBadCredentials) {
			state = bridges.StateBadCredentials
		}
		r.h.ReportState(state, err)
		r.mu.Lock()
		r.ended = append(r.ended, err)
		close(r.wake)
		r.wake = make(chan struct{})
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(Pause):
		}
	}
}

// run is one Run; a panic becomes an error carrying its stack.
func (r *Runner) run(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("Run panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return r.c.Run(ctx, r.h)
}

// Stop cancels the session, waits for Run to return (at most the Host's Timeout) and
// returns what that Run returned: nil for a connector that keeps the contract. It may
// be called more than once.
func (r *Runner) Stop() error {
	var err error
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.done:
			r.mu.Lock()
			err = r.last
			r.mu.Unlock()
		case <-time.After(r.h.Timeout):
			err = fmt.Errorf("Run did not return within %s of its cancel", r.h.Timeout)
		}
	})
	return err
}

// Done is closed once the Runner stopped and its last Run returned.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Ended returns the results of the sessions that ended while running, in order.
func (r *Runner) Ended() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.ended...)
}

// WaitEnded waits until at least n sessions ended and returns the n-th one's error; it
// fails the test after the Host's Timeout.
func (r *Runner) WaitEnded(t testing.TB, n int) error {
	t.Helper()
	timeout := time.NewTimer(r.h.Timeout)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		ended, wake := r.ended, r.wake
		r.mu.Unlock()
		if len(ended) >= n {
			return ended[n-1]
		}
		select {
		case <-wake:
		case <-timeout.C:
			t.Fatalf("bridgestest: %s: %d of %d sessions ended within %s", r.c.Name(), len(ended), n, r.h.Timeout)
		}
	}
}

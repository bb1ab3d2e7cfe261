package irc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/test/ircd"
)

// TestSend_barrierTransient kills the server after Send wrote its lines and before the
// PONG: Send must not report success, and the retry after the restart arrives.
func TestSend_barrierTransient(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	c, h := startConnector(t, testConfig(srv))
	var once sync.Once
	c.testHookWritten = func() { once.Do(srv.Stop) }
	out := outbound(t, c, bridges.KindMessage, "alice", "written before the crash", 1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.Send(ctx, out); !errors.Is(err, bridges.ErrTransient) || ctx.Err() != nil {
		t.Fatalf("Send across a crash: %v, want transient before the deadline", err)
	}
	srv.Restart()
	hum := startHuman(t, srv, "human")
	for { // the outbox retries the same Outbound until the bridge has rejoined
		_, err := c.Send(ctx, out)
		if err == nil {
			break
		}
		if !errors.Is(err, bridges.ErrTransient) || ctx.Err() != nil {
			t.Fatalf("retry: %v", err)
		}
		select {
		case <-h.Changed():
		case <-time.After(10 * time.Millisecond):
		}
	}
	if l := hum.next(t, 1)[0]; l.text != "<alice> written before the crash" {
		t.Errorf("after restart: %q", l)
	}
}

// TestBarrier_sharedPing: concurrent waits share PINGs, and every wait ends.
func TestBarrier_sharedPing(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	cfg := testConfig(srv)
	cfg.Channels = append(cfg.Channels, ChannelConfig{Name: "#two"}, ChannelConfig{Name: "#three"})
	c, _ := startConnector(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for _, name := range []string{testChannel, "#two", "#three"} {
		id, err := c.ChannelID(name)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				out := outbound(t, c, bridges.KindMessage, "alice", "x", i)
				out.Channel = id
				_, err := c.Send(context.Background(), out)
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	hum.next(t, 10)
	s := c.cur.Load()
	s.bar.mu.Lock()
	pings, lines := s.bar.seq, s.bar.written
	s.bar.mu.Unlock()
	if lines != 30 || pings > 30 || pings == 0 {
		t.Errorf("%d lines, %d PINGs", lines, pings)
	}
	t.Logf("30 concurrent sends on 3 channels: %d PINGs", pings)
}

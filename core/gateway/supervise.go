package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"

	"github.com/statusgate/statusgate/bridges"
)

// runConnector runs c's sessions until ctx ends: the one retry loop of the gateway's
// connectors (bridges.Connector.Run). After a session ends, it reports the state its
// result says (StateBadCredentials for an error wrapping bridges.ErrBadCredentials,
// else StateTransientDisconnect), waits, and runs the next one. The wait doubles from
// Config.RetryMin to Config.RetryMax, plus up to half again at random so that
// connectors that failed together do not retry together; it starts over after a
// session that reached StateConnected, and is RetryMax after rejected credentials. A
// connector never stops the gateway: /readyz shows it.
func (g *Gateway) runConnector(ctx context.Context, c bridges.Connector) {
	name := c.Name()
	log := g.log.With("net", name)
	h := &host{g: g, net: name, log: log}
	back := backoff{min: g.cfg.RetryMin, max: g.cfg.RetryMax}
	for {
		h.connected.Store(false)
		_, err := guarded(log, "run", func() (struct{}, error) { return struct{}{}, c.Run(ctx, h) })
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("Run returned before the gateway stopped")
		}
		if h.connected.Load() {
			back.cur = 0
		}
		wait := back.next()
		state := bridges.StateTransientDisconnect
		if errors.Is(err, bridges.ErrBadCredentials) {
			state, wait = bridges.StateBadCredentials, g.cfg.RetryMax
		}
		wait += rand.N(wait/2 + 1)
		h.ReportState(state, err)
		log.Warn("connector session ended; next in", "err", err, "in", wait)
		t := g.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// guarded makes one call into a connector (op names it for the log): a panic in it is
// recovered, logged with its stack, and returned as an error wrapping
// bridges.ErrTransient, so that one connector's bug fails that call (a session, a
// delivery attempt) and never the process.
func guarded[T any](log *slog.Logger, op string, call func() (T, error)) (r T, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("connector panicked", "op", op, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%s: %w: connector panicked: %v", op, bridges.ErrTransient, p)
		}
	}()
	return call()
}

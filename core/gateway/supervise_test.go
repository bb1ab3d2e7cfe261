package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// sessions is a connector whose Run ends each session as its script says, and reports
// each start on started.
type sessions struct {
	script  chan func(context.Context, bridges.Host) error
	started chan struct{}
}

func (s *sessions) Name() string                       { return "script" }
func (s *sessions) Capabilities() bridges.Capabilities { return bridges.Capabilities{} }
func (s *sessions) Send(context.Context, bridges.Outbound) (bridges.Receipt, error) {
	panic("a bug in Send")
}
func (s *sessions) Run(ctx context.Context, h bridges.Host) error {
	s.started <- struct{}{}
	h.ReportState(bridges.StateConnecting, nil)
	select {
	case f := <-s.script:
		return f(ctx, h)
	case <-ctx.Done():
		return nil
	}
}

// syncLog is a log buffer safe for the supervisor's goroutine.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunConnector_sessions: the gateway runs a connector's sessions one after the
// other, reports each end as its result says, and survives a panic in Run or Send.
func TestRunConnector_sessions(t *testing.T) {
	logs := new(syncLog)
	g := &Gateway{cfg: Config{RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond}, clock: SystemClock{},
		log: slog.New(slog.NewTextHandler(logs, nil)), m: newMetrics(nil), states: map[string]ConnectorState{}, changed: make(chan struct{})}
	c := &sessions{script: make(chan func(context.Context, bridges.Host) error), started: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.runConnector(ctx, c) }()
	defer func() { cancel(); <-done }()

	// started: a session began, so the end of the one before was handled.
	started := func() {
		t.Helper()
		select {
		case <-c.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("no session started\n%s", logs.String())
		}
	}
	started()
	c.script <- func(context.Context, bridges.Host) error { return errors.New("connection reset") }
	started()
	if l := logs.String(); !strings.Contains(l, "connection reset") || !strings.Contains(l, "state=transient_disconnect") {
		t.Errorf("the end of a session is not reported:\n%s", l)
	}
	c.script <- func(context.Context, bridges.Host) error { return fmt.Errorf("login: %w", bridges.ErrBadCredentials) }
	started()
	if !strings.Contains(logs.String(), "state=bad_credentials") {
		t.Errorf("bad credentials not reported:\n%s", logs.String())
	}
	c.script <- func(context.Context, bridges.Host) error { panic("a bug in Run") }
	started()
	if l := logs.String(); !strings.Contains(l, "connector panicked") || !strings.Contains(l, "a bug in Run") ||
		!strings.Contains(l, "supervise_test.go") {
		t.Errorf("the panic is not logged with its stack:\n%s", l)
	}

	_, err := guarded(g.log, "send", func() (bridges.Receipt, error) { return c.Send(ctx, bridges.Outbound{}) })
	if !errors.Is(err, bridges.ErrTransient) || bridges.IsPermanent(err) {
		t.Errorf("a panic in Send: %v, want a transient error", err)
	}
}

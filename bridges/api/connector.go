package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

var (
	_ bridges.Connector = (*Connector)(nil)
	_ bridges.Editor    = (*Connector)(nil)
	_ bridges.Redactor  = (*Connector)(nil)
	_ bridges.Reactor   = (*Connector)(nil)
	_ bridges.Joiner    = (*Connector)(nil)
)

// Timeouts of the connector. They are not configuration: they bound resources, and
// no client needs them changed.
const (
	deliverTimeout = 30 * time.Second // one Host.Deliver of a POST
	shutdownGrace  = 10 * time.Second // then remaining connections are closed
)

// httpLimits bound what one connection to the HTTP server may hold, so that a slow
// client (slowloris: an idle keep-alive, headers or a body dribbled a byte at a time,
// a stream it does not read) is cut off instead of holding a socket and a goroutine
// for ever.
type httpLimits struct {
	readHeader     time.Duration // request line and headers
	read           time.Duration // request headers and body (lifted on an SSE stream, whose body is empty)
	write          time.Duration // a response; per event on an SSE stream
	idle           time.Duration // keep-alive between requests
	maxHeaderBytes int
}

// serverLimits are the bounds Run uses (tests shorten them).
var serverLimits = httpLimits{
	readHeader:     10 * time.Second,
	read:           30 * time.Second,
	write:          45 * time.Second,
	idle:           2 * time.Minute,
	maxHeaderBytes: 16 << 10,
}

// Connector is the api connector: an HTTP server through which bots and tools post
// into the channels of Config.Channels (POST → Host.Deliver) and read what the gateway
// sends there (Send → Server-Sent Events). Build it with New; the gateway runs its
// sessions (Run). All methods are safe for concurrent use.
type Connector struct {
	cfg      Config
	tokenSum [sha256.Size]byte // SHA-256 of Token: compared in constant time, never logged
	// chans are the channels served: Config.Channels, and those joined since (Join).
	// Copied on write under joinMu; read without a lock.
	chans  atomic.Pointer[channelSet]
	joinMu sync.Mutex

	// Injected time and randomness (STYLE.md rule 14); tests replace them.
	now    func() time.Time
	rand   io.Reader
	limits httpLimits
	posts  *postLimiter // RateLimit's buckets

	running   atomic.Bool
	log       atomic.Pointer[slog.Logger] // the Host's, while Run runs
	addr      atomic.Pointer[boundAddr]
	ready     chan struct{} // closed when first listening
	readyOnce sync.Once
}

type boundAddr struct{ net.Addr }

// New validates cfg and returns a connector for it. It does no I/O and starts no
// goroutines; Run does.
func New(cfg Config) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Connector{
		cfg:      cfg,
		tokenSum: sha256.Sum256([]byte(cfg.Token)),
		now:      time.Now,
		rand:     rand.Reader,
		limits:   serverLimits,
		posts:    newPostLimiter(cfg.RateLimit),
		ready:    make(chan struct{}),
	}
	set := &channelSet{byName: map[string]*channel{}, byID: map[bridges.ChannelID]*channel{}}
	for _, name := range cfg.Channels {
		id, err := channelID(cfg.Name, name)
		if err != nil { // Validate checked it
			return nil, fmt.Errorf("%w: api.channels: %v", ErrInvalidConfig, err)
		}
		set.add(newChannel(name, id, cfg.Replay, cfg.ReplayBytes, cfg.SubscriberBuffer))
	}
	c.chans.Store(set)
	return c, nil
}

// channelSet is the channels served, by name and by ID, in the order they came.
type channelSet struct {
	list   []*channel
	byName map[string]*channel
	byID   map[bridges.ChannelID]*channel
}

func (s *channelSet) add(ch *channel) {
	s.list = append(s.list, ch)
	s.byName[ch.name] = ch
	s.byID[ch.id] = ch
}

// names lists the channel names served.
func (s *channelSet) names() []string {
	out := make([]string, len(s.list))
	for i, ch := range s.list {
		out[i] = ch.name
	}
	return out
}

// Join serves the channel ch from now on (bridges.Joiner): a route added at run time
// names it. Its replay ring starts empty. Joining a channel served already does
// nothing; a name Config.Channels would refuse is a permanent error.
func (c *Connector) Join(_ context.Context, ch bridges.ChannelID) error {
	name := ch.Local()
	if ch.Network() != c.cfg.Name || name == "" || strings.Contains(name, "/") || len(name) > maxChannelLen {
		return bridges.Permanent(fmt.Errorf("join %s: %w", ch, ErrUnknownChannel))
	}
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	old := c.chans.Load()
	if old.byID[ch] != nil {
		return nil
	}
	set := &channelSet{byName: map[string]*channel{}, byID: map[bridges.ChannelID]*channel{}}
	for _, x := range old.list {
		set.add(x)
	}
	set.add(newChannel(name, ch, c.cfg.Replay, c.cfg.ReplayBytes, c.cfg.SubscriberBuffer))
	c.chans.Store(set)
	c.logger().Info("api channel joined", "chat", name)
	return nil
}

// Leave stops serving ch (bridges.Joiner): a POST to it or a new stream of it is
// answered 404, and Send fails; open streams get nothing more. Leaving a channel not
// served does nothing.
func (c *Connector) Leave(_ context.Context, ch bridges.ChannelID) error {
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	old := c.chans.Load()
	if old.byID[ch] == nil {
		return nil
	}
	set := &channelSet{byName: map[string]*channel{}, byID: map[bridges.ChannelID]*channel{}}
	for _, x := range old.list {
		if x.id != ch {
			set.add(x)
		}
	}
	c.chans.Store(set)
	c.logger().Info("api channel left", "chat", ch.Local())
	return nil
}

// Name returns Config.Name.
func (c *Connector) Name() string { return c.cfg.Name }

// Capabilities: clients see reply_to and the real sender of every event, and there is
// no length limit below bridges.MaxTextLen.
func (c *Connector) Capabilities() bridges.Capabilities {
	return bridges.Capabilities{Replies: true}
}

// Addr returns the address the HTTP server listens on, or nil when it is not
// listening (before Run, while the port is taken, after Run returned).
func (c *Connector) Addr() net.Addr {
	if a := c.addr.Load(); a != nil {
		return a.Addr
	}
	return nil
}

// Ready returns a channel that is closed when Run first listens; tests wait on it
// before reading Addr.
func (c *Connector) Ready() <-chan struct{} { return c.ready }

// Run serves the HTTP API for one session (bridges.Connector.Run): it reports
// StateConnecting, listens, reports StateConnected and serves until ctx is cancelled,
// then shuts the server down (SSE streams end, in-flight requests see their context
// cancelled) and returns nil once every goroutine it started has exited. When it
// cannot listen (the port is taken) or the server fails, it returns why; the gateway
// runs it again after its back-off. It also returns an error when it cannot run at all
// (not built with New, nil host, already running).
func (c *Connector) Run(ctx context.Context, h bridges.Host) error {
	if c == nil || c.chans.Load() == nil {
		return fmt.Errorf("%w: connector not built with New", ErrInvalidConfig)
	}
	if h == nil {
		return errors.New("run api connector: nil host")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("run api connector: already running")
	}
	defer c.running.Store(false)
	log := h.Logger()
	if log == nil {
		log = discard
	}
	c.log.Store(log)
	if len(c.cfg.Token) < 16 {
		log.Warn("api token is shorter than 16 characters; use a long random token")
	}

	h.ReportState(bridges.StateConnecting, nil)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.cfg.Listen)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("listen api on %s: %w", c.cfg.Listen, err)
	}
	return c.serve(ctx, h, log, ln)
}

// serve runs the HTTP server on ln until ctx ends (nil) or the server fails (the
// error). Either way it returns only after the server's goroutines and every handler
// exited.
func (c *Connector) serve(ctx context.Context, h bridges.Host, log *slog.Logger, ln net.Listener) error {
	// Handlers' contexts derive from hctx: cancelling it ends SSE streams and
	// aborts pending Deliver calls (the client gets 503 and retries with its id).
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	s := &server{c: c, host: h, log: log}
	hs := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: c.limits.readHeader,
		ReadTimeout:       c.limits.read,
		WriteTimeout:      c.limits.write,
		IdleTimeout:       c.limits.idle,
		MaxHeaderBytes:    c.limits.maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return hctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }() // waited for below on every path

	c.addr.Store(&boundAddr{ln.Addr()})
	c.readyOnce.Do(func() { close(c.ready) })
	h.ReportState(bridges.StateConnected, nil)
	log.Info("api server listening", "addr", ln.Addr().String(), "channels", c.cfg.Channels)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	c.addr.Store(nil)
	hcancel()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("api server shutdown timed out; closing connections", "err", err)
		hs.Close()
	}
	if serveErr == nil {
		<-errc // http.ErrServerClosed
	}
	s.closeAndWait()
	if serveErr != nil && ctx.Err() == nil {
		return fmt.Errorf("serve api on %s: %w", ln.Addr(), serveErr)
	}
	log.Info("api server stopped")
	return nil
}

// logger returns the Host's logger while Run runs, else one that discards.
func (c *Connector) logger() *slog.Logger {
	if l := c.log.Load(); l != nil {
		return l
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)

// randomHex returns 128 random bits as 32 lowercase hex characters.
func (c *Connector) randomHex() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(c.rand, b[:]); err != nil {
		return "", fmt.Errorf("read random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// RateLimitedRequests returns how many POSTs the rate limit refused (429) since New;
// cmd/bridge exports it as statusgate_rate_limited_requests_total{network=…}.
func (c *Connector) RateLimitedRequests() uint64 { return c.posts.refusedCount() }

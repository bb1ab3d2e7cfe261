package irc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lrstanley/girc"
	"golang.org/x/time/rate"

	"github.com/statusgate/statusgate/bridges"
)

var (
	_ bridges.Connector = (*Connector)(nil)
	_ bridges.Editor    = (*Connector)(nil)
)

// Connector is the IRC relay connector for one network. Build it with New; the gateway
// runs its sessions (Run) and calls Send from its outbox goroutines. Safe for
// concurrent use.
type Connector struct {
	cfg      Config
	channels map[bridges.ChannelID]string // ID → configured channel name
	limiter  *rate.Limiter                // lines per second, all channels of the connection
	// queue bounds the Sends waiting for the bucket (overflow policy: block the caller).
	queue chan struct{}

	// Injected time and backoff (STYLE.md rule 14); tests shorten them.
	now func() time.Time
	// testHookWritten, if set, runs after Send handed its lines to girc and before it
	// waits for the PONG: tests kill the server there.
	testHookWritten func()

	ghosts *ghostPool // Config.Ghosts; empty unless enabled
	// sent remembers the latest posted keys: IRC has no transaction IDs, so a Send of
	// a key that went out returns its receipt without posting it again.
	sent *bridges.SentKeys

	running   atomic.Bool
	log       atomic.Pointer[slog.Logger]
	cur       atomic.Pointer[session] // the connected session, nil while down
	lastStart atomic.Int64
	// lostAt is when the last connected session ended (Unix ns), 0 if none ended since
	// the last gap announcement: the start of a gap to announce (gap.go).
	lostAt atomic.Int64
}

// sentKeys is how many posted keys a connector remembers (SentKeys): the gateway
// retries a key within minutes, and 4,096 is more than any outbox holds in flight.
const sentKeys = 4096

// New validates cfg and returns a connector. It does no I/O and starts no goroutines.
func New(cfg Config) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Connector{
		cfg:      cfg,
		channels: make(map[bridges.ChannelID]string, len(cfg.Channels)),
		limiter:  rate.NewLimiter(rate.Limit(cfg.FloodRate), cfg.FloodBurst),
		queue:    make(chan struct{}, cfg.QueueSize),
		now:      time.Now,
		sent:     bridges.NewSentKeys(sentKeys),
	}
	c.ghosts = newGhostPool(c)
	if cfg.FloodRate == 0 { // unreachable after defaults; kept for clarity
		c.limiter = rate.NewLimiter(rate.Inf, 1)
	}
	for _, ch := range cfg.Channels {
		id, err := channelID(cfg.Name, ch.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: irc.channels: %v", ErrInvalidConfig, err)
		}
		c.channels[id] = ch.Name
	}
	c.log.Store(slog.New(slog.DiscardHandler))
	return c, nil
}

// Name returns Config.Name.
func (c *Connector) Name() string { return c.cfg.Name }

// Capabilities: no replies (the gateway quotes the answered message); MaxTextLen what Config.MaxLines lines hold after the longest relay
// prefix ("<" + a 64-byte name + "> ", and the codes re-opened on a continuation), so
// that the gateway splits a longer text into marked parts (each a Send of up to MaxLines
// lines) rather than this connector cutting it with "… (N more lines)". A text of many
// short lines can still reach the line cap: the summary line then says what was left out.
func (c *Connector) Capabilities() bridges.Capabilities {
	longest := "#"
	for _, name := range c.channels {
		if len(name) > len(longest) {
			longest = name
		}
	}
	perLine := wireBudget(maxNickLen, c.cfg.User, longest, false) - len("<> ") - maxRelayName - len(zwsp) - 2
	return bridges.Capabilities{MaxTextLen: c.cfg.MaxLines * perLine}
}

// ChannelID returns the ID of a configured channel name, for routes and tests.
func (c *Connector) ChannelID(name string) (bridges.ChannelID, error) {
	id, err := channelID(c.cfg.Name, name)
	if err != nil {
		return "", err
	}
	if _, ok := c.channels[id]; !ok {
		return "", fmt.Errorf("%w: %s", ErrUnknownChannel, name)
	}
	return id, nil
}

// Run serves one session (bridges.Connector.Run): it connects, joins the channels,
// reports StateConnected once every channel is settled, relays until the connection
// ends, and returns why (an error wrapping bridges.ErrBadCredentials when the server
// refused PASS or SASL), or nil when ctx ended. The gateway reconnects by calling it
// again; the next session announces the gap (gap.go).
func (c *Connector) Run(ctx context.Context, h bridges.Host) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("irc: Run called while running")
	}
	defer c.running.Store(false)
	c.log.Store(h.Logger())
	// The ghosts live for this session: they stop (QUIT) when it ends, whatever ended it.
	ctx, cancel := context.WithCancel(ctx)
	if c.cfg.Ghosts.Enabled {
		c.ghosts.start(ctx)
		defer c.ghosts.stop() // after cancel
	}
	defer cancel()
	h.ReportState(bridges.StateConnecting, nil)
	err := c.serve(ctx, h)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// session is one connection. Its fields are set before the client connects or guarded
// by mu.
type session struct {
	client *girc.Client
	bar    *barrier // delivery proof of Send (barrier.go)
	start  int64    // Unix ns, unique per connector: the base of received message IDs
	seq    atomic.Uint64

	mu        sync.Mutex
	joined    map[string]bool // folded channel name → joined
	done      bool
	connected bool // every channel settled once: the session counted as up
}

func (s *session) isJoined(channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.done && s.joined[foldName(channel)]
}

// serve runs one connection until it ends and returns why.
func (c *Connector) serve(ctx context.Context, h bridges.Host) error {
	host, portStr, _ := net.SplitHostPort(c.cfg.Server)
	port, _ := strconv.Atoi(portStr)
	gcfg := girc.Config{
		Server: host, Port: port, Nick: c.cfg.Nick, User: c.cfg.User, Name: c.cfg.RealName,
		ServerPass: c.cfg.Password, SSL: c.cfg.TLS,
		AllowFlood:  true, // the connector's own token bucket limits writes
		PingDelay:   30 * time.Second,
		PingTimeout: 60 * time.Second,
	}
	if c.cfg.TLS {
		name := c.cfg.ServerName
		if name == "" {
			name = host
		}
		gcfg.TLSConfig = &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	}
	switch {
	case c.cfg.SASL.User != "":
		gcfg.SASL = &girc.SASLPlain{User: c.cfg.SASL.User, Pass: c.cfg.SASL.Password}
	case c.cfg.SASL.External:
		gcfg.SASL = &girc.SASLExternal{}
	}
	cl := girc.New(gcfg)
	start := c.now().UnixNano()
	for { // strictly increasing across sessions, even with a coarse or stepped clock
		last := c.lastStart.Load()
		if start <= last {
			start = last + 1
		}
		if c.lastStart.CompareAndSwap(last, start) {
			break
		}
	}
	s := &session{client: cl, bar: newBarrier(cl, start), start: start, joined: map[string]bool{}}

	var (
		credErr  atomic.Pointer[error]
		events   = make(chan bridges.Event, 256) // overflow policy: block girc's exec loop (TCP back-pressure)
		wg       sync.WaitGroup
		sessDone = make(chan struct{})
	)
	c.addHandlers(ctx, h, s, events, &credErr)

	wg.Add(2)
	go func() { defer wg.Done(); c.deliverLoop(ctx, h, events) }()
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			cl.Close()
		case <-sessDone:
		}
	}()
	err := cl.Connect()
	s.mu.Lock()
	s.done = true
	wasUp := s.connected
	s.mu.Unlock()
	c.cur.CompareAndSwap(s, nil)
	s.bar.close(ErrNotConnected)
	if wasUp {
		c.lostAt.Store(c.now().UnixNano())
	}
	close(sessDone)
	close(events) // handlers have returned: Connect waits for them
	wg.Wait()
	if p := credErr.Load(); p != nil {
		return *p
	}
	if err == nil {
		err = errors.New("connection closed")
	}
	return fmt.Errorf("irc %s: %w", c.cfg.Server, err)
}

// addHandlers registers the session's handlers. They run on girc's exec goroutine.
func (c *Connector) addHandlers(ctx context.Context, h bridges.Host, s *session, events chan<- bridges.Event, credErr *atomic.Pointer[error]) {
	cl := s.client
	log := h.Logger()
	pending := len(c.cfg.Channels)
	settle := func(name string, ok bool, reason string) {
		s.mu.Lock()
		if ok {
			s.joined[foldName(name)] = true
		}
		pending--
		all := pending == 0
		if all {
			s.connected = true
		}
		s.mu.Unlock()
		if !ok {
			log.Warn("irc join failed", "chat", name, "reason", reason)
		}
		if all {
			c.cur.Store(s)
			h.ReportState(bridges.StateConnected, nil)
			log.Info("irc connected", "server", c.cfg.Server, "nick", cl.GetNick())
			c.announceGap(ctx, s, events)
		}
	}
	badCreds := func(_ *girc.Client, e girc.Event) {
		err := fmt.Errorf("%w: %s %s", errBadCredentials, e.Command, e.Last())
		credErr.Store(&err)
		cl.Close()
	}
	cl.Handlers.Add(girc.ERR_PASSWDMISMATCH, badCreds)
	cl.Handlers.Add(girc.ERR_SASLFAIL, badCreds)
	// ngircd answers a wrong PASS with "ERROR :Access denied: Bad password?" and no 464.
	cl.Handlers.Add(girc.ERROR, func(cl *girc.Client, e girc.Event) {
		if strings.Contains(strings.ToLower(e.Last()), "password") {
			badCreds(cl, e)
		}
	})
	cl.Handlers.Add(girc.RPL_WELCOME, func(cl *girc.Client, _ girc.Event) {
		if c.cfg.NickServPassword != "" {
			cl.Cmd.Message("NickServ", "IDENTIFY "+c.cfg.NickServPassword)
		}
		for _, ch := range c.cfg.Channels {
			if ch.Key != "" {
				cl.Cmd.JoinKey(ch.Name, ch.Key)
			} else {
				cl.Cmd.Join(ch.Name)
			}
		}
	})
	cl.Handlers.Add(girc.JOIN, func(cl *girc.Client, e girc.Event) {
		if e.Source == nil || len(e.Params) == 0 || foldName(e.Source.Name) != foldName(cl.GetNick()) {
			return
		}
		if c.configured(e.Params[0]) {
			settle(e.Params[0], true, "")
		}
	})
	for _, code := range []string{girc.ERR_BADCHANNELKEY, girc.ERR_BANNEDFROMCHAN, girc.ERR_INVITEONLYCHAN,
		girc.ERR_CHANNELISFULL, girc.ERR_NOSUCHCHANNEL, girc.ERR_TOOMANYCHANNELS} {
		cl.Handlers.Add(code, func(_ *girc.Client, e girc.Event) {
			if len(e.Params) >= 2 && c.configured(e.Params[1]) {
				settle(e.Params[1], false, e.Command+" "+e.Last())
			}
		})
	}
	onMsg := func(cl *girc.Client, e girc.Event) {
		ev, ok := c.inbound(s, cl, e)
		if !ok {
			return
		}
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}
	cl.Handlers.Add(girc.PRIVMSG, onMsg)
	cl.Handlers.Add(girc.NOTICE, onMsg)
	cl.Handlers.Add(girc.PONG, func(_ *girc.Client, e girc.Event) { s.bar.pong(e.Last()) })
	cl.Handlers.Add(girc.DISCONNECTED, func(_ *girc.Client, _ girc.Event) { s.bar.close(ErrNotConnected) })
}

func (c *Connector) configured(channel string) bool {
	id, err := channelID(c.cfg.Name, channel)
	if err != nil {
		return false
	}
	_, ok := c.channels[id]
	return ok
}

// deliverInFlight bounds the events deliverLoop has queued with a bridges.QueueingHost
// and not yet seen persisted. IRC acknowledges no line to its sender, so nothing
// waits on the persisting of one event but the next: keeping many queued lets the
// gateway write them in one commit instead of one commit (one disk sync) each, which
// capped a channel near 1,000 lines a second (the anchor benchmark).
const deliverInFlight = 256

// deliverLoop hands events to the gateway in order, retrying transient failures until
// ctx ends; events are drained after the connection closed, so nothing received is lost
// to a reconnect. With a bridges.QueueingHost it keeps up to deliverInFlight events
// queued and waits for them in order; an event that could not be persisted once queued
// (the gateway is stopping) is logged, not retried: a retry would land behind later
// lines.
func (c *Connector) deliverLoop(ctx context.Context, h bridges.Host, events <-chan bridges.Event) {
	log := h.Logger()
	q, queueing := h.(bridges.QueueingHost)
	type queued struct {
		ev        bridges.Event
		persisted <-chan error
	}
	var inFlight []queued // in queue order
	settle := func(p queued, err error) {
		if err != nil {
			log.Warn("irc event not delivered", "msg_id", p.ev.Origin.ID, "err", err)
		}
	}
	// deliver delivers ev (queueing: queues it), retrying transient failures.
	deliver := func(ev bridges.Event) {
		for delay := 100 * time.Millisecond; ; delay = min(delay*2, 10*time.Second) {
			var err error
			if queueing {
				p := queued{ev: ev, persisted: q.DeliverQueued(ctx, ev)}
				select {
				case err = <-p.persisted: // refused at once, or accepted and discarded
				default:
					inFlight = append(inFlight, p)
					return
				}
			} else {
				err = h.Deliver(ctx, ev)
			}
			if err == nil {
				return
			}
			if bridges.IsPermanent(err) || ctx.Err() != nil {
				log.Warn("irc event not delivered", "msg_id", ev.Origin.ID, "err", err)
				return
			}
			log.Warn("irc deliver failed, retrying", "msg_id", ev.Origin.ID, "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}
	for {
		var oldest <-chan error
		if len(inFlight) > 0 {
			oldest = inFlight[0].persisted
		}
		in := events
		if len(inFlight) >= deliverInFlight {
			in = nil // wait for the oldest first
		}
		select {
		case ev, ok := <-in:
			if !ok {
				for _, p := range inFlight { // the host answers each, stopping or not
					settle(p, <-p.persisted)
				}
				return
			}
			deliver(ev)
		case err := <-oldest:
			settle(inFlight[0], err)
			inFlight = inFlight[1:]
		}
	}
}

package irc

import (
	"context"
	"crypto/tls"
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

// Ghost connections (Config.Ghosts): a Status sender's messages come from an IRC
// connection of their own, with a nick made from their name, instead of "<nick>"
// lines from the relay connection.
//
//   - The pool lives while Run runs: Run starts it and, on its way out, QUITs every
//     ghost and waits for their goroutines (one per ghost, plus girc's Connect).
//   - Send asks the pool for the sender's ghost. A new one (while fewer than Max are
//     open) is dialled, and Send waits up to ghostWait for it to join the channel;
//     a ghost that is still connecting, a full pool, or a join that fails or takes
//     longer sends the message through the relay connection instead: never a long
//     wait, never a drop.
//   - A ghost QUITs after IdleTimeout without a message and is dialled again on the
//     sender's next one; a ghost whose connection drops is forgotten the same way.
//   - The relay connection sees the ghosts' lines like any user's: their nicks, while
//     in use and for ghostEchoGrace after, mark those lines Sender.IsBridge, so the
//     gateway discards them and nothing loops.

// ghostWait bounds the wait of a Send for a new ghost (connect, register, join).
const ghostWait = 3 * time.Second

// maxNickTries bounds the nicks a ghost tries after a collision.
const maxNickTries = 20

// ghostEchoGrace is how long the relay connection still recognises a released
// ghost nick: lines the ghost wrote before its QUIT may reach it after.
const ghostEchoGrace = time.Minute

// ghostPool is the set of ghost connections. Its fields are guarded by mu.
type ghostPool struct {
	c *Connector

	mu       sync.Mutex
	ctx      context.Context // Run's, nil while Run is not running: no new ghosts
	wg       sync.WaitGroup  // one per ghost goroutine
	bySender map[bridges.RemoteUserID]*ghost
	nicks    map[string]time.Time // folded nick → zero while held, else when released
}

// ghost is one sender's connection. Fields above mu are set before it connects.
type ghost struct {
	sender  bridges.RemoteUserID
	client  *girc.Client
	bar     *barrier
	limiter *rate.Limiter
	last    atomic.Int64 // Unix ns of the last use, for the idle timeout

	mu       sync.Mutex
	welcomed bool
	done     bool
	busy     int             // Sends using the ghost: no idle QUIT meanwhile
	nick     string          // the nick the server gave, once welcomed
	joins    map[string]bool // folded channel → JOIN sent
	joined   map[string]bool // folded channel → joined
	failed   map[string]bool // folded channel → JOIN refused
	changed  chan struct{}   // closed and replaced on every change above
}

func newGhostPool(c *Connector) *ghostPool {
	return &ghostPool{c: c, bySender: map[bridges.RemoteUserID]*ghost{}, nicks: map[string]time.Time{}}
}

// start opens the pool for Run's ctx.
func (pp *ghostPool) start(ctx context.Context) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.ctx = ctx
}

// stop closes the pool and waits until every ghost has gone (ctx, Run's, is done).
func (pp *ghostPool) stop() {
	pp.mu.Lock()
	pp.ctx = nil
	pp.mu.Unlock()
	pp.wg.Wait()
}

// isGhost reports whether nick is, or was within ghostEchoGrace, a ghost's.
func (pp *ghostPool) isGhost(nick string) bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	at, ok := pp.nicks[foldName(nick)]
	return ok && (at.IsZero() || pp.c.now().Sub(at) < ghostEchoGrace)
}

// acquire returns sender's ghost, joined to channel, marked busy (call release), or
// nil when the message should go through the relay connection.
func (pp *ghostPool) acquire(ctx context.Context, sender bridges.Sender, channel string) *ghost {
	if sender.ID == "" || sender.IsBridge {
		return nil
	}
	pp.mu.Lock()
	if pp.ctx == nil {
		pp.mu.Unlock()
		return nil
	}
	p, fresh := pp.bySender[sender.ID], false
	if p == nil {
		if len(pp.bySender) >= pp.c.cfg.Ghosts.Max {
			pp.mu.Unlock()
			return nil
		}
		p, fresh = pp.dial(sender), true
		pp.bySender[sender.ID] = p
		pp.wg.Add(1)
		go pp.runLoop(pp.ctx, p)
	}
	pp.mu.Unlock()
	wait := time.Duration(0)
	if fresh {
		wait = ghostWait
	}
	if !p.waitJoined(ctx, channel, wait) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done || !p.joined[foldName(channel)] {
		return nil
	}
	p.busy++
	p.last.Store(pp.c.now().UnixNano())
	return p
}

// release ends a use that acquire began.
func (p *ghost) release(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy--
	p.last.Store(now.UnixNano())
}

// isJoined reports whether the ghost is still up and in channel.
func (p *ghost) isJoined(channel string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.done && p.joined[foldName(channel)] && p.client.IsConnected()
}

// waitJoined asks the ghost to join channel if it has not and waits up to d (and
// ctx) for it to be in channel.
func (p *ghost) waitJoined(ctx context.Context, channel string, d time.Duration) bool {
	key := foldName(channel)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		p.mu.Lock()
		if p.done || p.failed[key] {
			p.mu.Unlock()
			return false
		}
		if p.joined[key] {
			p.mu.Unlock()
			return true
		}
		join := p.welcomed && !p.joins[key]
		p.joins[key] = true // before the welcome: joined from the RPL_WELCOME handler
		changed := p.changed
		p.mu.Unlock()
		if join {
			p.client.Cmd.Join(channel)
		}
		select {
		case <-changed:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// update changes p's state under its lock and wakes the waiters.
func (p *ghost) update(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
}

// dial builds (without I/O) the ghost of sender. Called with pp.mu held.
func (pp *ghostPool) dial(sender bridges.Sender) *ghost {
	c := pp.c
	host, portStr, _ := net.SplitHostPort(c.cfg.Server)
	port, _ := strconv.Atoi(portStr)
	base := ghostNick(sender.Name, c.cfg.Ghosts.NickSuffix, 0)
	tries := 0
	gcfg := girc.Config{
		Server: host, Port: port, Nick: base, User: c.cfg.User, Name: "statusgate ghost",
		ServerPass: c.cfg.Password, SSL: c.cfg.TLS,
		AllowFlood:  true, // the ghost's own token bucket limits writes
		PingDelay:   30 * time.Second,
		PingTimeout: 60 * time.Second,
		HandleNickCollide: func(string) string { // "alice[s]" → "alice[s]2", "alice[s]3", …
			if tries++; tries > maxNickTries { // give up: the Send falls back to relay, idle QUITs
				return ""
			}
			return ghostNick(sender.Name, c.cfg.Ghosts.NickSuffix, tries+1)
		},
	}
	if c.cfg.TLS {
		name := c.cfg.ServerName
		if name == "" {
			name = host
		}
		gcfg.TLSConfig = &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	}
	cl := girc.New(gcfg)
	p := &ghost{
		sender: sender.ID, client: cl,
		bar:     newBarrier(cl, c.now().UnixNano()),
		limiter: rate.NewLimiter(rate.Limit(c.cfg.FloodRate), c.cfg.FloodBurst),
		joins:   map[string]bool{}, joined: map[string]bool{}, failed: map[string]bool{},
		changed: make(chan struct{}),
	}
	p.last.Store(c.now().UnixNano())
	cl.Handlers.Add(girc.RPL_WELCOME, func(cl *girc.Client, _ girc.Event) {
		nick := cl.GetNick()
		pp.mu.Lock()
		pp.nicks[foldName(nick)] = time.Time{} // before any line of its own
		pp.mu.Unlock()
		var joins []string
		p.update(func() {
			p.welcomed, p.nick = true, nick
			for ch := range p.joins {
				joins = append(joins, ch)
			}
		})
		for _, ch := range joins {
			cl.Cmd.Join(ch)
		}
	})
	cl.Handlers.Add(girc.JOIN, func(cl *girc.Client, e girc.Event) {
		if e.Source != nil && len(e.Params) > 0 && foldName(e.Source.Name) == foldName(cl.GetNick()) {
			p.update(func() { p.joined[foldName(e.Params[0])] = true })
		}
	})
	for _, code := range []string{girc.ERR_BADCHANNELKEY, girc.ERR_BANNEDFROMCHAN, girc.ERR_INVITEONLYCHAN,
		girc.ERR_CHANNELISFULL, girc.ERR_NOSUCHCHANNEL, girc.ERR_TOOMANYCHANNELS} {
		cl.Handlers.Add(code, func(_ *girc.Client, e girc.Event) {
			if len(e.Params) >= 2 {
				p.update(func() { p.failed[foldName(e.Params[1])] = true })
			}
		})
	}
	cl.Handlers.Add(girc.PONG, func(_ *girc.Client, e girc.Event) { p.bar.pong(e.Last()) })
	return p
}

// runLoop connects p and keeps it until it drops, idles out or ctx ends, then
// forgets it. It owns the goroutine of girc's Connect and waits for it.
func (pp *ghostPool) runLoop(ctx context.Context, p *ghost) {
	defer pp.wg.Done()
	c := pp.c
	log := c.log.Load()
	connected := make(chan error, 1)
	go func() { connected <- p.client.Connect() }()
	idle := c.cfg.Ghosts.IdleTimeout
	t := time.NewTimer(idle)
	defer t.Stop()
	quit := func(reason string) {
		p.client.Quit(reason)
		select { // the server closes the connection after QUIT; don't wait on it forever
		case <-connected:
		case <-time.After(5 * time.Second):
			p.client.Close()
			<-connected
		}
	}
	for alive := true; alive; {
		select {
		case err := <-connected:
			log.Info("irc ghost disconnected", "nick", p.client.GetNick(), "err", err)
			alive = false
		case <-ctx.Done():
			pp.forget(p, true)
			quit("bridge stopping")
			alive = false
		case <-t.C:
			since := c.now().Sub(time.Unix(0, p.last.Load()))
			p.mu.Lock()
			busy := p.busy > 0
			p.mu.Unlock()
			if busy || since < idle {
				t.Reset(max(idle-since, idle/10))
				continue
			}
			if !pp.forget(p, false) { // a Send took it meanwhile
				t.Reset(idle)
				continue
			}
			log.Info("irc ghost idle", "nick", p.client.GetNick(), "idle", since)
			quit("idle")
			alive = false
		}
	}
	pp.forget(p, true)
	p.bar.close(ErrNotConnected)
	p.mu.Lock()
	nick := p.nick
	p.mu.Unlock()
	pp.mu.Lock()
	if n := nick; n != "" {
		pp.nicks[foldName(n)] = c.now()
	}
	for n, at := range pp.nicks { // expire released nicks
		if !at.IsZero() && c.now().Sub(at) >= ghostEchoGrace {
			delete(pp.nicks, n)
		}
	}
	pp.mu.Unlock()
}

// forget takes p out of the pool and marks it done, unless a Send is using it and
// force is false; it reports whether it did. Lock order: pp.mu, then p.mu.
func (pp *ghostPool) forget(p *ghost, force bool) bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	ok := true
	p.update(func() {
		if !force && p.busy > 0 && !p.done {
			ok = false
			return
		}
		p.done = true
	})
	if ok && pp.bySender[p.sender] == p {
		delete(pp.bySender, p.sender)
	}
	return ok
}

// ghostNick is the nick of a Status user called name: its nick characters (others
// dropped; "_" first if it would start with a digit or '-'; "user" if nothing is left),
// cut so that it fits maxNickLen with suffix and, for n ≥ 2, the digits of n after it.
func ghostNick(name, suffix string, n int) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || strings.IndexByte("[]\\`_^{|}-", ch) >= 0 {
			b.WriteByte(ch)
		}
	}
	nick := b.String()
	if nick == "" {
		nick = "user"
	}
	if nick[0] == '-' || '0' <= nick[0] && nick[0] <= '9' {
		nick = "_" + nick
	}
	tail := suffix
	if n >= 2 {
		tail += strconv.Itoa(n)
	}
	if len(nick)+len(tail) > maxNickLen {
		nick = nick[:maxNickLen-len(tail)]
	}
	return nick + tail
}

package matrix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"golang.org/x/time/rate"

	"github.com/statusgate/statusgate/bridges"
)

var (
	_ bridges.Connector = (*Connector)(nil)
	_ bridges.Editor    = (*Connector)(nil)
	_ bridges.Redactor  = (*Connector)(nil)
)

const (
	// maxRecentTxns bounds the set of processed transaction IDs (oldest forgotten).
	maxRecentTxns = 4096
	// maxNames bounds the display name cache (cleared when full).
	maxNames = 8192
	// maxStateEntries bounds what mautrix's appservice remembers: an IntentAPI and a
	// client per ghost, and its MemoryStateStore's registrations and room memberships
	// (about 1.5 KiB a ghost), none ever forgotten, while every Status author posting
	// into a portal room makes a ghost and every member event of a portal room is
	// noted. Eviction policy: past it the appservice is replaced by a fresh one
	// (renewLocked); what it forgot costs a registration answered M_USER_IN_USE and an
	// idempotent join per ghost and room, on the ghost's next message.
	maxStateEntries = 16384
	// maxGhosts bounds the caches of ghosts named and given an avatar (ghosts,
	// avatars): every Status author posting into a portal room adds one, at the ghost
	// budget's pace, for ever. Eviction policy: cleared when full; a ghost no longer
	// cached has its display name set (and its avatar checked) again on its next message.
	maxGhosts = 8192
)

// Connector is the Matrix application service. Build it with New; the gateway runs its
// sessions (Run) and calls Send, Edit and Redact from its outbox goroutines.
//
// Lock tiers: txnMu → stateMu → mu. mu (rooms, ghosts, names, host) is a leaf lock,
// never held across I/O. txnMu serialises transaction handling (the homeserver sends
// one at a time anyway) and is held across Host.Deliver. stateMu guards the mautrix
// state store (see the field).
type Connector struct {
	cfg Config
	// as is the mautrix appservice (appservice): replaced by a fresh one when its
	// caches pass stateCache (renewLocked).
	as  atomic.Pointer[appservice.AppService]
	bot id.UserID

	ready     chan struct{} // closed once the portal rooms were first set up
	readyOnce sync.Once
	running   atomic.Bool // a Run is running
	up        atomic.Bool // a session has set up the portal rooms and serves

	mu      sync.Mutex
	host    bridges.Host
	log     *slog.Logger
	rooms   map[string]id.RoomID      // chat → room
	chats   map[id.RoomID]string      // room → chat
	ghosts  map[id.UserID]string      // ghost → display name set (at most ghostCache)
	avatars map[id.UserID]avatarState // at most ghostCache
	names   map[nameKey]string        // (room, user) → display name of humans
	// ghostCache bounds ghosts and avatars (maxGhosts; tests lower it).
	ghostCache int

	txnMu sync.Mutex
	txns  recentSet

	// stateMu serialises every use of the appservice's memory state store
	// (EnsureRegistered, EnsureJoined, SetMembership): mautrix v0.31.0's
	// MemoryStateStore mutates member entries after unlocking, which the race
	// detector catches. Held across the join request; never taken under mu. Sends
	// and redactions go through intent.Client, which does not touch the store.
	stateMu sync.Mutex

	// newGhosts is the budget of ghost registrations (Config.NewGhostsPerMinute);
	// taken and given back under stateMu.
	newGhosts *rate.Limiter
	// stateEntries counts what the appservice's caches took since it was made (ghosts
	// registered, memberships noted), under stateMu; past stateCache (maxStateEntries;
	// tests lower it) the appservice is renewed. renewals counts that.
	stateEntries, stateCache int
	renewals                 atomic.Int64

	now        func() time.Time // the clock (catch-up detection, avatar retries, ghost budget)
	httpClient *http.Client     // fetches avatars from Config.AvatarURLBase
	limits     httpLimits       // of the appservice listener (tests shorten them)
}

// httpLimits bound what one connection to the appservice listener may hold, so that a
// slow client (slowloris: an idle keep-alive, headers or a body dribbled a byte at a
// time) is cut off instead of holding a socket and a goroutine for ever.
type httpLimits struct {
	readHeader     time.Duration // request line and headers
	read           time.Duration // the whole request, body included
	write          time.Duration // from the end of the request headers to the end of the answer
	idle           time.Duration // a keep-alive connection between requests
	maxHeaderBytes int
}

// listenerLimits: a transaction body is at most maxTxnBody (32 MiB, in practice far
// less) from a homeserver nearby; its answer waits for Host.Deliver of every event,
// which the homeserver waits for 30 s (Dendrite) to 60 s (Synapse) before it retries.
// They are not configuration: they bound resources, and no homeserver needs them
// changed.
var listenerLimits = httpLimits{
	readHeader:     10 * time.Second,
	read:           60 * time.Second,
	write:          90 * time.Second,
	idle:           2 * time.Minute,
	maxHeaderBytes: 16 << 10,
}

type nameKey struct {
	room id.RoomID
	user id.UserID
}

// New validates cfg and returns a connector. It does no I/O and starts no goroutines.
func New(cfg Config) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	as, err := newAppService(cfg)
	if err != nil {
		return nil, err
	}
	c := &Connector{
		cfg: cfg, bot: id.NewUserID(cfg.BotLocalpart, cfg.ServerName),
		ready: make(chan struct{}),
		rooms: map[string]id.RoomID{}, chats: map[id.RoomID]string{},
		ghosts: map[id.UserID]string{}, names: map[nameKey]string{},
		avatars:    map[id.UserID]avatarState{},
		ghostCache: maxGhosts,
		stateCache: maxStateEntries,
		newGhosts:  rate.NewLimiter(rate.Limit(float64(cfg.NewGhostsPerMinute)/60), cfg.NewGhostsPerMinute),
		txns:       newRecentSet(maxRecentTxns),
		log:        slog.New(slog.DiscardHandler),
		now:        time.Now,
		httpClient: &http.Client{Timeout: avatarTimeout},
		limits:     listenerLimits,
	}
	c.as.Store(as)
	return c, nil
}

// newAppService builds the mautrix appservice of cfg. It does no I/O.
func newAppService(cfg Config) (*appservice.AppService, error) {
	as, err := appservice.CreateFull(appservice.CreateOpts{
		Registration: &appservice.Registration{
			ID: cfg.RegistrationID, URL: cfg.URL, AppToken: cfg.ASToken, ServerToken: cfg.HSToken,
			SenderLocalpart: cfg.BotLocalpart,
		},
		HomeserverDomain: cfg.ServerName,
		HomeserverURL:    cfg.HomeserverURL,
	})
	if err != nil {
		return nil, badKey("homeserver_url", "%v", err)
	}
	// The connector retries itself (429 with retry_after_ms, the gateway's outbox for
	// the rest); mautrix's own retries would hide the deadline.
	as.DefaultHTTPRetries = 0
	return as, nil
}

// appservice is the current mautrix appservice.
func (c *Connector) appservice() *appservice.AppService { return c.as.Load() }

// noteStateLocked counts one more entry in the appservice's caches and renews it past
// stateCache. Caller holds stateMu.
func (c *Connector) noteStateLocked() {
	c.stateEntries++
	if c.stateEntries < c.stateCache {
		return
	}
	as, err := newAppService(c.cfg)
	if err != nil { // New built one from the same Config
		c.log.Warn("matrix appservice not renewed", "err", err)
		return
	}
	c.as.Store(as)
	c.stateEntries = 0
	c.renewals.Add(1)
	c.log.Info("matrix appservice renewed: its caches of ghosts and memberships passed their bound", "entries", c.stateCache)
}

// Name returns the network name (Config.Name).
func (c *Connector) Name() string { return c.cfg.Name }

// Capabilities: replies, ghosts, edits without a window; Matrix events may be up to
// 64 KiB, of which the text gets about half (body and formatted_body).
func (c *Connector) Capabilities() bridges.Capabilities {
	return bridges.Capabilities{MaxTextLen: 24 << 10, Replies: true}
}

// Handler returns the appservice HTTP handler (hs_token check, transactions, user and
// alias queries). Run serves it on Config.Listen; it is exported for tests and for a
// process that serves it on its own listener.
func (c *Connector) Handler() http.Handler { return http.HandlerFunc(c.serveHTTP) }

// Run serves one session (bridges.Connector.Run): it listens on Config.Listen for the
// homeserver's transactions, registers the bot and sets up the portal rooms, reports
// StateConnected, and serves until ctx ends (nil) or the listener fails. A listener
// that cannot bind, or a set-up that fails, ends the session with why (an error
// wrapping bridges.ErrBadCredentials when the homeserver rejects the as_token); the
// gateway runs it again after its back-off. Between sessions Send fails transiently,
// and the homeserver keeps and re-sends its transactions.
func (c *Connector) Run(ctx context.Context, h bridges.Host) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("matrix: Run called while running")
	}
	defer c.running.Store(false)
	c.mu.Lock()
	c.host, c.log = h, h.Logger()
	c.mu.Unlock()
	h.ReportState(bridges.StateConnecting, nil)
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.cfg.Listen, err)
	}
	l := c.limits
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: l.readHeader, ReadTimeout: l.read,
		WriteTimeout: l.write, IdleTimeout: l.idle, MaxHeaderBytes: l.maxHeaderBytes,
		ErrorLog:    slog.NewLogLogger(h.Logger().Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return ctx }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }() // owned: Run waits on served below
	var sessErr error
	if err := c.setup(ctx); err != nil {
		sessErr = fmt.Errorf("set up portal rooms: %w", err)
		if errors.Is(err, mautrix.MUnknownToken) || errors.Is(err, mautrix.MMissingToken) {
			sessErr = fmt.Errorf("homeserver rejected the as_token: %w: %w", bridges.ErrBadCredentials, err)
		}
	} else {
		c.up.Store(true)
		h.ReportState(bridges.StateConnected, nil)
		c.log.Info("portal rooms ready", "rooms", len(c.cfg.Rooms))
		c.readyOnce.Do(func() { close(c.ready) })
		select {
		case <-ctx.Done():
		case err := <-served:
			sessErr = fmt.Errorf("appservice listener: %w", err)
			served <- err
		}
		c.up.Store(false)
	}
	cancel()
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	_ = srv.Shutdown(shutCtx)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && sessErr == nil {
		sessErr = fmt.Errorf("appservice listener: %w", err)
	}
	if ctx.Err() != nil && sessErr == nil {
		return nil
	}
	return sessErr
}

func (c *Connector) setup(ctx context.Context) error {
	bot := c.appservice().BotIntent()
	c.stateMu.Lock()
	err := bot.EnsureRegistered(ctx)
	c.stateMu.Unlock()
	if err != nil {
		return fmt.Errorf("register bot %s: %w", c.bot, err)
	}
	if _, err := bot.Whoami(ctx); err != nil {
		return fmt.Errorf("whoami %s: %w", c.bot, err)
	}
	for _, r := range c.cfg.Rooms {
		c.mu.Lock()
		_, done := c.rooms[r.Chat]
		c.mu.Unlock()
		if done {
			continue
		}
		room, err := c.ensurePortal(ctx, r)
		if err != nil {
			return fmt.Errorf("portal %s: %w", r.Chat, err)
		}
		c.mu.Lock()
		c.rooms[r.Chat], c.chats[room] = room, r.Chat
		c.mu.Unlock()
	}
	return nil
}

// bridgeStateKey is the state key of the portal's m.bridge event (MSC2346).
const bridgeStateKey = "org.statusgate://status/"

var stateBridge = event.Type{Type: "m.bridge", Class: event.StateEventType}

// ensurePortal returns the room of r: an existing room ID, a resolved alias, or a new
// public room created with the alias #<ghost_prefix><chat>, the m.bridge state event
// and a topic; the bot is joined to it.
func (c *Connector) ensurePortal(ctx context.Context, r RoomConfig) (id.RoomID, error) {
	bot := c.appservice().BotIntent()
	if len(r.Room) > 0 && r.Room[0] == '!' {
		room := id.RoomID(r.Room)
		return room, c.ensureJoined(ctx, bot, room)
	}
	alias := portalAlias(c.cfg.GhostPrefix, r.Chat, c.cfg.ServerName)
	if r.Room != "" {
		alias = id.RoomAlias(r.Room)
	}
	res, err := bot.ResolveAlias(ctx, alias)
	if err == nil {
		return res.RoomID, c.ensureJoined(ctx, bot, res.RoomID)
	}
	if !errors.Is(err, mautrix.MNotFound) || r.Room != "" {
		return "", fmt.Errorf("resolve %s: %w", alias, err)
	}
	bridgeInfo := map[string]any{
		"bridgebot": c.bot,
		"protocol":  map[string]any{"id": "status", "displayname": "Status"},
		"channel":   map[string]any{"id": r.Chat, "displayname": r.Chat},
	}
	resp, err := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Visibility: "public", Preset: "public_chat", RoomAliasName: c.cfg.GhostPrefix + r.Chat,
		Name:  "Status: " + r.Chat,
		Topic: "Bridged to the public Status chat #" + r.Chat + ". Status chats are public: anyone can read what is said here.",
		InitialState: []*event.Event{
			{Type: stateBridge, StateKey: ptr(bridgeStateKey + r.Chat), Content: event.Content{Raw: bridgeInfo}},
			{Type: event.Type{Type: "uk.half-shot.bridge", Class: event.StateEventType}, StateKey: ptr(bridgeStateKey + r.Chat), Content: event.Content{Raw: bridgeInfo}},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create room %s: %w", alias, err)
	}
	c.stateMu.Lock()
	_ = c.appservice().StateStore.SetMembership(ctx, resp.RoomID, c.bot, event.MembershipJoin)
	c.stateMu.Unlock()
	c.log.Info("created portal room", "chat", r.Chat, "room", resp.RoomID, "alias", alias)
	return resp.RoomID, nil
}

// ensureJoined is intent.EnsureJoined under stateMu.
func (c *Connector) ensureJoined(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID) error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return intent.EnsureJoined(ctx, room)
}

// ensureRegistered is intent.EnsureRegistered under stateMu, for the bot.
func (c *Connector) ensureRegistered(ctx context.Context, intent *appservice.IntentAPI) error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return intent.EnsureRegistered(ctx)
}

// ensureGhost registers a ghost unless this process knows it is registered, paying
// for a new account from the ghost budget: ErrGhostLimit when the budget is spent (the
// caller posts through the bot). A ghost that turns out to exist already
// (M_USER_IN_USE: registered before a restart) gives its token back.
func (c *Connector) ensureGhost(ctx context.Context, intent *appservice.IntentAPI) error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if intent.Registered {
		return nil
	}
	if ok, err := c.appservice().StateStore.IsRegistered(ctx, intent.UserID); err == nil && ok {
		intent.Registered = true
		return nil
	}
	now := c.now()
	r := c.newGhosts.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		return ErrGhostLimit
	}
	err := intent.Register(ctx)
	if err != nil {
		r.CancelAt(now) // no new account: an existing ghost, or a failure
	}
	if err != nil && !errors.Is(err, mautrix.MUserInUse) {
		return fmt.Errorf("register ghost: %w", err)
	}
	if err := c.appservice().StateStore.MarkRegistered(ctx, intent.UserID); err != nil {
		return fmt.Errorf("mark ghost registered: %w", err)
	}
	c.noteStateLocked()
	intent.Registered = true
	return nil
}

func ptr[T any](v T) *T { return &v }

// Room returns the room ID of chat once Run has set it up, for tests and tooling.
func (c *Connector) Room(chat string) (id.RoomID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rooms[chat]
	return r, ok
}

// Ready is closed once the portal rooms are set up.
func (c *Connector) Ready() <-chan struct{} { return c.ready }

// recentSet remembers up to n strings; the oldest is forgotten first.
type recentSet struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newRecentSet(n int) recentSet {
	return recentSet{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (s *recentSet) has(k string) bool { _, ok := s.set[k]; return ok }

func (s *recentSet) add(k string) {
	if s.has(k) {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.set, old)
	}
	s.ring[s.next] = k
	s.set[k] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}

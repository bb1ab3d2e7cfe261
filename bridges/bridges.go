// Package bridges is the connector contract: the one interface a network connector
// (bridges/matrix, bridges/irc, bridges/slack, bridges/api) implements and the one
// interface the gateway offers it, with the network-neutral Event model, typed opaque
// IDs (ids.go), canonical text (text.go) and the retry classification of errors
// (errors.go). It plays the part database/sql/driver plays for database/sql.
//
// Data flow (ARCHITECTURE.md):
//
//	inbound:  remote → connector → Host.Deliver(Event) → gateway (persist, dedupe, map,
//	          post to Status as the sender's puppet)
//	outbound: Status → gateway (route, persist in outbox) → Connector.Send(Outbound) →
//	          Receipt → gateway marks delivered
//
// The required interface, Connector, is small: Name, Capabilities, Run and Send. Edits,
// deletes, reactions and channels named at run time are optional capability interfaces
// (Editor, Redactor, Reactor, Joiner) that the gateway finds by type assertion; when one is missing, the gateway degrades
// (an edit becomes a new message, a delete or a reaction is recorded and not posted)
// and never fails.
// Each connector lists its surface in compile-time guards at the top of its
// connector.go:
//
//	var (
//		_ bridges.Connector = (*Connector)(nil)
//		_ bridges.Editor    = (*Connector)(nil)
//	)
//
// This package must import only the standard library (test/archtest checks), and
// connectors must import no statusgate package but this one. It holds no state, starts
// no goroutines and does no I/O; every function is safe for concurrent use.
package bridges

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// Connector is one remote network (or one account on it), as the gateway sees it.
// cmd/bridge/run.go builds each connector with its package's New, which does no I/O
// and starts no goroutines, then hands it to the gateway, which runs it: one session
// at a time (Run), retried after back-off, with the other methods called as needed.
//
// Concurrency: Name and Capabilities may be called from any goroutine at any time,
// before, during or after Run. Send and the capability methods are called from the
// gateway's per-destination outbox goroutines, whether or not a session is up (they
// then fail with ErrTransient): calls for different channels may overlap, calls for
// one destination channel never do (the outbox is ordered), so a connector needs no
// ordering logic of its own but must be safe for concurrent use across channels.
//
// The gateway guards every call into a connector: a panic is recovered, logged with its
// stack, and becomes a transient error of that call (for Send and the capability
// methods, a retry of that delivery), so one connector's bug never takes the process
// down.
type Connector interface {
	// Name returns the network name: a ValidNetwork string such as "matrix" or
	// "libera", unique among the gateway's connectors, fixed for the connector's life
	// and across restarts. It is the namespace of every ID the connector builds and
	// the "net" key of its logs and metrics. Called from any goroutine; never blocks.
	Name() string

	// Capabilities returns what the connector's network can show, for the gateway to
	// plan degradations (see Capabilities). Called from any goroutine, possibly
	// before Run; it does no I/O, never blocks and returns the same value every time.
	Capabilities() Capabilities

	// Run serves one session with the network and returns why it ended. It is called
	// by the gateway's supervisor goroutine for this connector, never twice at once,
	// and again after every return but the last: the gateway owns the retry loop.
	//
	// A session: Run reports StateConnecting through h first, connects (or starts
	// listening), reports StateConnected once Send can work, delivers inbound events
	// with h.Deliver until the session ends, and returns only after every goroutine it
	// started has exited. It keeps no goroutine, connection or listener beyond its
	// return; state worth keeping across sessions (caches, counters) lives in the
	// Connector.
	//
	// What Run returns tells the gateway what happened:
	//   - nil: ctx was cancelled (the gateway is stopping). Nothing else returns nil.
	//   - an error wrapping ErrBadCredentials: the network rejected the credentials.
	//     The gateway reports StateBadCredentials with it and retries slowly
	//     (gateway.retry_max), so /readyz shows the problem while the rest works.
	//   - any other error: the session ended (connection lost, server gone, port
	//     taken, a configuration fault found only at run time). The gateway reports
	//     StateTransientDisconnect with it and calls Run again after a jittered,
	//     exponential back-off, which restarts from its minimum after a session that
	//     reached StateConnected.
	// The gateway logs the error; it never stops the process. A panic in Run is
	// recovered, logged with its stack and treated as an error.
	Run(ctx context.Context, h Host) error

	// Send posts out.Event (KindMessage, KindAction or KindNotice; other kinds only if
	// the gateway has degraded them into one of these) to out.Channel and returns the
	// ID the network gave the new message.
	//
	// Called by the gateway's outbox goroutine for out.Channel. It may block on the
	// network, and must return once ctx is done (the gateway sets a deadline per
	// attempt). The connector converts out.Event.Text
	// from canonical text and shows out.Event.Sender as its network allows (the Status
	// user's ghost: a Matrix ghost user, an IRC ghost connection, a Slack username and
	// icon; else a "<name>" prefix).
	//
	// A nil error means the message is posted: the gateway stores the Receipt and marks
	// the outbox entry delivered. A permanent error (IsPermanent) marks the entry failed;
	// any other error is retried later with the same out (and out.Key). Send called
	// while no session is up (before Run, between sessions, after Run returned)
	// returns an error wrapping ErrTransient without blocking. Sending the same out.Key
	// again after a success posts nothing new and returns the same Receipt, where the
	// network or the connector can tell (a transaction ID, a recent-sends memory).
	Send(ctx context.Context, out Outbound) (Receipt, error)
}

// Editor is implemented by connectors whose network can change a posted message.
// Without it (or when Edit returns ErrUnsupported) the gateway sends an edit through
// Send as a new message.
type Editor interface {
	// Edit replaces the text of out.Target with out.Event.Text (a KindEdit event). It is
	// called like Send: on the outbox goroutine for out.Channel, may block until ctx is
	// done, and its error is classified the same way. Receipt.ID is the ID of the edit
	// itself where the network gives edits their own ID, else out.Target.
	Edit(ctx context.Context, out Outbound) (Receipt, error)
}

// Redactor is implemented by connectors whose network can delete a posted message.
// Without it the gateway records the delete and posts nothing.
type Redactor interface {
	// Redact removes out.Target (a KindDelete event). Called like Send: on the outbox
	// goroutine for out.Channel, may block until ctx is done; a nil error marks the
	// entry delivered, a permanent error marks it failed (a message already gone is
	// success, not an error), any other error is retried.
	Redact(ctx context.Context, out Outbound) error
}

// Reactor is implemented by connectors whose network has reactions. Without it the
// gateway may post a short notice through Send, per route configuration.
type Reactor interface {
	// React adds out.Event.Reaction to out.Target (a KindReaction event) as
	// out.Event.Sender. Called like Send: on the outbox goroutine for out.Channel, may
	// block until ctx is done, same error classification. Receipt.ID is the reaction's
	// own ID where the network has one (so that a later KindDelete can remove it), else
	// empty. A reaction key the network does not know returns ErrUnsupported.
	React(ctx context.Context, out Outbound) (Receipt, error)
}

// Joiner is implemented by connectors that serve channels named at run time: the
// gateway calls Join for every channel of a route when the route starts (at its start,
// for the routes in its table, and when a route is added while it runs) and Leave when
// the route is removed. Without it a connector serves the channels of its own
// configuration, and a route can carry only those.
type Joiner interface {
	// Join makes the connector serve ch, a channel of its own network, from now on and
	// in later sessions; serving it already is success. Called on the goroutine that
	// changes the route table, whether a session is up or not; it should not wait for
	// the network (a session that is up may join in the background). An error fails
	// the route's start (a permanent one: the channel can never be served).
	Join(ctx context.Context, ch ChannelID) error
	// Leave stops serving ch; not serving it is success. Called like Join when a route
	// is removed; an error is logged.
	Leave(ctx context.Context, ch ChannelID) error
}

// Host is what the gateway offers a running connector. The gateway implements it and
// passes it to Connector.Run; the connector keeps it only for the duration of that Run
// (each session gets the same Host, so keeping it across sessions is harmless but
// unneeded). bridges/bridgestest has a recording Host for connector tests.
// All methods are safe to call from any of the connector's goroutines.
type Host interface {
	// Deliver hands an inbound event to the gateway. It returns only once the event is
	// persisted (ARCHITECTURE.md decision 4), so it blocks on storage and, when the
	// route's queue is full, on backpressure; it returns early with ctx.Err() when
	// ctx is done, and then the event may or may not have been persisted.
	//
	// A nil error means the gateway owns the event: the connector may acknowledge it to
	// its network (advance a sync token or cursor). Delivering the same Origin again is
	// harmless and returns nil, so a connector that is unsure re-delivers. Events from
	// one goroutine keep their order per channel.
	//
	// An error wrapping ErrInvalidEvent (permanent) means the event breaks
	// Event.Validate and will never be accepted: the connector logs it and moves on.
	// Any other error means the event was not persisted: the connector retries it or
	// re-reads it from the network after reconnecting, and must not acknowledge it.
	// Events whose Sender.IsBridge is set, or for channels with no route, are accepted
	// (nil) and discarded by the gateway.
	Deliver(ctx context.Context, ev Event) error

	// ReportState records the connector's connection state for /readyz and metrics.
	// err is the cause (nil for StateConnected; a short, secret-free error otherwise).
	// It never blocks and has no result; the latest report wins. A session reports
	// StateConnecting first and StateConnected once up; the states after a session
	// ended (StateTransientDisconnect, StateBadCredentials) are the gateway's, from
	// Run's result, though a connector may report a loss it recovers from within the
	// session (a reconnecting websocket).
	ReportState(s State, err error)

	// Logger returns the connector's logger, with the "net" key already set. The
	// connector logs through it (STYLE.md rule 20) and never through slog.Default.
	Logger() *slog.Logger
}

// QueueingHost is a Host that can also take an event without waiting for it to be
// persisted (the gateway's Host is one). A connector whose network acknowledges
// nothing (IRC: a line is never confirmed to its sender) uses it to keep many events
// in flight, so that the gateway persists them together (one commit for all) instead
// of one commit per event; a connector that acknowledges (an HTTP answer, a Matrix
// transaction, a cursor) calls Deliver, or acknowledges only after persisted says nil.
// Find it by type assertion on the Host passed to Run.
type QueueingHost interface {
	Host
	// DeliverQueued checks ev as Deliver does and gives it its place in the gateway's
	// order: events queued by one goroutine keep their order per channel, as with
	// Deliver. It returns once ev is queued (it may block on backpressure, and returns
	// early when ctx is done). persisted then receives exactly one value, what Deliver
	// would have returned: nil once ev is persisted (or accepted and discarded), or the
	// error (classified as Deliver's) that kept it from being persisted; a connector
	// that keeps events in flight must wait for it before it stops, so that no goroutine
	// of its session outlives Run.
	DeliverQueued(ctx context.Context, ev Event) (persisted <-chan error)
}

// Capabilities describes what a connector's network (as configured) can show. The
// gateway reads it before every delivery to shape what it sends (core/gateway's
// connDest); optional operations are offered by the capability interfaces, not by flags
// here. The zero value means: no limit on length, no replies, edits without a time
// limit.
type Capabilities struct {
	// MaxTextLen is the longest text, in bytes of canonical text, that one message may
	// hold; 0 means no limit below MaxTextLen. The gateway splits a longer text into
	// marked parts at paragraph, then line, then rune boundaries, or cuts it, as the
	// route's long-text policy says; the connector still shapes what it converts.
	MaxTextLen int
	// Replies is true if the network shows a message as an answer to another; when
	// false the gateway renders Event.ReplyTo as a quote at the top of the text (the
	// answered message's author and first line) and sends no Outbound.ReplyTo.
	Replies bool
	// EditWindow is how long after posting an Editor may still edit a message; 0 means
	// no limit. The gateway sends an edit of an older message as a new message.
	EditWindow time.Duration
}

// State is a connector's connection state, as reported through Host.ReportState and
// shown by /readyz ("ready" means StateConnected) and the connector_state metric.
type State uint8

// The states. StateUnknown is what the gateway shows before the first report.
const (
	StateUnknown             State = iota
	StateConnecting                // first connection attempt in progress
	StateConnected                 // connected and authenticated; Send can work
	StateTransientDisconnect       // connection lost; reconnecting with backoff
	StateBadCredentials            // the network rejected the credentials; needs an operator
)

var stateNames = [...]string{
	StateUnknown: "unknown", StateConnecting: "connecting", StateConnected: "connected",
	StateTransientDisconnect: "transient_disconnect", StateBadCredentials: "bad_credentials",
}

// String returns the snake_case name used in logs, metrics and /readyz
// ("transient_disconnect"), or "State(n)".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

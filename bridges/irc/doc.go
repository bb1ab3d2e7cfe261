// Package irc is the IRC connector: one relay connection per network, made with
// github.com/lrstanley/girc, that joins the configured channels, delivers what IRC users
// say there to the gateway (Host.Deliver) and posts what the gateway sends as
// "<nick> text" lines (Send), with /me as CTCP ACTION, and edits as short
// "<nick> * correction: text" lines (Edit). After a lost connection comes back it tells
// the other side, once per channel, how long it was away (gap.go): IRC keeps no history.
// With Config.Ghosts, the busiest Status senders get IRC connections of their own
// (ghost.go): capped, closed when idle, with sanitised nicks; the rest is relayed.
//
// It owns the IRC wire's safety: every outgoing line goes through sanitize and shape
// (convert.go), so no CR, LF, NUL or CTCP delimiter from another network reaches the
// wire, lines fit 512 bytes, and long messages are capped with a visible summary. It
// rate-limits its own writes with a token bucket (girc's limiter is off) and blocks
// Send when the bucket is empty: back-pressure, never a drop. Send returns only after
// the server answered a PING written after the message's lines (barrier.go), so a
// message is reported posted only once the server has read it.
//
// It imports only the standard library, bridges, girc and golang.org/x/time/rate. It
// does not know routes, Status or storage.
package irc

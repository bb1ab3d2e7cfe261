package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/whisper"
)

// SyncStore keeps each chat's progress; see mailserver.SyncStore (package store
// implements it on SQLite and PostgreSQL).
type SyncStore = mailserver.SyncStore

// HistoryProgress is reported while a chat catches up.
type HistoryProgress struct {
	Chat      string
	Envelopes uint64    // delivered by the mailserver so far in this catch-up
	Covered   time.Time // history before this time is in
	To        time.Time // the catch-up's end
	Done      bool
}

// HistoryConfig turns on catch-up from mailservers.
type HistoryConfig struct {
	// Client requests history; see mailserver.NewClient. Required for SyncHistory.
	Client *mailserver.Client
	// Store keeps each chat's progress. Default: in memory.
	Store SyncStore
	// Window is how far back a chat never synced before is fetched, and the furthest
	// back any catch-up reaches. Default DefaultHistoryWindow (24 h).
	Window time.Duration
	// OutageMargin is how far before an outage's start the catch-up after it asks from
	// (never further back than Window): the link died before the outage began (a dead
	// link is dropped after devp2p's 30 s read timeout), and an envelope reaches a node
	// up to its TTL after its timestamp, which the mailserver's range is on. Default
	// DefaultOutageMargin (5 min, the longest TTL a pool admits, so envelopes of any
	// TTL are covered).
	OutageMargin time.Duration
	// Mailservers, when set, makes every joined chat catch up by itself, at join and
	// after each outage (OutageSynced), on a goroutine the chat owns (Leave waits for it): it returns the candidate
	// mailservers as enode URLs, best first: trusted ones (the node dials those itself)
	// and found ones (found by discovery: the catch-up dials up to three of them as
	// trusted peers, and drops those it did not use). The first candidate connected is
	// asked (SyncHistory); on failure, the next. The catch-up waits on peer events
	// (the Transport must implement MailserverPeers, as *node.Node does) and on
	// MailserversChanged, never on a timer. Default nil: call SyncHistory yourself.
	Mailservers func() (trusted, found []string)
	// MailserversChanged, if set, returns a channel closed when Mailservers may next
	// return new candidates (discovery found one).
	MailserversChanged func() <-chan struct{}
	// Synced, if set, is called once per chat when its own catch-up at join has ended
	// (with nil, or the last error), on the catch-up goroutine.
	Synced func(chat string, err error)
	// OutageSynced, if set, is called when a chat's own catch-up after an outage has
	// ended (with nil, or the last error), on the catch-up goroutine. A chat catches up
	// after each outage its Transport reports (Outages, as *node.Node does): what was
	// posted while the node had no peer, or slept, is only in mailservers.
	OutageSynced func(chat string, outage whisper.Outage, err error)
}

// MailserverPeers is what a chat's own catch-up needs of the Transport beyond
// Transport: the mailserver peers and their comings and goings. *node.Node implements
// it.
type MailserverPeers interface {
	// Peer returns the connected peer with that ID, or nil.
	Peer(id enode.ID) *whisper.Peer
	// PeersChanged returns a channel closed when the next peer joins or leaves.
	PeersChanged() <-chan struct{}
	// AddPeer dials url (as a trusted peer); RemovePeer disconnects it.
	AddPeer(url string, trusted bool) error
	RemovePeer(url string) error
}

// Outages is what a chat's own catch-up needs of the Transport to catch up again after
// an outage (whisper.Outage: no peer, or the clock jumped, for longer than the node's
// threshold): the node's record of them. *node.Node implements it; without it a
// chat's catch-up runs once, at join.
type Outages interface {
	OutageSince(seq uint64) (whisper.Outage, bool)
}

// DefaultOutageMargin is HistoryConfig.OutageMargin's default: a dead link is noticed
// (devp2p's ping, its 30 s read timeout) after the last envelope that came through it,
// and a mailserver archives an envelope when it reaches it, which may be later than its
// creation by up to its TTL (the pool's longest, whisper.DefaultMaxTTL, is 5 min).
const DefaultOutageMargin = 5 * time.Minute

// DefaultHistoryWindow is HistoryConfig.Window's default.
const DefaultHistoryWindow = 24 * time.Hour

// maxDialled is how many found mailservers one catch-up dials at once.
const maxDialled = 3

// catchUpResumes bounds how often a catch-up cut by one mailserver disconnecting
// resumes from it when it is back.
const catchUpResumes = 10

// catchUp is the chat's own catch-up (HistoryConfig.Mailservers): at join, the chat's
// history since the last sync; then, if the Transport reports outages (Outages), after
// each one the history since its start (less OutageMargin, at most Window back), so
// that what was posted while the node was cut off or asleep arrives too. Rounds run
// one at a time, each from the first candidate mailserver that is connected and
// answers. Messages already delivered are not delivered again (the chat's dedupe).
func (ch *Chat) catchUp(ctx context.Context, peers MailserverPeers) {
	h := ch.c.cfg.History
	out, watch := ch.c.tr.(Outages)
	var seq uint64 // outages up to seq are covered by the catch-up at join
	if watch {
		if o, ok := out.OutageSince(0); ok {
			seq = o.Seq
		}
	}
	err := ch.catchUpRound(ctx, peers, time.Time{})
	if h.Synced != nil {
		h.Synced(ch.name, err)
	}
	for watch && ctx.Err() == nil {
		changed := peers.PeersChanged()
		o, ok := out.OutageSince(seq)
		if !ok {
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		seq = o.Seq
		ch.c.log.Info("history catch-up after an outage", "chat", ch.name, "outage_from", o.From, "outage_to", o.To)
		err := ch.catchUpRound(ctx, peers, o.From.Add(-h.OutageMargin))
		if ctx.Err() != nil {
			return
		}
		if h.OutageSynced != nil {
			h.OutageSynced(ch.name, o, err)
		}
	}
}

// catchUpRound syncs the chat's history (from notBefore at the earliest, when not zero)
// from the first candidate mailserver that is connected and answers; a round cut by
// the mailserver disconnecting (a restart) resumes from the last page's cursor (the
// chat's sync state) once it, or another, is connected again. It returns nil once one
// answered, or the last error when ctx ends.
func (ch *Chat) catchUpRound(ctx context.Context, peers MailserverPeers, notBefore time.Time) (lastErr error) {
	h := ch.c.cfg.History
	log := ch.c.log
	tried := map[enode.ID]bool{}
	resumes := map[enode.ID]int{} // catch-ups cut by that mailserver disconnecting
	dialled := map[enode.ID]string{}
	defer func() {
		for _, u := range dialled {
			_ = peers.RemovePeer(u)
		}
	}()
	for {
		peersChanged := peers.PeersChanged()
		var found <-chan struct{}
		if h.MailserversChanged != nil {
			found = h.MailserversChanged()
		}
		trusted, discovered := h.Mailservers()
		var candidates []*enode.Node
		for i, u := range append(trusted, discovered...) {
			n, err := enode.ParseV4(u)
			if err != nil || tried[n.ID()] {
				continue
			}
			if _, ok := dialled[n.ID()]; !ok && i >= len(trusted) && len(dialled) < maxDialled {
				if peers.AddPeer(u, true) == nil {
					dialled[n.ID()] = u
				}
			}
			candidates = append(candidates, n)
		}
		for _, n := range candidates {
			p := peers.Peer(n.ID())
			if p == nil {
				continue
			}
			tried[n.ID()] = true
			lastErr = ch.syncHistory(ctx, p, func(pr HistoryProgress) {
				log.Info("history", "chat", pr.Chat, "envelopes", pr.Envelopes, "covered", pr.Covered, "done", pr.Done)
			}, notBefore)
			if lastErr == nil {
				delete(dialled, n.ID()) // keep the mailserver that answered
				return nil
			}
			if ctx.Err() != nil {
				return lastErr
			}
			if errors.Is(lastErr, mailserver.ErrPeerGone) && resumes[n.ID()] < catchUpResumes {
				resumes[n.ID()]++
				tried[n.ID()] = false
				log.Warn("history catch-up cut: the mailserver disconnected; resuming when it is back", "chat", ch.name,
					"mailserver", n.ID().TerminalString(), "err", lastErr)
				continue
			}
			log.Warn("history catch-up failed; trying the next mailserver", "chat", ch.name,
				"mailserver", n.ID().TerminalString(), "err", lastErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-peersChanged:
		case <-found:
		}
	}
}

// SyncHistory fetches the chat's history from the mailserver peer p, from where the last
// sync stopped (or Window ago) until now, resuming an interrupted range from its cursor.
// The messages arrive on Messages like live ones, each once. progress, if not nil, is
// called after every page.
func (ch *Chat) SyncHistory(ctx context.Context, p *whisper.Peer, progress func(HistoryProgress)) error {
	return ch.syncHistory(ctx, p, progress, time.Time{})
}

// syncHistory is SyncHistory from notBefore at the earliest (and at most Window back)
// when notBefore is not zero: an outage's catch-up, which need not fetch again what
// arrived live since the last sync.
func (ch *Chat) syncHistory(ctx context.Context, p *whisper.Peer, progress func(HistoryProgress), notBefore time.Time) error {
	h := ch.c.cfg.History
	if h.Client == nil {
		return fmt.Errorf("sync history of %q: no mailserver client configured", ch.name)
	}
	store := h.Store
	if store == nil {
		store = ch.c.memSync
	}
	st, ok, err := store.LoadSync(ctx, ch.name)
	if err != nil {
		return fmt.Errorf("sync history of %q: %w", ch.name, err)
	}
	now := ch.c.cfg.Clock()
	req := mailserver.History{Topics: []whisper.Topic{ch.topic}, From: now.Add(-h.Window), To: now}
	if ok {
		req.From = st.Covered
		if len(st.Cursor) > 0 && !st.To.IsZero() {
			req.Cursor, req.To = st.Cursor, st.To
		}
	}
	if !notBefore.IsZero() && req.Cursor == nil {
		req.From = later(req.From, later(notBefore, now.Add(-h.Window)))
	}
	report := func(pr mailserver.Progress) {
		next := mailserver.SyncState{Covered: pr.Covered, Cursor: pr.Cursor}
		if len(pr.Cursor) > 0 {
			next.To = req.To
		}
		if err := store.SaveSync(ctx, ch.name, next); err != nil {
			ch.c.log.Warn("status history progress not saved", "chat", ch.name, "err", err)
		}
		if progress != nil {
			progress(HistoryProgress{Chat: ch.name, Envelopes: pr.Envelopes, Covered: pr.Covered, To: req.To, Done: pr.Done})
		}
	}
	pr, err := h.Client.Request(ctx, p, req, report)
	if err != nil {
		return fmt.Errorf("sync history of %q: %w", ch.name, err)
	}
	report(pr)
	if req.To.Before(now) {
		// That finished a range interrupted in an earlier run; now fetch the rest, up to
		// now. (The next call starts at req.To, so this recurses once.)
		return ch.syncHistory(ctx, p, progress, notBefore)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

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
	// Window is how far back a chat never synced before is fetched. Default 24 h.
	Window time.Duration
	// Mailservers, when set, makes every joined chat catch up by itself, once, on a
	// goroutine the chat owns (Leave waits for it): it returns the candidate
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
	// Synced, if set, is called once per chat when its own catch-up has ended (with
	// nil, or the last error), on the catch-up goroutine.
	Synced func(chat string, err error)
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

// maxDialled is how many found mailservers one catch-up dials at once.
const maxDialled = 3

// catchUpResumes bounds how often a catch-up cut by one mailserver disconnecting
// resumes from it when it is back.
const catchUpResumes = 10

// catchUp is the chat's own catch-up (HistoryConfig.Mailservers): the chat's history
// since the last sync, from the first candidate mailserver that is connected and
// answers. A catch-up cut by the mailserver disconnecting (a restart) resumes from the
// last page's cursor (the chat's sync state) once it, or another, is connected again.
func (ch *Chat) catchUp(ctx context.Context, peers MailserverPeers) {
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
	var lastErr error
	defer func() {
		if h.Synced != nil {
			h.Synced(ch.name, lastErr)
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
			lastErr = ch.SyncHistory(ctx, p, func(pr HistoryProgress) {
				log.Info("history", "chat", pr.Chat, "envelopes", pr.Envelopes, "covered", pr.Covered, "done", pr.Done)
			})
			if lastErr == nil {
				delete(dialled, n.ID()) // keep the mailserver that answered
				return
			}
			if ctx.Err() != nil {
				return
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
			lastErr = ctx.Err()
			return
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
		return ch.SyncHistory(ctx, p, progress)
	}
	return nil
}

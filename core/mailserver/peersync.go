package mailserver

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

// Mailserver ⇄ mailserver sync (PROTOCOL.md §4.4, status-go's whisper/mailserver.go):
// code 123 carries a SyncMailRequest, answered by code-124 SyncResponses, each with a
// batch of archived envelopes, the last one marked Final with the cursor of the next
// round (or carrying an error). Requests carry no ID: one sync per peer at a time.

// syncMailRequest is status-go's SyncMailRequest.
type syncMailRequest struct {
	Lower, Upper uint32
	Bloom        []byte
	Limit        uint32
	Cursor       []byte
}

// syncResponse is status-go's SyncResponse (RawSyncResponse when sent).
type syncResponse struct {
	Envelopes []rlp.RawValue
	Cursor    []byte
	Final     bool
	Error     string
}

// maxSyncLimit is status-go's MaxLimitInSyncMailRequest: a round's Limit is 1..1000.
const maxSyncLimit = 1000

// syncRound is what a sync round from a peer produced, filled by HandleSyncResponse.
type syncRound struct {
	lower, upper uint32
	archived     int // envelopes of the round handed to the archive
	dropped      int // malformed or outside [lower, upper]
	final        chan syncResponse
}

// HandleSyncRequest answers a peer mailserver's sync request (whisper.SyncHandler): the
// envelopes of the range in code-124 batches of at most MaxBatchBytes, then a final
// response with the cursor of the next round. It shares the history requests' rate
// limits, concurrency bound and byte budget (a round is one page). A bad request is
// answered with a response carrying the error (status-go disconnects instead); only a
// failed write is returned.
func (s *Server) HandleSyncRequest(p *whisper.Peer, body []byte) error {
	s.stats.mu.Lock()
	s.stats.syncRequests++
	s.stats.mu.Unlock()
	if err := s.limiter.allow(p.ID(), s.cfg.Clock()); err != nil {
		return s.failSync(p, err)
	}
	var req syncMailRequest
	if err := rlp.DecodeBytes(body, &req); err != nil {
		return s.failSync(p, fmt.Errorf("%w: sync request: %w", ErrBadRequest, err))
	}
	if req.Upper == 0 {
		req.Upper = uint32(s.cfg.Clock().Unix() + 60)
	}
	if req.Limit == 0 || req.Limit > maxSyncLimit {
		return s.failSync(p, fmt.Errorf("%w: sync limit %d, want 1 to %d", ErrBadRequest, req.Limit, maxSyncLimit))
	}
	if req.Lower > req.Upper {
		return s.failSync(p, fmt.Errorf("%w: sync lower %d > upper %d", ErrBadRequest, req.Lower, req.Upper))
	}
	r := Request{}
	if err := r.setBloom(req.Bloom); err != nil {
		return s.failSync(p, err)
	}
	if err := r.setCursor(req.Cursor); err != nil {
		return s.failSync(p, err)
	}
	busy := time.NewTimer(s.cfg.BusyTimeout)
	select {
	case s.serving <- struct{}{}:
		busy.Stop()
	case <-busy.C:
		return s.failSync(p, fmt.Errorf("%w: %d requests being served for %v", ErrBusy, cap(s.serving), s.cfg.BusyTimeout))
	}
	defer func() { <-s.serving }()
	envs, next, err := s.archive.Query(context.Background(), Query{Lower: req.Lower, Upper: req.Upper, Bloom: r.Bloom,
		Limit: int(req.Limit), MaxBytes: s.cfg.MaxResponseBytes, Cursor: r.Cursor})
	if err != nil {
		return s.failSync(p, fmt.Errorf("query archive: %w", err))
	}
	for len(envs) > 0 {
		n, size := 0, 0
		for n < len(envs) && (n == 0 || size+len(envs[n]) < s.cfg.MaxBatchBytes-64) {
			size += len(envs[n])
			n++
		}
		batch := make([]rlp.RawValue, n)
		for i := range batch {
			batch[i] = envs[i]
		}
		if err := s.sendSync(p, syncResponse{Envelopes: batch}); err != nil {
			return err
		}
		envs = envs[n:]
	}
	if err := s.sendSync(p, syncResponse{Cursor: next, Final: true}); err != nil {
		return err
	}
	s.log.Debug("mailserver sync served", "peer", p.ID().TerminalString(), "lower", req.Lower, "upper", req.Upper, "more", len(next) > 0)
	return nil
}

func (s *Server) failSync(p *whisper.Peer, cause error) error {
	s.stats.mu.Lock()
	s.stats.failed++
	s.stats.mu.Unlock()
	s.log.Debug("mailserver sync request refused", "peer", p.ID().TerminalString(), "err", cause)
	return s.sendSync(p, syncResponse{Error: cause.Error()})
}

func (s *Server) sendSync(p *whisper.Peer, r syncResponse) error {
	if r.Cursor == nil {
		r.Cursor = []byte{}
	}
	if r.Envelopes == nil {
		r.Envelopes = []rlp.RawValue{}
	}
	body, err := rlp.EncodeToBytes(&r)
	if err != nil {
		return fmt.Errorf("encode sync response: %w", err)
	}
	if err := p.SendSyncResponse(body); err != nil {
		return fmt.Errorf("%w: %w", errPeerWrite, err)
	}
	return nil
}

// HandleSyncResponse takes a peer mailserver's code-124 answer (whisper.SyncHandler):
// during a sync from that peer (SyncFrom), its envelopes within the round's range go to
// the archive like received ones; anything else is dropped and counted.
func (s *Server) HandleSyncResponse(p *whisper.Peer, body []byte) {
	s.syncMu.Lock()
	round := s.syncing[p.ID()]
	s.syncMu.Unlock()
	if round == nil {
		s.stats.mu.Lock()
		s.stats.syncUnsolicited++
		s.stats.mu.Unlock()
		s.log.Debug("mailserver sync response ignored: no sync with this peer", "peer", p.ID().TerminalString())
		return
	}
	var resp syncResponse
	if err := rlp.DecodeBytes(body, &resp); err != nil {
		resp = syncResponse{Error: fmt.Sprintf("malformed sync response: %v", err)}
	}
	archived, dropped := 0, 0
	for _, raw := range resp.Envelopes {
		env, err := whisper.DecodeEnvelope(raw)
		if err != nil || env.Sent() < round.lower || env.Sent() > round.upper {
			dropped++
			continue
		}
		s.Archive(env)
		archived++
	}
	s.syncMu.Lock()
	round.archived += archived
	round.dropped += dropped
	s.syncMu.Unlock()
	if resp.Final || resp.Error != "" {
		select {
		case round.final <- resp:
		default: // a second final in the same round: the first one counts
		}
	}
}

// SyncResult is what a sync from a peer mailserver fetched.
type SyncResult struct {
	Rounds   int
	Archived int // envelopes handed to the archive (those it already had are skipped there)
	Dropped  int // malformed or outside the range asked for
}

// SyncFrom fetches [from, to] of peer p's archive into ours with status-go's mailserver
// sync (codes 123/124), round after round of at most 1,000 envelopes until p's final
// response has no cursor. Each round waits up to SyncTimeout for p's final response; a
// disconnect ends it with ErrPeerGone. Envelopes we already hold are skipped by the
// archive, so a range may overlap what we have.
func (s *Server) SyncFrom(ctx context.Context, p *whisper.Peer, from, to time.Time) (res SyncResult, err error) {
	lower, upper := uint32(max(from.Unix(), 0)), uint32(max(to.Unix(), 0))
	if lower > upper {
		return res, fmt.Errorf("%w: sync from %v to %v", ErrBadRequest, from, to)
	}
	round := &syncRound{lower: lower, upper: upper, final: make(chan syncResponse, 1)}
	s.syncMu.Lock()
	if s.syncing[p.ID()] != nil {
		s.syncMu.Unlock()
		return res, fmt.Errorf("sync from %s: already syncing from it", p.ID().TerminalString())
	}
	s.syncing[p.ID()] = round
	s.syncMu.Unlock()
	defer func() {
		s.syncMu.Lock()
		delete(s.syncing, p.ID())
		res.Archived, res.Dropped = round.archived, round.dropped
		s.syncMu.Unlock()
	}()
	full := whisper.FullBloom()
	var cursor []byte
	for {
		body, err := rlp.EncodeToBytes(&syncMailRequest{Lower: lower, Upper: upper, Bloom: full[:], Limit: maxSyncLimit,
			Cursor: append([]byte{}, cursor...)})
		if err != nil {
			return res, err
		}
		s.syncMu.Lock()
		before := round.archived
		s.syncMu.Unlock()
		if err := p.SendSyncRequest(body); err != nil {
			return res, fmt.Errorf("sync from %s: %w: %w", p.ID().TerminalString(), ErrPeerGone, err)
		}
		timeout := time.NewTimer(s.cfg.SyncTimeout)
		var resp syncResponse
		select {
		case resp = <-round.final:
			timeout.Stop()
		case <-timeout.C:
			return res, fmt.Errorf("sync from %s: no final response within %v", p.ID().TerminalString(), s.cfg.SyncTimeout)
		case <-p.Done():
			timeout.Stop()
			return res, fmt.Errorf("sync from %s: %w", p.ID().TerminalString(), ErrPeerGone)
		case <-ctx.Done():
			timeout.Stop()
			return res, ctx.Err()
		}
		res.Rounds++
		if resp.Error != "" {
			return res, fmt.Errorf("sync from %s: the peer refused: %s", p.ID().TerminalString(), resp.Error)
		}
		if len(resp.Cursor) == 0 {
			s.log.Info("mailserver synced from peer", "peer", p.ID().TerminalString(), "from", from, "to", to,
				"rounds", res.Rounds, "envelopes", round.archived)
			return res, nil
		}
		s.syncMu.Lock()
		progressed := round.archived > before
		s.syncMu.Unlock()
		// A round that ends with a cursor reached its limit; one that brought nothing, or
		// the same cursor again, would go on forever.
		if !progressed || bytes.Equal(resp.Cursor, cursor) {
			return res, fmt.Errorf("sync from %s: a cursor without progress", p.ID().TerminalString())
		}
		cursor = resp.Cursor
	}
}

// SyncPeers is what RunSync needs of the node: its peers, their comings and goings and
// its outages. *node.Node and *whisper.Service implement it.
type SyncPeers interface {
	// Peer returns the connected peer with that ID, or nil.
	Peer(id enode.ID) *whisper.Peer
	// PeersChanged returns a channel closed at the next peer change or outage.
	PeersChanged() <-chan struct{}
	// OutageSince returns the outages recorded after seq as one (whisper.Service's).
	OutageSince(seq uint64) (whisper.Outage, bool)
}

// GapSync is one gap round of RunSync, reported to ServerConfig.GapSynced.
type GapSync struct {
	// Outage is the outage whose gap the round filled; zero for the round at start
	// (the gap left by our downtime).
	Outage whisper.Outage
	// From is where the round started: where the archive stopped, less SyncMargin, and
	// at most SyncWindow back.
	From time.Time
	// Archived counts the envelopes fetched from every peer (those the archive already
	// held are skipped there).
	Archived int
}

// RunSync keeps our archive whole from peer mailservers (their IDs in ids) until ctx
// ends. Once Run has found where the archive stops (its newest envelope, less
// SyncMargin, or SyncWindow ago for an empty archive), it fills that gap: it syncs from
// there to now from each peer as soon as it is connected, once per peer, retrying with
// back-off while a sync fails (a disconnect waits for the peer to come back). Then,
// whenever the node reports an outage (whisper.Outage: no peer, or a clock jump, for
// longer than its threshold), it fills that gap the same way, from the outage's start
// less SyncMargin. Rounds run one at a time, at most one per GapSyncInterval (outages
// meanwhile are merged into the next round), and never reach further back than
// SyncWindow.
func (s *Server) RunSync(ctx context.Context, peers SyncPeers, ids []enode.ID) error {
	var seq uint64 // outages up to seq are covered by the start gap
	if o, ok := peers.OutageSince(0); ok {
		seq = o.Seq
	}
	select {
	case <-s.gapKnown:
	case <-ctx.Done():
		return nil
	}
	s.fillGap(ctx, peers, ids, GapSync{From: s.gapFrom})
	cool := time.NewTimer(s.cfg.GapSyncInterval)
	defer cool.Stop()
	cooled := false
	for ctx.Err() == nil {
		changed := peers.PeersChanged()
		o, ok := peers.OutageSince(seq)
		if !ok {
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		if !cooled {
			s.log.Info("mailserver: outage; its gap is synced when the last round is GapSyncInterval old", "from", o.From, "to", o.To)
			select {
			case <-ctx.Done():
				return nil
			case <-cool.C:
				cooled = true
			}
			continue // outages recorded meanwhile join this round
		}
		seq = o.Seq
		from := o.From.Add(-s.cfg.SyncMargin)
		if oldest := s.cfg.Clock().Add(-s.cfg.SyncWindow); from.Before(oldest) {
			from = oldest
		}
		s.log.Info("mailserver: outage; syncing its gap from peer mailservers", "outage_from", o.From, "outage_to", o.To, "from", from)
		s.fillGap(ctx, peers, ids, GapSync{Outage: o, From: from})
		cool.Reset(s.cfg.GapSyncInterval)
		cooled = false
	}
	return nil
}

// gapRetryTick is how often fillGap looks at peers in back-off again.
const gapRetryTick = 500 * time.Millisecond

// fillGap syncs round.From to now from each of ids as soon as it is connected, once
// per peer, retrying with back-off (counted in ticks of gapRetryTick, not read from a
// clock) while a sync fails. It returns when every peer is done or ctx ends, and
// reports the round to GapSynced.
func (s *Server) fillGap(ctx context.Context, peers SyncPeers, ids []enode.ID, round GapSync) {
	pending := append([]enode.ID(nil), ids...)
	var ticks int64
	wait := map[enode.ID]int64{} // no attempt before this tick
	backoff := map[enode.ID]time.Duration{}
	tick := time.NewTicker(gapRetryTick)
	defer tick.Stop()
	for len(pending) > 0 {
		changed := peers.PeersChanged()
		for i := 0; i < len(pending); i++ {
			id := pending[i]
			p := peers.Peer(id)
			if p == nil || ticks < wait[id] {
				continue
			}
			res, err := s.SyncFrom(ctx, p, round.From, s.cfg.Clock().Add(60*time.Second))
			round.Archived += res.Archived
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				s.log.Info("mailserver gap filled", "peer", id.TerminalString(), "from", round.From, "envelopes", res.Archived)
				pending = append(pending[:i], pending[i+1:]...)
				i--
				continue
			}
			b := min(max(2*backoff[id], 3*time.Second), 5*time.Minute)
			backoff[id], wait[id] = b, ticks+int64(b/gapRetryTick)
			s.log.Warn("mailserver gap sync failed; will retry", "peer", id.TerminalString(), "in", b, "err", err)
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			ticks++
		case <-changed:
		}
	}
	s.flushed(ctx)
	if s.cfg.GapSynced != nil {
		s.cfg.GapSynced(round)
	}
}

// findGap records where the archive stops, before Run writes anything: what RunSync asks
// peer mailservers for.
func (s *Server) findGap(ctx context.Context) {
	defer close(s.gapKnown)
	now := s.cfg.Clock()
	s.gapFrom = now.Add(-s.cfg.SyncWindow)
	newest, ok, err := s.archive.Newest(ctx)
	if err != nil {
		s.log.Warn("mailserver: newest archived envelope unknown; a gap sync covers the sync window", "err", err)
		return
	}
	if ok {
		if t := time.Unix(int64(newest), 0).Add(-s.cfg.SyncMargin); t.After(s.gapFrom) {
			s.gapFrom = t
		}
	}
	if s.gapFrom.After(now) {
		s.gapFrom = now.Add(-s.cfg.SyncMargin)
	}
}

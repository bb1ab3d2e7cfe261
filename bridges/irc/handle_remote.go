package irc

import (
	"strings"

	"github.com/lrstanley/girc"

	"github.com/statusgate/statusgate/bridges"
)

// inbound converts a channel PRIVMSG, ACTION or NOTICE into an Event; ok is false for
// anything else (private messages, other CTCPs, unconfigured channels, server notices).
func (c *Connector) inbound(s *session, cl *girc.Client, e girc.Event) (bridges.Event, bool) {
	if e.Source == nil || len(e.Params) < 2 || e.Source.Ident == "" || !e.IsFromChannel() || !c.configured(e.Params[0]) {
		return bridges.Event{}, false
	}
	kind, text := bridges.KindMessage, e.Last()
	switch {
	case e.Command == girc.NOTICE:
		kind = bridges.KindNotice
	case e.IsAction():
		kind, text = bridges.KindAction, e.StripAction()
	case strings.HasPrefix(text, "\x01"): // other CTCP: not chat
		return bridges.Event{}, false
	}
	text = toCanonical(text)
	if strings.TrimSpace(text) == "" {
		return bridges.Event{}, false
	}
	log := c.log.Load()
	chID, err := channelID(c.cfg.Name, e.Params[0])
	if err != nil {
		return bridges.Event{}, false
	}
	account, _ := e.Tags.Get("account")
	if account == "" {
		if u := cl.LookupUser(e.Source.Name); u != nil {
			account = u.Extras.Account
		}
	}
	uid, err := userID(c.cfg.Name, account, e.Source.Name, e.Source.Ident, e.Source.Host)
	if err != nil {
		log.Debug("irc sender ignored", "err", err)
		return bridges.Event{}, false
	}
	id, err := msgID(c.cfg.Name, e.Params[0], s.start, s.seq.Add(1))
	if err != nil {
		return bridges.Event{}, false
	}
	t := e.Timestamp
	if t.IsZero() {
		t = c.now()
	}
	return bridges.Event{
		Kind:   kind,
		Origin: bridges.Origin{Network: c.cfg.Name, Channel: chID, ID: id},
		Sender: bridges.Sender{ID: uid, Name: e.Source.Name, IsBridge: c.isBridgeNick(cl, e.Source.Name)},
		Text:   text,
		Time:   t,
	}, true
}

// isBridgeNick reports whether nick is the relay connection's own or a ghost's
// (ghost.go): their lines are the bridge's echoes, which must not come back.
func (c *Connector) isBridgeNick(cl *girc.Client, nick string) bool {
	return foldName(nick) == foldName(cl.GetNick()) || c.ghosts.isGhost(nick)
}

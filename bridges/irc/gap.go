package irc

import (
	"context"
	"net"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// announceGap tells the other side of every joined channel, once per reconnection,
// that the bridge was away: IRC keeps no history, so what was said meanwhile is gone
// and the bridge says so instead of pretending nothing happened. It is called on
// girc's exec goroutine when session s has joined every channel, and queues one
// KindNotice per joined channel on events (blocking, like received lines).
//
// The notice comes from the server's own sender ID (name:server/<host>), not the
// bridge's nick: the gateway discards events whose Sender.IsBridge is set, and this one
// must reach Status. The count of missed lines is unknown: a server offering IRCv3
// CHATHISTORY could tell, but the connector does not use it yet, so the text says
// "may have been missed".
func (c *Connector) announceGap(ctx context.Context, s *session, events chan<- bridges.Event) {
	lost := c.lostAt.Swap(0)
	if lost == 0 {
		return
	}
	now := c.now()
	away := now.Sub(time.Unix(0, lost))
	host, _, _ := net.SplitHostPort(c.cfg.Server)
	sender, err := serverUserID(c.cfg.Name, host)
	if err != nil {
		return
	}
	text := gapText(c.cfg.Name, host, away)
	log := c.log.Load()
	for _, ch := range c.cfg.Channels {
		if !s.isJoined(ch.Name) {
			continue
		}
		chID, err1 := channelID(c.cfg.Name, ch.Name)
		id, err2 := gapID(c.cfg.Name, ch.Name, s.start)
		if err1 != nil || err2 != nil {
			continue
		}
		ev := bridges.Event{
			Kind:   bridges.KindNotice,
			Origin: bridges.Origin{Network: c.cfg.Name, Channel: chID, ID: id},
			Sender: bridges.Sender{ID: sender, Name: host},
			Text:   text,
			Time:   now,
		}
		log.Info("irc gap announced", "chat", ch.Name, "away", away.Round(time.Millisecond))
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// gapText is the announcement: network, server and how long, rounded to the second.
func gapText(network, host string, away time.Duration) string {
	d := "under a second"
	if away >= time.Second {
		d = away.Round(time.Second).String()
	}
	return "The bridge was disconnected from IRC network " + network + " (" + host + ") for " + d +
		"; messages sent on IRC meanwhile may have been missed."
}

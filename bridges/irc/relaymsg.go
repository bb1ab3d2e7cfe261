package irc

import (
	"strings"

	"github.com/lrstanley/girc"
)

// IRCv3 draft/relaymsg (https://github.com/ircv3/ircv3-specifications/pull/417, as ergo
// implements it): a server that advertises "draft/relaymsg=<separators>" lets a
// privileged client post a line as a made-up nick that holds one of the separators,
// "RELAYMSG #channel alice/status :text", so relayed users look like users and not
// "<alice>" prefixes.
//
// Only the line building is here, unit-tested: no server the tests can run (ngircd)
// offers the capability, and a rejected RELAYMSG comes back as a FAIL that only
// labeled-response ties to the Send that caused it, so switching Send over without
// both would risk silent loss. Send keeps the "<nick> text" lines until then.

// relayMsgCap is the capability's name.
const relayMsgCap = "draft/relaymsg"

// relayMsgSeparators returns the separators a CAP LS line offers with draft/relaymsg,
// and whether it is offered at all ("draft/relaymsg" with no value means "/").
func relayMsgSeparators(capLS string) (string, bool) {
	for _, tok := range strings.Fields(capLS) {
		name, val, hasVal := strings.Cut(tok, "=")
		if name != relayMsgCap {
			continue
		}
		if !hasVal || val == "" {
			return "/", true
		}
		return val, true
	}
	return "", false
}

// relayMsgNick is the nick a relayed sender gets: name reduced to nick characters
// (others dropped; "_" when nothing is left, a leading digit or '-' prefixed with "_"),
// then the first separator and network, at most maxNickLen bytes in all.
func relayMsgNick(name, seps, network string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("[]\\`_^{|}-", c) >= 0 {
			b.WriteByte(c)
		}
	}
	nick := b.String()
	if nick == "" || nick[0] == '-' || '0' <= nick[0] && nick[0] <= '9' {
		nick = "_" + nick
	}
	sep := "/"
	if seps != "" {
		sep = seps[:1]
	}
	suffix := sep + network
	if len(suffix) > maxNickLen/2 {
		suffix = suffix[:maxNickLen/2]
	}
	if len(nick)+len(suffix) > maxNickLen {
		nick = nick[:maxNickLen-len(suffix)]
	}
	return nick + suffix
}

// relayMsgEvent is one RELAYMSG of an already shaped line (sanitized, within budget,
// without the "<nick> " prefix) to channel as nick; an action is wrapped in CTCP.
func relayMsgEvent(channel, nick, line string, action bool) *girc.Event {
	if action {
		line = "\x01ACTION " + line + "\x01"
	}
	return &girc.Event{Command: "RELAYMSG", Params: []string{channel, nick, line}}
}

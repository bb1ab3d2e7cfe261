package irc

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/statusgate/statusgate/bridges"
)

// IDs of an irc network (STYLE.md rule 6). Only this file builds them:
//
//	channel   name:<#channel>                  lowercased (ASCII): "libera:#status"
//	user      name:account/<account>           when the server reports an account
//	          name:nick/<nick>/<where>         else the lowercased nick and where it
//	                                           connects from: 16 hex digits of
//	                                           SHA-256("statusgate-irc-v1:" ident "@"
//	                                           host), so that whoever takes the nick
//	                                           later from elsewhere is someone else
//	server    name:server/<host>               the configured server, sender of the
//	                                           bridge's own notices (a gap announcement)
//	message   name:<#channel>/<start>-<seq>    a received line: start is the connection's
//	                                           start (Unix ns, strictly increasing per
//	                                           connector), seq counts lines on it, so
//	                                           IDs are unique across reconnects
//	gap       name:<#channel>/<start>-gap      the gap announcement of the session that
//	                                           started at start, so a re-delivery is
//	                                           recognised
//	receipt   name:out/<key>                   a Send'd message; key is Outbound.Key, so a
//	                                           retry gets the same ID
//
// IRC numbers nothing, so a received line is never seen twice and its ID only needs to
// be unique.

func channelID(network, channel string) (bridges.ChannelID, error) {
	return bridges.NewChannelID(network, foldName(channel))
}

// userID is the ID of an IRC user. The puppet package derives the user's Status
// identity from it, so it must name one person: the account where the server reports
// one; without an account, a nick is anyone's once its holder leaves, so it is the nick
// and where the user connects from (ident and host). The trade-off: the same person
// reconnecting from elsewhere (another host, another ident), or under another nick, is
// a new identity; someone connecting from the same ident@host (a shared shell or
// bouncer, a shared webchat cloak) under the nick is not told apart. Users who want one
// identity everywhere register an account (account-tag, extended-join or WHOX tell it).
func userID(network, account, nick, ident, host string) (bridges.RemoteUserID, error) {
	if account != "" && account != "*" {
		return bridges.NewRemoteUserID(network, "account/"+account)
	}
	where := sha256.Sum256([]byte("statusgate-irc-v1:" + ident + "@" + strings.ToLower(host)))
	return bridges.NewRemoteUserID(network, "nick/"+foldName(nick)+"/"+hex.EncodeToString(where[:8]))
}

func serverUserID(network, host string) (bridges.RemoteUserID, error) {
	return bridges.NewRemoteUserID(network, "server/"+strings.ToLower(host))
}

func gapID(network, channel string, start int64) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(network, foldName(channel)+"/"+strconv.FormatInt(start, 10)+"-gap")
}

func msgID(network, channel string, start int64, seq uint64) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(network, foldName(channel)+"/"+strconv.FormatInt(start, 10)+"-"+strconv.FormatUint(seq, 10))
}

func receiptID(network, key string) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(network, "out/"+key)
}

// foldName lowercases ASCII letters and the rfc1459 brackets, as IRC compares names.
func foldName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		case r == '[':
			return '{'
		case r == ']':
			return '}'
		case r == '\\':
			return '|'
		case r == '~':
			return '^'
		}
		return r
	}, s)
}

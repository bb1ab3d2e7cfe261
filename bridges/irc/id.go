package irc

import (
	"strconv"
	"strings"

	"github.com/statusgate/statusgate/bridges"
)

// IDs of an irc network (STYLE.md rule 6). Only this file builds them:
//
//	channel   name:<#channel>                  lowercased (ASCII): "libera:#status"
//	user      name:account/<account>           when the server reports an account
//	          name:nick/<nick>                 else the lowercased nick
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

func userID(network, account, nick string) (bridges.RemoteUserID, error) {
	if account != "" && account != "*" {
		return bridges.NewRemoteUserID(network, "account/"+account)
	}
	return bridges.NewRemoteUserID(network, "nick/"+foldName(nick))
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

package api

import (
	"github.com/statusgate/statusgate/bridges"
)

// IDs of the api network (STYLE.md rule 6). Only this file builds them:
//
//	channel   name:<channel>                 e.g. api:status
//	user      name:<user>                    e.g. api:alice (user as the client sent it)
//	message   name:<channel>/<client id>     a POSTed message; a random 128-bit hex id
//	                                          when the client gave none
//	receipt   name:<channel>/<key>           a Send'd message; key is Outbound.Key, so
//	                                          a retry after a restart gets the same ID
//
// Posted and sent messages share one namespace, so a client may answer either kind by
// putting the ID it saw in the SSE stream into reply_to.

func channelID(network, channel string) (bridges.ChannelID, error) {
	return bridges.NewChannelID(network, channel)
}

func userID(network, user string) (bridges.RemoteUserID, error) {
	return bridges.NewRemoteUserID(network, user)
}

// msgID is the ID of message id (a client id or an Outbound.Key) in channel.
func msgID(network, channel, id string) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(network, channel+"/"+id)
}

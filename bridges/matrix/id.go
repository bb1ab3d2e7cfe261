package matrix

import (
	"crypto/sha256"
	"encoding/hex"

	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
)

// IDs of a matrix network (STYLE.md rule 6). Only this file builds them:
//
//	channel   name:<chat>          the configured chat (RoomConfig.Chat), not the room
//	                               ID, so a re-created room keeps the channel
//	user      name:<@user:server>  the Matrix user ID
//	message   name:<$event_id>     the Matrix event ID (globally unique); a Send'd
//	                               message's receipt is its event ID too
//
// Ghosts: a Status author with bridges.RemoteUserID s becomes the Matrix user
// @<ghost_prefix><hex>:<server_name>, where <hex> is the lowercase hex of the first 16
// bytes of SHA-256("statusgate-ghost-v1:" + s). It is deterministic (the same author
// is the same ghost across restarts), always a valid local part whatever s holds, and
// reveals nothing the author's ID does not. Portal aliases are
// #<ghost_prefix><chat>:<server_name>.

func channelID(network, chat string) (bridges.ChannelID, error) {
	return bridges.NewChannelID(network, chat)
}

func userID(network string, u id.UserID) (bridges.RemoteUserID, error) {
	return bridges.NewRemoteUserID(network, string(u))
}

func msgID(network string, ev id.EventID) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(network, string(ev))
}

// eventID returns the Matrix event ID of a message ID of this connector, or "".
func eventID(network string, m bridges.RemoteMsgID) id.EventID {
	if m.Network() != network {
		return ""
	}
	return id.EventID(m.Local())
}

// ghostLocalpart returns the ghost's local part for the author s.
func ghostLocalpart(prefix string, s bridges.RemoteUserID) string {
	sum := sha256.Sum256([]byte("statusgate-ghost-v1:" + string(s)))
	return prefix + hex.EncodeToString(sum[:16])
}

func portalAlias(prefix, chat, server string) id.RoomAlias {
	return id.NewRoomAlias(prefix+chat, server)
}

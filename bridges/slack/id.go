package slack

import (
	"strings"

	"github.com/statusgate/statusgate/bridges"
)

// IDs of the slack network (STYLE.md rule 6). Only this file builds and parses them:
//
//	channel   name:<channel>                  e.g. slack:C0123ABCD
//	user      name:<team>/<user>              e.g. slack:T0123/U0456 (a bot: T0123/B0789)
//	message   name:<channel>/<ts>             e.g. slack:C0123ABCD/1795423259.000100
//	edit      name:<channel>/<ts>/edit/<event ts>
//	delete    name:<channel>/<ts>/delete
//
// Channel IDs are unique within a workspace and one connector serves one workspace, so
// the channel ID alone names it; the team is part of user IDs because shared channels
// carry users of other workspaces. A message ID carries its channel and ts, which is
// all chat.update, chat.delete and thread_ts need, so the gateway's message map can
// hand a receipt back as Outbound.ReplyTo or Target.

func channelID(network, channel string) (bridges.ChannelID, error) {
	return bridges.NewChannelID(network, channel)
}

func userID(network, team, user string) (bridges.RemoteUserID, error) {
	return bridges.NewRemoteUserID(network, team+"/"+user)
}

func msgID(network, channel, ts string) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(network, channel+"/"+ts)
}

func editID(network, channel, ts, eventTS string) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(network, channel+"/"+ts+"/edit/"+eventTS)
}

func deleteID(network, channel, ts string) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(network, channel+"/"+ts+"/delete")
}

// parseMsgID returns the channel and ts of a message ID built by msgID for network.
func parseMsgID(network string, id bridges.RemoteMsgID) (channel, ts string, ok bool) {
	if id.Network() != network {
		return "", "", false
	}
	channel, ts, ok = strings.Cut(id.Local(), "/")
	if !ok || channel == "" || ts == "" || strings.Contains(ts, "/") {
		return "", "", false
	}
	return channel, ts, true
}

// parseChannelID returns the Slack channel ID of ch, if ch belongs to network.
func parseChannelID(network string, ch bridges.ChannelID) (string, bool) {
	if ch.Network() != network {
		return "", false
	}
	return ch.Local(), true
}

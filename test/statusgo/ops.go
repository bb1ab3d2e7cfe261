package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/status-im/status-go/protocol"
	"github.com/status-im/status-go/protocol/common"
	"github.com/status-im/status-go/protocol/encryption/multidevice"
	"github.com/status-im/status-go/protocol/protobuf"
)

// op answers one request. line is the whole request object: each op decodes its own
// fields from it. A nil reply means {"ok": true}.
type op func(n *node, line []byte) (map[string]any, error)

// ops is the request table of "statusgo-ref node" (README.md documents each op). To
// add one: write a func of type op (in its own file if it is a family, e.g.
// mailserver ops), put it here, and document it in the README's table.
var ops = map[string]op{
	"identity":             opIdentity,
	"add_peer":             opAddPeer,
	"peers":                opPeers,
	"set_pow":              opSetPoW,
	"join_public":          opJoinPublic,
	"open_chat":            opOpenChat,
	"send":                 opSend,
	"messages":             opMessages,
	"installations":        opInstallations,
	"pair":                 opPair,
	"enable_installation":  opEnableInstallation,
	"disable_installation": opDisableInstallation,
	"hold":                 opHold,
	"discovery_start":      opDiscoveryStart,
	"discovery_status":     opDiscoveryStatus,
	"release":              opRelease,
	// mailserver.go
	"ms_archive":           opMsArchive,
	"ms_request":           opMsRequest,
	"ms_messenger_request": opMsMessengerRequest,
	"ms_sync":              opMsSync,
	"ms_delivered":         opMsDelivered,
	"post":                 opPost,
	"metrics":              opMetrics,
}

// sendTimeout bounds one SendChatMessage (sealing and posting).
const sendTimeout = 30 * time.Second

// params decodes line into v, naming the op in the error.
func params(line []byte, v any) error {
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("bad request: %v", err)
	}
	return nil
}

func opIdentity(n *node, _ []byte) (map[string]any, error) {
	return map[string]any{
		"public_key":      hex.EncodeToString(crypto.FromECDSAPub(&n.identity.PublicKey)),
		"compressed":      hex.EncodeToString(crypto.CompressPubkey(&n.identity.PublicKey)),
		"installation_id": n.installationID,
		"enode":           n.stack.Server().Self().URLv4(),
		"id":              n.stack.Server().Self().ID().String(),
	}, nil
}

func opAddPeer(n *node, line []byte) (map[string]any, error) {
	var p struct {
		Enode string `json:"enode"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	nd, err := enode.ParseV4(p.Enode)
	if err != nil {
		return nil, fmt.Errorf("enode: %v", err)
	}
	n.stack.Server().AddPeer(nd)
	return nil, nil
}

func opPeers(n *node, _ []byte) (map[string]any, error) {
	type peer struct {
		ID    string `json:"id"`
		Enode string `json:"enode"`
	}
	list := []peer{}
	for _, p := range n.stack.Server().Peers() {
		list = append(list, peer{ID: p.ID().String(), Enode: p.Node().URLv4()})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return map[string]any{"peers": list}, nil
}

func opSetPoW(n *node, line []byte) (map[string]any, error) {
	var p struct {
		PoW float64 `json:"pow"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	if n.waku != nil {
		return nil, n.setPoWWaku(p.PoW)
	}
	return nil, n.shh.SetMinimumPoW(p.PoW)
}

// timesource is the wall clock in milliseconds, as the Messenger's own.
type timesource struct{}

func (timesource) GetCurrentTime() uint64 { return uint64(time.Now().UnixMilli()) }

func opJoinPublic(n *node, line []byte) (map[string]any, error) {
	var p struct {
		Chat string `json:"chat"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	if p.Chat == "" {
		return nil, errors.New("missing chat")
	}
	chat := protocol.CreatePublicChat(p.Chat, timesource{})
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.m.Join(chat); err != nil {
		return nil, fmt.Errorf("join: %v", err)
	}
	if err := n.m.SaveChat(&chat); err != nil {
		return nil, fmt.Errorf("save chat: %v", err)
	}
	return map[string]any{"chat_id": chat.ID}, nil
}

func opOpenChat(n *node, line []byte) (map[string]any, error) {
	var p struct {
		PublicKey string `json:"public_key"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	pub, err := decodePub("public_key", p.PublicKey)
	if err != nil {
		return nil, err
	}
	chat := protocol.CreateOneToOneChat(p.PublicKey[:min(len(p.PublicKey), 8)], pub, timesource{})
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.m.Join(chat); err != nil {
		return nil, fmt.Errorf("join: %v", err)
	}
	if err := n.m.SaveChat(&chat); err != nil {
		return nil, fmt.Errorf("save chat: %v", err)
	}
	return map[string]any{"chat_id": chat.ID}, nil
}

// chatOf finds a chat the Messenger knows.
func (n *node) chatOf(id string) (*protocol.Chat, error) {
	for _, c := range n.m.Chats() {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, fmt.Errorf("chat %q: %w", id, errNoChat)
}

func opSend(n *node, line []byte) (map[string]any, error) {
	var p struct {
		ChatID     string `json:"chat_id"`
		Text       string `json:"text"`
		ResponseTo string `json:"response_to"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	chat, err := n.chatOf(p.ChatID)
	if err != nil {
		return nil, err
	}
	msg := &common.Message{}
	msg.Text = p.Text
	msg.ChatId = chat.ID
	msg.LocalChatID = chat.ID
	msg.ContentType = protobuf.ChatMessage_TEXT_PLAIN
	if p.ResponseTo != "" {
		msg.ResponseTo = "0x" + trim0x(p.ResponseTo)
	}
	switch chat.ChatType {
	case protocol.ChatTypePublic, protocol.ChatTypeProfile:
		msg.MessageType = protobuf.MessageType_PUBLIC_GROUP
	case protocol.ChatTypeOneToOne:
		msg.MessageType = protobuf.MessageType_ONE_TO_ONE
	case protocol.ChatTypePrivateGroupChat:
		msg.MessageType = protobuf.MessageType_PRIVATE_GROUP
	default:
		return nil, fmt.Errorf("chat %q: type %d not supported", chat.ID, chat.ChatType)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	resp, err := n.m.SendChatMessage(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("send: %v", err)
	}
	if len(resp.Messages) == 0 {
		return nil, errors.New("send: the Messenger returned no message")
	}
	sent := resp.Messages[0]
	return map[string]any{"message_id": trim0x(sent.ID), "clock": sent.Clock, "timestamp": sent.Timestamp, "chat_id": chat.ID}, nil
}

func opMessages(n *node, line []byte) (map[string]any, error) {
	var p struct {
		ChatID string `json:"chat_id"`
		Limit  int    `json:"limit"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	if p.Limit <= 0 {
		p.Limit = 1000
	}
	n.mu.Lock()
	msgs, _, err := n.m.MessageByChatID(p.ChatID, "", p.Limit)
	n.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("messages: %v", err)
	}
	list := make([]map[string]any, 0, len(msgs))
	for _, m := range msgs {
		ev := messageEvent(m, envelopeInfo{})
		delete(ev, "type")
		delete(ev, "envelope")
		list = append(list, ev)
	}
	return map[string]any{"messages": list}, nil
}

func installationEvent(i *multidevice.Installation) map[string]any {
	ev := installationFields(i)
	ev["type"] = "installation"
	return ev
}

func installationFields(i *multidevice.Installation) map[string]any {
	f := map[string]any{"identity": trim0x(i.Identity), "installation_id": i.ID, "version": i.Version, "enabled": i.Enabled, "timestamp": i.Timestamp}
	if i.InstallationMetadata != nil {
		f["name"], f["device_type"] = i.InstallationMetadata.Name, i.InstallationMetadata.DeviceType
	}
	return f
}

func opInstallations(n *node, _ []byte) (map[string]any, error) {
	list := []map[string]any{}
	for _, i := range n.m.Installations() {
		list = append(list, installationFields(i))
	}
	sort.Slice(list, func(a, b int) bool { return list[a]["installation_id"].(string) < list[b]["installation_id"].(string) })
	return map[string]any{"installations": list}, nil
}

func opPair(n *node, _ []byte) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	if _, err := n.m.SendPairInstallation(ctx); err != nil {
		return nil, fmt.Errorf("pair: %v", err)
	}
	return nil, nil
}

func opEnableInstallation(n *node, line []byte) (map[string]any, error) {
	var p struct {
		InstallationID string `json:"installation_id"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	return nil, n.m.EnableInstallation(p.InstallationID)
}

func opDisableInstallation(n *node, line []byte) (map[string]any, error) {
	var p struct {
		InstallationID string `json:"installation_id"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	return nil, n.m.DisableInstallation(p.InstallationID)
}

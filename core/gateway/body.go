package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// The ledger body: how an accepted event is stored in its ledger row (records.Event.Body)
// until every destination has it, possibly across upgrades. It is this package's own
// format, not bridges.Event's Go shape: every field has an explicit JSON name, Kind is
// stored by name, and "v" says which format a row holds, so renaming a Go field or
// inserting a Kind never changes what a pending row means.
//
//	v2 (current): {"v":2,"kind":"message","origin":{"network":…,"channel":…,"id":…},
//	              "sender":{"id":…,"name":…,"is_bridge":…},"text":…,"reply_to":…,
//	              "target":…,"reaction":…,"time":RFC 3339 with nanoseconds}
//	v1 (before):  json.Marshal(bridges.Event) with Go field names and Kind as its number
//	              in the order of v1Kinds (no "v"). Read, never written.

// bodyVersion is the version encodeBody writes.
const bodyVersion = 2

// errBodyFormat: a ledger body is not in a format this version reads.
var errBodyFormat = errors.New("unreadable ledger body")

// body is the v2 ledger body.
type body struct {
	V        int        `json:"v"`
	Kind     string     `json:"kind"`
	Origin   bodyOrigin `json:"origin"`
	Sender   bodySender `json:"sender"`
	Text     string     `json:"text,omitempty"`
	ReplyTo  string     `json:"reply_to,omitempty"`
	Target   string     `json:"target,omitempty"`
	Reaction string     `json:"reaction,omitempty"`
	Time     time.Time  `json:"time"`
}

type bodyOrigin struct {
	Network string `json:"network"`
	Channel string `json:"channel"`
	ID      string `json:"id,omitempty"`
}

type bodySender struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	IsBridge bool   `json:"is_bridge,omitempty"`
}

// encodeBody encodes ev as a v2 ledger body.
func encodeBody(ev *bridges.Event) ([]byte, error) {
	kind := ev.Kind.String()
	if _, ok := kindByName[kind]; !ok {
		return nil, fmt.Errorf("encode event %s: kind %v has no name", ev.Origin.ID, ev.Kind)
	}
	return json.Marshal(body{V: bodyVersion, Kind: kind,
		Origin: bodyOrigin{Network: ev.Origin.Network, Channel: string(ev.Origin.Channel), ID: string(ev.Origin.ID)},
		Sender: bodySender{ID: string(ev.Sender.ID), Name: ev.Sender.Name, IsBridge: ev.Sender.IsBridge},
		Text:   ev.Text, ReplyTo: string(ev.ReplyTo), Target: string(ev.Target), Reaction: ev.Reaction, Time: ev.Time})
}

// decodeBody decodes a ledger body of any version this gateway reads. Errors wrap
// errBodyFormat.
func decodeBody(b []byte) (bridges.Event, error) {
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return bridges.Event{}, fmt.Errorf("%w: %v", errBodyFormat, err)
	}
	if head.V == nil {
		return decodeBodyV1(b)
	}
	if *head.V != bodyVersion {
		return bridges.Event{}, fmt.Errorf("%w: version %d (this gateway reads 1 and %d)", errBodyFormat, *head.V, bodyVersion)
	}
	var v body
	if err := json.Unmarshal(b, &v); err != nil {
		return bridges.Event{}, fmt.Errorf("%w: %v", errBodyFormat, err)
	}
	kind, ok := kindByName[v.Kind]
	if !ok {
		return bridges.Event{}, fmt.Errorf("%w: kind %q", errBodyFormat, v.Kind)
	}
	return bridges.Event{Kind: kind,
		Origin: bridges.Origin{Network: v.Origin.Network, Channel: bridges.ChannelID(v.Origin.Channel), ID: bridges.RemoteMsgID(v.Origin.ID)},
		Sender: bridges.Sender{ID: bridges.RemoteUserID(v.Sender.ID), Name: v.Sender.Name, IsBridge: v.Sender.IsBridge},
		Text:   v.Text, ReplyTo: bridges.RemoteMsgID(v.ReplyTo), Target: bridges.RemoteMsgID(v.Target), Reaction: v.Reaction,
		Time: v.Time}, nil
}

// v1Kinds are the Kind numbers of v1 bodies, frozen: bridges.Kind's iota order when v1
// was written. 6 and 7 were join and part, which the contract has dropped (no connector
// ever sent them): such a row is unreadable, and its entry fails visibly.
var v1Kinds = [...]bridges.Kind{1: bridges.KindMessage, 2: bridges.KindAction, 3: bridges.KindEdit, 4: bridges.KindDelete,
	5: bridges.KindReaction, 8: bridges.KindNotice}

// kindByName maps every Kind's name to it.
var kindByName = func() map[string]bridges.Kind {
	m := map[string]bridges.Kind{}
	for _, k := range v1Kinds {
		if k != 0 {
			m[k.String()] = k
		}
	}
	return m
}()

// decodeBodyV1 decodes a v1 body: bridges.Event's Go field names, Kind a v1Kinds number.
func decodeBodyV1(b []byte) (bridges.Event, error) {
	var v struct {
		Kind   int
		Origin struct{ Network, Channel, ID string }
		Sender struct {
			ID, Name string
			IsBridge bool
		}
		Text, ReplyTo, Target, Reaction string
		Time                            time.Time
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return bridges.Event{}, fmt.Errorf("%w: v1: %v", errBodyFormat, err)
	}
	if v.Kind <= 0 || v.Kind >= len(v1Kinds) || v1Kinds[v.Kind] == 0 {
		return bridges.Event{}, fmt.Errorf("%w: v1 kind %d", errBodyFormat, v.Kind)
	}
	return bridges.Event{Kind: v1Kinds[v.Kind],
		Origin: bridges.Origin{Network: v.Origin.Network, Channel: bridges.ChannelID(v.Origin.Channel), ID: bridges.RemoteMsgID(v.Origin.ID)},
		Sender: bridges.Sender{ID: bridges.RemoteUserID(v.Sender.ID), Name: v.Sender.Name, IsBridge: v.Sender.IsBridge},
		Text:   v.Text, ReplyTo: bridges.RemoteMsgID(v.ReplyTo), Target: bridges.RemoteMsgID(v.Target), Reaction: v.Reaction,
		Time: v.Time}, nil
}

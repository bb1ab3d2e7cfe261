package statusref

import (
	"encoding/hex"
	"fmt"
)

// Typed methods of the mailserver ops (test/statusgo/mailserver.go and its README).

// MsArchive hands envelopes (their RLP) to the node's WhisperMailServer.Archive, the
// hook status-go's Whisper calls for every new envelope (Options.Mailserver).
func (n *Node) MsArchive(envelopes [][]byte) error {
	hs := make([]string, len(envelopes))
	for i, e := range envelopes {
		hs[i] = hex.EncodeToString(e)
	}
	return n.call("ms_archive", map[string]any{"envelopes": hs}, nil)
}

// MsRequest is one history request through shhext's RequestMessages path.
type MsRequest struct {
	Mailserver string // enode URL
	From, To   uint32 // 0: shhext's defaults (to now, from a day before)
	Limit      uint32
	Cursor     []byte
	Topics     [][4]byte
	// Password encrypts the request; nil means "status-offline-inbox", "" the
	// mailserver's node key (asymmetric), as shhext without a symKeyID.
	Password *string
	// PoW seals the request; nil means the node's minimum, as shhext does.
	PoW *float64
	// Payload, when set, is sent instead of the encoded request (malformed requests).
	Payload []byte
	Timeout int // seconds; 0: 30
}

// MsResponse is the completion of a request.
type MsResponse struct {
	RequestID    [32]byte
	PoW          float64 // of the request envelope
	Cursor       []byte  // empty: no more
	LastEnvelope [32]byte
	Error        string // the ERROR= text, if the mailserver refused
}

// MsRequest sends r as status-go's shhext.RequestMessages does (the payload of
// ext.MakeMessagesRequestPayload, sealed at the node's PoW and signed with its node key)
// and waits for the completion.
func (n *Node) MsRequest(r MsRequest) (MsResponse, error) {
	f := map[string]any{"mailserver": r.Mailserver, "from": r.From, "to": r.To, "limit": r.Limit,
		"cursor": hex.EncodeToString(r.Cursor), "timeout": r.Timeout}
	var topics []string
	for _, t := range r.Topics {
		topics = append(topics, hex.EncodeToString(t[:]))
	}
	f["topics"] = topics
	if r.Password != nil {
		f["password"] = *r.Password
	}
	if r.PoW != nil {
		f["pow"] = *r.PoW
	}
	if r.Payload != nil {
		f["payload"] = hex.EncodeToString(r.Payload)
	}
	var out struct {
		RequestID    string  `json:"request_id"`
		PoW          float64 `json:"pow"`
		Cursor       string  `json:"cursor"`
		LastEnvelope string  `json:"last_envelope"`
		Error        string  `json:"refused"`
	}
	if err := n.call("ms_request", f, &out); err != nil {
		return MsResponse{}, err
	}
	resp := MsResponse{PoW: out.PoW, Error: out.Error}
	var d hexDecoder
	d.fixed("request_id", out.RequestID, resp.RequestID[:])
	d.fixed("last_envelope", out.LastEnvelope, resp.LastEnvelope[:])
	resp.Cursor = d.bytes("cursor", out.Cursor)
	if d.err != nil {
		return MsResponse{}, fmt.Errorf("statusgo-ref ms_request: %w", d.err)
	}
	return resp, nil
}

// MsMessengerRequest asks mailserver for [from, to] through the Messenger's own path
// (SetMailserver, RequestHistoricMessages: the MessagesRequest struct, limit 100, the
// bloom of its filters) and returns the next cursor, or the mailserver's error text.
func (n *Node) MsMessengerRequest(mailserver string, from, to uint32, cursor []byte) (next []byte, refused string, err error) {
	var out struct {
		Cursor string `json:"cursor"`
		Error  string `json:"refused"`
	}
	if err := n.call("ms_messenger_request", map[string]any{"mailserver": mailserver, "from": from, "to": to,
		"cursor": hex.EncodeToString(cursor)}, &out); err != nil {
		return nil, "", err
	}
	var d hexDecoder
	next = d.bytes("cursor", out.Cursor)
	return next, out.Error, d.err
}

// MsSync makes this mailserver sync [from, to] from another (shhext.SyncMessages: codes
// 123/124), following the cursor when follow is set. limit is per round (1..1000).
func (n *Node) MsSync(mailserver string, from, to, limit uint32, topics [][4]byte, follow bool) (cursor []byte, rounds int, refused string, err error) {
	var ts []string
	for _, t := range topics {
		ts = append(ts, hex.EncodeToString(t[:]))
	}
	var out struct {
		Cursor string `json:"cursor"`
		Rounds int    `json:"rounds"`
		Error  string `json:"refused"`
	}
	if err := n.call("ms_sync", map[string]any{"mailserver": mailserver, "from": from, "to": to, "limit": limit,
		"topics": ts, "follow": follow}, &out); err != nil {
		return nil, 0, "", err
	}
	var d hexDecoder
	cursor = d.bytes("cursor", out.Cursor)
	return cursor, out.Rounds, out.Error, d.err
}

// Delivered is how many envelopes of a topic status-go's Whisper made available since
// the last reset: Total counts repeats, Distinct does not, Max is the most any one
// envelope came.
type Delivered struct {
	Total, Distinct, Max int
}

// MsDelivered reports the envelopes of topic the node's Whisper made available (direct
// deliveries from a mailserver included), and with reset forgets them.
func (n *Node) MsDelivered(topic [4]byte, reset bool) (Delivered, error) {
	var out struct {
		Total    int `json:"total"`
		Distinct int `json:"distinct"`
		Max      int `json:"max"`
	}
	if err := n.call("ms_delivered", map[string]any{"topic": hex.EncodeToString(topic[:]), "reset": reset}, &out); err != nil {
		return Delivered{}, err
	}
	return Delivered{Total: out.Total, Distinct: out.Distinct, Max: out.Max}, nil
}

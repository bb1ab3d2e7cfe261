package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/statusgate/statusgate/bridges"
)

// Limits of a POST body's fields, in bytes.
const (
	maxUserLen     = 128
	maxNameLen     = 256
	maxClientIDLen = 200
)

// postRequest is the body of POST /v1/channels/{name}/messages.
type postRequest struct {
	User    string `json:"user"`     // required: the sender's account, api:<user>
	Name    string `json:"name"`     // optional display name
	Text    string `json:"text"`     // required canonical text
	ID      string `json:"id"`       // optional client id: makes retries idempotent
	ReplyTo string `json:"reply_to"` // optional: an api message ID seen in SSE
	Kind    string `json:"kind"`     // message (default), action or notice
}

var postKinds = map[string]bridges.Kind{
	"": bridges.KindMessage, "message": bridges.KindMessage,
	"action": bridges.KindAction, "notice": bridges.KindNotice,
}

// decodePost decodes and checks a POST body. Every error wraps ErrBadRequest and says
// what is wrong. It checks UTF-8 on the raw bytes first, because encoding/json would
// silently replace invalid bytes with U+FFFD.
func decodePost(body []byte) (postRequest, error) {
	var p postRequest
	bad := func(format string, args ...any) (postRequest, error) {
		return postRequest{}, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	if !utf8.Valid(body) {
		return bad("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return bad("decode JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("decode JSON body: data after the object")
	}
	switch {
	case p.User == "":
		return bad("user: missing")
	case len(p.User) > maxUserLen:
		return bad("user: longer than %d bytes", maxUserLen)
	case hasControl(p.User):
		return bad("user: holds a control character")
	case len(p.Name) > maxNameLen:
		return bad("name: longer than %d bytes", maxNameLen)
	case hasControl(p.Name):
		return bad("name: holds a control character")
	case p.Text == "":
		return bad("text: missing")
	case len(p.ID) > maxClientIDLen:
		return bad("id: longer than %d bytes", maxClientIDLen)
	case strings.Contains(p.ID, "/"):
		return bad("id: holds '/'")
	case hasControl(p.ID):
		return bad("id: holds a control character")
	}
	if err := bridges.ValidText(p.Text); err != nil {
		return bad("text: %v", err)
	}
	if _, ok := postKinds[p.Kind]; !ok {
		return bad("kind: %q is not message, action or notice", p.Kind)
	}
	if p.ReplyTo != "" {
		if err := bridges.RemoteMsgID(p.ReplyTo).Validate(); err != nil {
			return bad("reply_to: %v", err)
		}
	}
	return p, nil
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// buildEvent turns a decoded POST into the Event for Host.Deliver. clientID is p.ID,
// or a fresh random id when the client gave none. Errors wrap ErrBadRequest.
func buildEvent(network, channel string, p postRequest, clientID string) (bridges.Event, error) {
	bad := func(format string, args ...any) (bridges.Event, error) {
		return bridges.Event{}, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	chID, err := channelID(network, channel)
	if err != nil {
		return bad("channel: %v", err)
	}
	origin, err := msgID(network, channel, clientID)
	if err != nil {
		return bad("id: %v", err)
	}
	sender, err := userID(network, p.User)
	if err != nil {
		return bad("user: %v", err)
	}
	replyTo := bridges.RemoteMsgID(p.ReplyTo)
	if replyTo != "" && replyTo.Network() != network {
		return bad("reply_to: %q is not a message of network %s", p.ReplyTo, network)
	}
	return bridges.Event{
		Kind:    postKinds[p.Kind],
		Origin:  bridges.Origin{Network: network, Channel: chID, ID: origin},
		Sender:  bridges.Sender{ID: sender, Name: p.Name},
		Text:    p.Text,
		ReplyTo: replyTo,
	}, nil
}

// handlePost answers POST /v1/channels/{name}/messages: it hands the message to the
// gateway and answers 202 with its ID once the gateway has persisted it.
func (s *server) handlePost(w http.ResponseWriter, r *http.Request) {
	ch := s.lookup(w, r)
	if ch == nil {
		return
	}
	limit := s.c.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
		} else {
			writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		}
		return
	}
	p, err := decodePost(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	clientID := p.ID
	if clientID == "" {
		if clientID, err = s.c.randomHex(); err != nil {
			s.log.Error("api message id", "err", err)
			writeError(w, http.StatusInternalServerError, "cannot make a message id")
			return
		}
	}
	ev, err := buildEvent(s.c.cfg.Name, ch.name, p, clientID)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ev.Time = s.c.now()
	if err := ev.Validate(); err != nil { // Deliver would refuse it too
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}

	if ok, why := s.c.posts.allow(p.User, ev.Time); !ok {
		s.refuse(w, ch.name, p.User, why, ev.Time)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), deliverTimeout)
	defer cancel()
	switch err := s.host.Deliver(ctx, ev); {
	case err == nil:
		s.log.Debug("delivered", "chat", ch.name, "msg_id", string(ev.Origin.ID), "user", string(ev.Sender.ID))
		writeJSON(w, http.StatusAccepted, postResponse{ID: ev.Origin.ID})
	case errors.Is(err, bridges.ErrInvalidEvent):
		s.log.Debug("gateway refused event", "chat", ch.name, "msg_id", string(ev.Origin.ID), "err", err)
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	default:
		s.log.Warn("deliver failed; client must retry", "chat", ch.name, "msg_id", string(ev.Origin.ID), "err", err)
		body := errorBody{Error: "not accepted, retry with the same id: " + err.Error()}
		if p.ID == "" {
			body.RetryID = clientID
		}
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, body)
	}
}

// refuse answers a POST the rate limit refused: 429, Retry-After in whole seconds
// (at least 1), logged at most once a minute.
func (s *server) refuse(w http.ResponseWriter, chat, user string, why refusal, now time.Time) {
	secs := max(int64(math.Ceil(why.retryAfter.Seconds())), 1)
	if why.retryAfter > time.Hour { // a bucket that never refills (rate 0)
		secs = 3600
	}
	if log, unlogged := s.c.posts.logRefusal(now); log {
		s.log.Warn("POST refused by the rate limit (logged at most once a minute)", "chat", chat,
			"user", user, "limit", why.scope, "retry_after_s", secs, "not_logged_before", unlogged)
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	scope := "this user's"
	if why.scope == "all" {
		scope = "all users'"
	}
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf("rate limited (%s share): not accepted, retry after %d s", scope, secs))
}

type postResponse struct {
	ID bridges.RemoteMsgID `json:"id"`
}

package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// handleEvents answers GET /v1/channels/{name}/events with a Server-Sent Events
// stream of what the gateway sends to the channel:
//
//	id: <sequence number>
//	event: <kind>
//	data: <wireEvent JSON on one line>
//
// A client that sends Last-Event-ID (or ?last_event_id=) first gets the ring's events
// after that number, preceded by an "event: gap" when some are gone; a client without
// it gets events published from the moment the response headers arrive. Idle streams
// get a ": ping" comment every Config.Heartbeat. The stream ends when the client goes
// away, when it is too slow (see subscriber) and when Run stops.
func (s *server) handleEvents(w http.ResponseWriter, r *http.Request) {
	ch := s.lookup(w, r)
	if ch == nil {
		return
	}
	after, resume, err := lastEventID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would end a long-lived stream; the body is empty, and
	// the client's going away still cancels r.Context().
	_ = rc.SetReadDeadline(time.Time{})

	sub, backlog, g := ch.subscribe(after, resume)
	defer ch.unsubscribe(sub)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	var buf []byte
	write := func() bool { // writes and flushes buf with a fresh deadline
		if err := rc.SetWriteDeadline(time.Now().Add(s.c.limits.write)); err != nil {
			return false
		}
		_, err := w.Write(buf)
		buf = buf[:0]
		return err == nil && rc.Flush() == nil
	}
	if g != nil {
		data, _ := json.Marshal(g) // cannot fail: integers and a bool
		buf = appendFrame(buf, 0, "gap", data)
	}
	for _, rec := range backlog {
		buf = appendFrame(buf, rec.seq, rec.kind, rec.data)
	}
	if !write() { // also sends the headers of an empty stream
		return
	}

	tick := time.NewTicker(s.c.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select { // a dropped subscriber ends now, even with events still queued
		case <-sub.gone:
			s.log.Debug("slow SSE client disconnected", "chat", ch.name)
			return
		default:
		}
		select {
		case <-r.Context().Done():
			return
		case <-sub.gone:
			s.log.Debug("slow SSE client disconnected", "chat", ch.name)
			return
		case rec := <-sub.ch:
			rec = sub.take(rec)
			buf = appendFrame(buf, rec.seq, rec.kind, rec.data)
			for n := len(sub.ch); n > 0; n-- { // batch what is already queued
				rec = sub.take(<-sub.ch)
				buf = appendFrame(buf, rec.seq, rec.kind, rec.data)
			}
		case <-tick.C:
			buf = append(buf, ": ping\n\n"...)
		}
		if !write() {
			return
		}
	}
}

// appendFrame appends one SSE event; seq 0 means no id line (the gap event, which must
// not move the client's Last-Event-ID). data must be one line, as JSON from
// encoding/json is.
func appendFrame(b []byte, seq uint64, event string, data []byte) []byte {
	if seq != 0 {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, seq, 10)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// lastEventID returns the Last-Event-ID header, else the last_event_id query
// parameter, as a sequence number; resume is false when neither is given.
func lastEventID(r *http.Request) (after uint64, resume bool, err error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false, nil
	}
	after, err = strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, errBadRequestf("last event id %q is not a sequence number", v)
	}
	return after, true, nil
}

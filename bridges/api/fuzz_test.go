package api

import (
	"errors"
	"testing"
)

// FuzzDecodePost feeds POST bodies to the decoder the handler uses. It must never
// panic, must fail only with ErrBadRequest, and what it accepts must build an Event
// that passes bridges.Event.Validate.
func FuzzDecodePost(f *testing.F) {
	for _, seed := range []string{
		`{"user":"alice","name":"Alice","text":"hello","id":"m-1","reply_to":"api:status/x","kind":"message"}`,
		`{"user":"bot:1","text":"waves","kind":"action"}`,
		`{"user":"a","text":"*b*\n> c","kind":"notice"}`,
		`{"user":"a","text":"b","reply_to":"status:0xabc"}`,
		`{"user":"a","text":"b","id":"x/y"}`,
		`{"user":"a","text":"b","extra":1}`,
		"{\"user\":\"a\",\"text\":\"\xff\"}",
		`{"user":"a","text":"\u0000"}`,
		`{"user":"\u2028","text":"\ud800"}`,
		`null`, `[]`, `{}`, ``, `{"user":"a","text":"b"}{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePost(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		for _, id := range []string{p.ID, "0123456789abcdef0123456789abcdef"} {
			if id == "" {
				continue
			}
			ev, err := buildEvent("api", "status", p, id)
			if err != nil {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("build: error %v does not wrap ErrBadRequest", err)
				}
				continue
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("accepted %q, but the event is invalid: %v", body, err)
			}
		}
	})
}

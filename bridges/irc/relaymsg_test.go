package irc

import (
	"strings"
	"testing"
)

func TestRelayMsg_separators(t *testing.T) {
	for ls, want := range map[string]string{
		"multi-prefix draft/relaymsg=/ sasl": "/",
		"draft/relaymsg=~/":                  "~/",
		"draft/relaymsg":                     "/",
		"multi-prefix sasl=PLAIN":            "",
	} {
		got, ok := relayMsgSeparators(ls)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", ls, got, ok, want)
		}
	}
}

func TestRelayMsg_nick(t *testing.T) {
	for _, tt := range []struct{ name, seps, want string }{
		{"alice", "/", "alice/status"},
		{"Bold Red Fox", "~/", "BoldRedFox~status"},
		{"0xabc", "/", "_0xabc/status"},
		{"é😀 \r\nQUIT", "/", "QUIT/status"},
		{"\r\n", "", "_/status"},
		{strings.Repeat("a", 40), "/", strings.Repeat("a", 23) + "/status"},
	} {
		got := relayMsgNick(tt.name, tt.seps, "status")
		sep := "/"
		if tt.seps != "" {
			sep = tt.seps[:1]
		}
		if got != tt.want || len(got) > maxNickLen || validNick(strings.Replace(got, sep, "", 1)) != nil {
			t.Errorf("%q: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRelayMsg_event(t *testing.T) {
	e := relayMsgEvent("#status", "alice/status", "hello world", false)
	if got := e.String(); got != "RELAYMSG #status alice/status :hello world" {
		t.Errorf("message: %q", got)
	}
	e = relayMsgEvent("#status", "alice/status", "waves", true)
	if got := e.String(); got != "RELAYMSG #status alice/status :\x01ACTION waves\x01" {
		t.Errorf("action: %q", got)
	}
	// Lines come from shape, which leaves no CR, LF or NUL: the event holds one line.
	for _, line := range shape("a\r\nQUIT :x\x00", "", 400, 5) {
		if s := relayMsgEvent("#status", "alice/status", line, false).String(); strings.ContainsAny(s, "\r\n\x00") {
			t.Errorf("%q", s)
		}
	}
}

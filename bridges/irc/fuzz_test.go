package irc

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/statusgate/statusgate/bridges"
)

// FuzzConvert checks both directions: IRC text → canonical text is valid canonical
// text, and any string → shaped IRC lines never holds CR, LF or NUL (or a CTCP
// delimiter the encoder did not add) and never exceeds 512 bytes with the prefix.
func FuzzConvert(f *testing.F) {
	for _, s := range []string{"hi", "\x02b\x1di\x0304,5c", "a\r\nQUIT :x", "\x00\x01ACTION x\x01", "\xff", "**a** _b_ `c`\n```\nx\n```", strings.Repeat("é😀", 300)} {
		f.Add(s, "alice")
	}
	f.Fuzz(func(t *testing.T, s, nick string) {
		if err := bridges.ValidText(toCanonical(s)); err != nil && len(s) < bridges.MaxTextLen/4 {
			t.Fatalf("toCanonical(%q): %v", s, err)
		}
		prefix := "<" + relayNick(nick, true) + "> "
		budget := wireBudget(maxNickLen, "statusgate", "#status", true)
		for _, l := range shape(s, prefix, budget, 50) {
			wire := ":" + strings.Repeat("n", maxNickLen) + "!~statusgate@" + strings.Repeat("h", maxHostLen) +
				" PRIVMSG #status :\x01ACTION " + l + "\x01\r\n"
			if len(wire) > maxLine {
				t.Fatalf("line of %d bytes: %q", len(wire), l)
			}
			if strings.ContainsAny(l, "\r\n\x00\x01") || !utf8.ValidString(l) {
				t.Fatalf("unsafe line %q", l)
			}
		}
	})
}

package irc

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestToCanonical_codes(t *testing.T) {
	for in, want := range map[string]string{
		"plain *text* [x]":           `plain \*text\* \[x\]`,
		"\x02bold\x02 \x1dit\x1d":    "**bold** *it*",
		"\x02open":                   "**open**",
		"\x0304,12red\x03 \x1funder": "red under",
		"\x02\x02empty":              "empty",
		"a\x0fb\x02c\x0fd":           "ab**c**d",
		"nul\x00 bad\xff":            "nul\uFFFD bad\uFFFD",
		"\x04ff00ffhex":              "hex",
	} {
		if got := toCanonical(in); got != want {
			t.Errorf("toCanonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromCanonical_markup(t *testing.T) {
	for in, want := range map[string]string{
		"**b** *i* _j_ __k__":               "\x02b\x02 \x1di\x1d \x1dj\x1d \x02k\x02",
		"snake_case_name":                   "snake_case_name",
		"`**not**`":                         "**not**",
		`\*lit\*`:                           "*lit*",
		"[site](https://x.y) <https://a.b>": "site (https://x.y) https://a.b",
		"2 * 3 * 4":                         "2 * 3 * 4",
		"```go\n**x**\n```\nafter":          "**x**|after",
		"a\r\nb\x00c\n\nd":                  "a|b\uFFFDc|d",
	} {
		if got := strings.Join(fromCanonical(in), "|"); got != want {
			t.Errorf("fromCanonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShape_splitAndCap(t *testing.T) {
	budget := wireBudget(maxNickLen, "sg", "#status", false)
	lines := shape("**"+strings.Repeat("é", 600)+"**", "<a> ", budget, 10)
	if len(lines) < 3 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		if len(l) > budget || !utf8.ValidString(l) || !strings.HasPrefix(l, "<a> \x02") {
			t.Errorf("line %d: %d bytes (budget %d) %q", i, len(l), budget, l[:20])
		}
	}
	capped := shape("1\n2\n3\n4\n5\n6", "<a> ", budget, 3)
	if strings.Join(capped, "|") != "<a> 1|<a> 2|<a> … (4 more lines)" {
		t.Errorf("cap: %q", capped)
	}
}

// TestCapabilities_maxTextLenFitsMaxLines: a one-line text of Capabilities.MaxTextLen
// bytes, relayed with the longest prefix (a 64-byte name, anti-ping on) to the longest
// channel name the budget assumes, fits MaxLines lines: the gateway's split, not the
// connector's "… (N more lines)", is what a longer text meets.
func TestCapabilities_maxTextLenFitsMaxLines(t *testing.T) {
	for _, maxLines := range []int{2, 5, 20} {
		c, err := New(Config{Name: "libera", Server: "127.0.0.1:6667", Nick: "sg", User: "sg", MaxLines: maxLines,
			Channels: []ChannelConfig{{Name: "#s"}}})
		if err != nil {
			t.Fatal(err)
		}
		n := c.Capabilities().MaxTextLen
		prefix := "<" + relayNick(strings.Repeat("n", 80), true) + "> "
		budget := wireBudget(maxNickLen, "sg", "#s", false)
		for _, text := range []string{strings.Repeat("x", n), strings.Repeat("é", n/2)} {
			lines := shape(text, prefix, budget, maxLines)
			if got := strings.Join(lines, ""); strings.Contains(got, "more lines)") {
				t.Errorf("max_lines %d: %d bytes (MaxTextLen %d) became %d lines, capped", maxLines, len(text), n, len(lines))
			}
		}
	}
}

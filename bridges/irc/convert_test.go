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

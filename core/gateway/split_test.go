package gateway

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var markerRE = regexp.MustCompile(`^\((\d+)/(\d+)\)[ \n]`)

// checkParts checks the invariants of splitText's result for text: every part fits,
// parts carry markers "(i/n)" in order when there are several, and, unless cut, the
// parts hold every non-space character of text in order.
func checkParts(t testing.TB, text string, lim textLimit, overhead, maxParts int, parts []string) {
	t.Helper()
	if len(parts) == 0 {
		t.Fatalf("no parts for %q", text)
	}
	if len(parts) > max(maxParts, 1) {
		t.Fatalf("%d parts, max %d", len(parts), maxParts)
	}
	var joined strings.Builder
	for i, p := range parts {
		if m := lim.measure(p) + overhead; lim.max > 0 && m > lim.max {
			t.Fatalf("part %d measures %d with overhead, limit %d: %.80q", i+1, m, lim.max, p)
		}
		if !utf8.ValidString(p) {
			t.Fatalf("part %d is not UTF-8", i+1)
		}
		body := p
		if len(parts) > 1 {
			m := markerRE.FindStringSubmatch(p)
			if m == nil || m[1] != fmt.Sprint(i+1) || m[2] != fmt.Sprint(len(parts)) {
				t.Fatalf("part %d of %d has no marker: %.40q", i+1, len(parts), p)
			}
			body = p[len(m[0]):]
		}
		joined.WriteString(body)
	}
	cut := strings.HasSuffix(parts[len(parts)-1], truncMarker) || strings.HasSuffix(parts[len(parts)-1], truncMarker+"\n```")
	if cut {
		return
	}
	strip := func(s string) string { return strings.Join(strings.Fields(s), "") }
	if !strings.Contains(text, "```") {
		if strip(joined.String()) != strip(text) {
			t.Fatalf("parts lose text:\n got %.200q\nwant %.200q", strip(joined.String()), strip(text))
		}
		return
	}
	// Code blocks cut between parts are closed and reopened: the parts add fence
	// lines but still hold every non-space character of text, in order.
	got, want := strip(joined.String()), strip(text)
	for _, r := range want {
		i := strings.IndexRune(got, r)
		if i < 0 {
			t.Fatalf("parts lose text of a code block:\n got %.200q\nwant %.200q", strip(joined.String()), want)
		}
		got = got[i+utf8.RuneLen(r):]
	}
}

func TestSplitText_boundaries(t *testing.T) {
	lim := textLimit{max: 60}
	para := strings.Repeat("word ", 6) + "end." // 34 bytes
	cases := []struct {
		name, text string
		want       []string
	}{
		{"fits", "short text", []string{"short text"}},
		{"paragraphs", para + "\n\n" + para + "\n\n" + para,
			[]string{"(1/3) " + para, "(2/3) " + para, "(3/3) " + para}},
		{"lines", para + "\n" + para, []string{"(1/2) " + para, "(2/2) " + para}},
		{"words", strings.Repeat("abcdefghi ", 10), []string{
			"(1/2) abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi",
			"(2/2) abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi ",
		}},
		{"runes", strings.Repeat("é", 40), []string{"(1/2) " + strings.Repeat("é", 27), "(2/2) " + strings.Repeat("é", 13)}},
		{"quote", para + "\n\n> " + para, []string{"(1/2) " + para, "(2/2)\n> " + para}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := splitText(c.text, lim, 0, LongSplit, 10)
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
			checkParts(t, c.text, lim, 0, 10, got)
		})
	}
}

func TestSplitText_statusRunes(t *testing.T) {
	// Status counts characters: 4,100 × "a" with a 14-character nick prefix is two
	// parts of at most 4,096 characters each, prefix included.
	lim := textLimit{max: 4096, runes: true}
	prefix := "[api] <Alice> "
	text := strings.Repeat("a", 4100)
	parts := splitText(text, lim, len(prefix), LongSplit, 10)
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	checkParts(t, text, lim, len(prefix), 10, parts)
	// Multi-byte characters count once.
	text = strings.Repeat("ж", 4000)
	if parts := splitText(text, lim, len(prefix), LongSplit, 10); len(parts) != 1 {
		t.Errorf("4,000 two-byte characters: %d parts, want 1", len(parts))
	}
}

func TestSplitText_truncateAndCap(t *testing.T) {
	lim := textLimit{max: 50}
	text := strings.Repeat("0123456789 ", 40)
	got := splitText(text, lim, 5, LongTruncate, 10)
	if len(got) != 1 || !strings.HasSuffix(got[0], truncMarker) || len(got[0])+5 > 50 {
		t.Errorf("truncate: %q", got)
	}
	got = splitText(text, lim, 5, LongSplit, 3)
	if len(got) != 3 || !strings.HasSuffix(got[2], truncMarker) {
		t.Errorf("split capped at 3: %q", got)
	}
	checkParts(t, text, lim, 5, 3, got)
	// Ten parts and more: the marker grows a digit and still fits.
	got = splitText(strings.Repeat("x", 2000), lim, 0, LongSplit, 100)
	if len(got) < 10 {
		t.Fatalf("%d parts, want ≥ 10", len(got))
	}
	checkParts(t, strings.Repeat("x", 2000), lim, 0, 100, got)
}

func TestSplitText_codeFence(t *testing.T) {
	lim := textLimit{max: 80}
	code := "```go\n" + strings.Repeat("fmt.Println(42)\n", 12) + "```"
	got := splitText(code, lim, 0, LongSplit, 10)
	if len(got) < 2 {
		t.Fatalf("%d parts", len(got))
	}
	checkParts(t, code, lim, 0, 10, got)
	for i, p := range got {
		body := markerRE.ReplaceAllString(p, "")
		if !strings.HasPrefix(body, "```") || openFence(body) != "" {
			t.Errorf("part %d is not a closed code block: %q", i+1, p)
		}
	}
}

func FuzzSplitText(f *testing.F) {
	f.Add("hello\n\nworld "+strings.Repeat("é", 300), 64, 10, false, 3)
	f.Add("```\ncode\n```\n"+strings.Repeat("a b\n", 100), 40, 0, true, 10)
	f.Fuzz(func(t *testing.T, text string, max, overhead int, runes bool, maxParts int) {
		if !utf8.ValidString(text) || max <= 0 || max > 1<<16 || overhead < 0 || overhead > max || maxParts < 1 || maxParts > 50 {
			return
		}
		lim := textLimit{max: max, runes: runes}
		parts := splitText(text, lim, overhead, LongSplit, maxParts)
		if lim.max-overhead < 16+len(truncMarker)+8 { // too small for anything but a cut
			return
		}
		checkParts(t, text, lim, overhead, maxParts, parts)
	})
}

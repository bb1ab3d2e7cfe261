package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Long text. A destination takes at most so much text in one message: Status 4,096
// characters (core/chat.MaxTextLength), a connector Capabilities.MaxTextLen bytes. A
// longer text is split into parts, each posted as its own message with a "(1/3) "
// marker, or cut with a visible marker, as the route's LongText says. Both are
// deterministic functions of the event and the configuration, so a retry (after a
// restart too) posts the same parts, with the same idempotency keys and Status clocks.

// LongText is a route's policy for text longer than a destination takes.
type LongText uint8

// The policies. The zero value is LongSplit.
const (
	// LongSplit posts a long text as several messages, cut at paragraph, then line,
	// then word, then character boundaries, each marked "(i/n) ", at most
	// Config.MaxParts of them (the last one then cut as by LongTruncate).
	LongSplit LongText = iota
	// LongTruncate posts the start of a long text with truncMarker at its end.
	LongTruncate
)

// ParseLongText reads "split" (or "") or "truncate".
func ParseLongText(s string) (LongText, error) {
	switch s {
	case "split", "":
		return LongSplit, nil
	case "truncate":
		return LongTruncate, nil
	}
	return 0, fmt.Errorf("long_text %q is not split or truncate", s)
}

// String returns "split" or "truncate".
func (l LongText) String() string {
	if l == LongTruncate {
		return "truncate"
	}
	return "split"
}

// truncMarker ends a text that was cut: readers see that something is missing.
const truncMarker = " […]"

// textLimit is how much text one message of a destination takes.
type textLimit struct {
	max   int  // 0: no limit
	runes bool // max counts runes (Status), else bytes (connectors)
}

func (l textLimit) measure(s string) int {
	if l.runes {
		return utf8.RuneCountInString(s)
	}
	return len(s)
}

// cut returns the longest prefix of s that measures at most n, at a rune boundary.
func (l textLimit) cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if !l.runes {
		if len(s) <= n {
			return s
		}
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:n]
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// splitText returns the texts to post for text at a destination of limit lim, where
// each text is framed by overhead more units (a nick prefix): text itself when it fits,
// else the parts by policy (at most maxParts). Every element, with the overhead, fits
// lim. A limit too small to hold anything but the overhead and a marker yields a
// single part cut to what fits.
func splitText(text string, lim textLimit, overhead int, policy LongText, maxParts int) []string {
	if lim.max <= 0 || lim.measure(text)+overhead <= lim.max {
		return []string{text}
	}
	room := lim.max - overhead
	if policy == LongTruncate || maxParts <= 1 {
		return []string{truncate(text, lim, room)}
	}
	fence := 0
	if strings.Contains(text, "```") {
		fence = len("\n```") // closing a code block a cut falls in (chunkText reserves the reopening)
	}
	n := 2
	for {
		budget := room - len(partMarker(n, n, "")) - fence
		if budget < 16 { // nothing sensible fits: one cut part
			return []string{truncate(text, lim, room)}
		}
		chunks := chunkText(text, lim, budget, maxParts)
		if len(strconv.Itoa(len(chunks))) > len(strconv.Itoa(n)) {
			n = len(chunks) // the marker grows a digit: cut again
			continue
		}
		out := make([]string, len(chunks))
		for i, c := range chunks {
			out[i] = partMarker(i+1, len(chunks), c) + c
		}
		return out
	}
}

// partMarker is the marker of part i of n, put before part: "(i/n) ", or "(i/n)\n"
// when the part opens with a block (quote or code fence) that must start its line.
func partMarker(i, n int, part string) string {
	sep := " "
	if strings.HasPrefix(part, ">") || strings.HasPrefix(part, "```") {
		sep = "\n"
	}
	return "(" + strconv.Itoa(i) + "/" + strconv.Itoa(n) + ")" + sep
}

// truncate cuts text to fit room with truncMarker.
func truncate(text string, lim textLimit, room int) string {
	if lim.measure(text) <= room {
		return text
	}
	keep := room - lim.measure(truncMarker)
	if keep <= 0 {
		return lim.cut(text, room)
	}
	head, _ := cutAtBoundary(text, lim, keep)
	return head + truncMarker
}

// chunkText cuts text into chunks of at most budget (plus the fence reserve), at most
// maxParts of them: the last one is cut with truncMarker when text is longer.
func chunkText(text string, lim textLimit, budget, maxParts int) []string {
	var out []string
	open := "" // the fence line a chunk must reopen ("```lang"), if the cut fell in a code block
	for text != "" {
		if len(out) == maxParts-1 {
			last := truncate(text, lim, budget-lim.measure(open))
			out = append(out, closeFence(open+last))
			return out
		}
		head, rest := cutAtBoundary(text, lim, budget-lim.measure(open))
		if head == "" { // budget smaller than one rune: cannot happen with budget ≥ 16 and open ≤ budget/4
			head, rest = text, ""
		}
		chunk := open + head
		open = openFence(chunk)
		if lim.measure(open) > budget/4 {
			// Every later part repeats the opening line: a long info string (or a
			// fence line longer than a part) would leave no room for the text, so
			// the block reopens without it.
			open = "```"
		}
		if open != "" && rest != "" {
			chunk += "\n```"
			open += "\n"
		} else {
			open = ""
		}
		out = append(out, chunk)
		text = rest
	}
	return out
}

// openFence returns the opening line ("```lang") of the code block chunk ends in, or ""
// when it ends outside one.
func openFence(chunk string) string {
	fence := ""
	for line := range strings.SplitSeq(chunk, "\n") {
		if strings.HasPrefix(line, "```") {
			if fence == "" {
				fence = line
			} else {
				fence = ""
			}
		}
	}
	return fence
}

// closeFence closes a code block left open at the end of s.
func closeFence(s string) string {
	if openFence(s) != "" {
		return s + "\n```"
	}
	return s
}

// cutAtBoundary returns the longest head of text measuring at most budget that ends at
// the best boundary in its second half: a paragraph break, else a line break, else a
// space, else any rune boundary; and the rest after the boundary (separator dropped).
func cutAtBoundary(text string, lim textLimit, budget int) (head, rest string) {
	window := lim.cut(text, budget)
	if len(window) == len(text) {
		return text, ""
	}
	half := len(window) / 2
	for _, sep := range []string{"\n\n", "\n", " "} {
		// A separator right after the window still ends the head inside the budget.
		end := min(len(window)+len(sep), len(text))
		if i := strings.LastIndex(text[:end], sep); i >= half && i > 0 {
			return text[:i], strings.TrimLeft(text[i+len(sep):], sepTrim(sep))
		}
	}
	return window, text[len(window):]
}

// sepTrim is what is trimmed from the start of the rest after a cut at sep.
func sepTrim(sep string) string {
	if sep == " " {
		return " "
	}
	return "\n"
}

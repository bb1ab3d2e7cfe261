package slack

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/statusgate/statusgate/bridges"
)

// Canonical text (bridges/text.go) ⇄ Slack mrkdwn.
//
//	canonical            mrkdwn
//	**strong** __x__     *strong*
//	*emphasis* _x_       _emphasis_
//	`code`               `code`
//	```lang … ```        ``` … ```  (the info string is dropped)
//	> quote              > quote
//	[text](url)          <url|text>
//	<url>                <url>
//	& < >                &amp; &lt; &gt;  (Slack requires these three escaped)
//
// Slack has no escape for its own markup characters, so a canonical "\*" reaches Slack
// as a bare "*" and may pair up with another; this is shown, not lost. Inbound, user
// mentions <@U…> become "@name" (resolved through users.info), channel links <#C…|name>
// become "#name", and <!here>-style broadcasts become "@here".

// maxDepth bounds the nesting of emphasis the converters follow; deeper markers are
// shown literally. It keeps hostile input linear enough.
const maxDepth = 8

// toMrkdwn converts canonical text to Slack mrkdwn.
func toMrkdwn(s string) string {
	var cv mrkdwnConv
	return cv.convert(s)
}

// mrkdwnConv is one conversion to mrkdwn. steps counts the bytes its searches examine
// (TestToMrkdwn_linear bounds it by the input's length).
type mrkdwnConv struct {
	steps int
}

// scanned is how many bytes a search examined that found its target at j (-1: not
// found in rest bytes).
func scanned(j, rest int) int {
	if j >= 0 {
		return j + 1
	}
	return rest
}

func (cv *mrkdwnConv) convert(s string) string {
	var b strings.Builder
	inFence := false
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			b.WriteString("```")
			continue
		}
		if inFence {
			b.WriteString(escapeSlack(line))
			continue
		}
		if rest, ok := strings.CutPrefix(line, ">"); ok {
			b.WriteString("> ")
			line = strings.TrimPrefix(rest, " ")
		}
		b.WriteString(cv.inline(line, 0))
	}
	return b.String()
}

// escapeSlack escapes the three characters Slack requires escaped.
func escapeSlack(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return slackEscaper.Replace(s)
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// isPunct reports whether c is ASCII punctuation (what canonical text may escape).
func isPunct(c byte) bool {
	return c < utf8.RuneSelf && unicode.IsPunct(rune(c)) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '`' || c == '|' || c == '~'
}

// lineMemo makes one inline conversion linear: every search it does either starts
// after the last one of its kind ended or is answered from what that one found, so
// hostile text (openers without closers, links and autolinks that never close) costs a
// fixed number of passes, not one per opener.
type lineMemo struct {
	// failFrom[k] is where a closer search for delimiter k ("*", "**", "_", "__") found
	// nothing up to the end of the line; a search starting at or after it finds
	// nothing either (the scans run in step with the conversion's own). -1: none yet.
	failFrom [4]int
	tick     nextCache // "`"
	mid      nextCache // "]("
	paren    nextCache // ")"
	gt       nextCache // ">"
	lt       nextCache // "<"
	// urlAt is the mid ("](") whose URL was checked, with the result.
	urlAt int
	urlOK bool
}

func newLineMemo() *lineMemo {
	return &lineMemo{failFrom: [4]int{-1, -1, -1, -1}, urlAt: -1}
}

// nextCache remembers the last search for one pattern.
type nextCache struct {
	valid    bool
	from, at int // searched from from, found at at (-1: not found up to the end)
}

// next returns the index of the first pat in s at or after from, or -1. A search
// starts only where the last one's answer no longer holds: past what it found.
func (c *nextCache) next(cv *mrkdwnConv, s string, from int, pat string) int {
	if c.valid && from >= c.from && (c.at < 0 || c.at >= from) {
		return c.at
	}
	j := strings.Index(s[from:], pat)
	cv.steps += scanned(j, len(s)-from)
	c.valid, c.from, c.at = true, from, j
	if j >= 0 {
		c.at = from + j
	}
	return c.at
}

// delimKind is delim's index in lineMemo.failFrom.
func delimKind(delim string) int {
	k := len(delim) - 1
	if delim[0] == '_' {
		k += 2
	}
	return k
}

// closer returns the index in s (searched from start) of delim closing an emphasis:
// not escaped, preceded by a non-space, and for a single-character delim not part of a
// double. It returns -1 if there is none.
func (cv *mrkdwnConv) closer(m *lineMemo, s string, start int, delim string) int {
	k := delimKind(delim)
	if f := m.failFrom[k]; f >= 0 && start >= f {
		return -1
	}
	for i := start; i < len(s); i++ {
		cv.steps++
		switch {
		case s[i] == '\\':
			i++
		case s[i] == '`':
			if j := m.tick.next(cv, s, i+1, "`"); j >= 0 {
				i = j
			}
		case strings.HasPrefix(s[i:], delim) && i > start && s[i-1] != ' ':
			if len(delim) == 1 && i+1 < len(s) && s[i+1] == delim[0] {
				i++ // a double delimiter inside: skip it
				continue
			}
			if len(delim) == 2 && i+2 < len(s) && s[i+2] == delim[0] {
				continue // "***": the strong closer is the last two
			}
			return i
		}
	}
	m.failFrom[k] = start
	return -1
}

func (cv *mrkdwnConv) inline(s string, depth int) string {
	var b strings.Builder
	m := newLineMemo()
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isPunct(s[i+1]):
			b.WriteString(escapeSlack(s[i+1 : i+2]))
			i += 2
			continue
		case c == '`':
			if j := m.tick.next(cv, s, i+1, "`"); j > i+1 {
				b.WriteString("`" + escapeSlack(s[i+1:j]) + "`")
				i = j + 1
				continue
			}
		case (c == '*' || c == '_') && depth < maxDepth:
			d := string(c)
			if i+1 < len(s) && s[i+1] == c {
				d += d
			}
			start := i + len(d)
			if start < len(s) && s[start] != ' ' {
				if j := cv.closer(m, s, start, d); j > start {
					mark := "_"
					if len(d) == 2 {
						mark = "*"
					}
					b.WriteString(mark + cv.inline(s[start:j], depth+1) + mark)
					i = j + len(d)
					continue
				}
			}
			b.WriteString(d)
			i += len(d)
			continue
		case c == '[':
			if label, url, end, ok := cv.canonicalLink(m, s, i); ok {
				b.WriteString("<" + slackURL(url) + "|" + escapeSlack(plainOf(label)) + ">")
				i = end
				continue
			}
		case c == '<':
			// An autolink holds no '<': only the last '<' before a '>' is checked.
			if j := m.gt.next(cv, s, i+1, ">"); j > i+1 {
				if lt := m.lt.next(cv, s, i+1, "<"); lt < 0 || lt > j {
					cv.steps += j - i
					if isURL(s[i+1 : j]) {
						b.WriteString("<" + slackURL(s[i+1:j]) + ">")
						i = j + 1
						continue
					}
				}
			}
		}
		b.WriteString(escapeSlack(s[i : i+1]))
		i++
	}
	return b.String()
}

// canonicalLink parses "[label](url)" at s[i:], returning the link's end in s.
func (cv *mrkdwnConv) canonicalLink(m *lineMemo, s string, i int) (label, url string, end int, ok bool) {
	mid := m.mid.next(cv, s, i, "](")
	if mid < i+1 {
		return "", "", 0, false
	}
	paren := m.paren.next(cv, s, mid+2, ")")
	if paren < mid+3 {
		return "", "", 0, false
	}
	url = s[mid+2 : paren]
	if m.urlAt != mid { // every '[' before this "](" has the same URL: check it once
		cv.steps += len(url)
		m.urlAt, m.urlOK = mid, isURL(url)
	}
	if !m.urlOK {
		return "", "", 0, false
	}
	return s[i+1 : mid], url, paren + 1, true
}

// isURL reports whether s looks like an absolute URL: scheme ":" and no spaces.
func isURL(s string) bool {
	colon := strings.IndexByte(s, ':')
	if colon < 1 || strings.ContainsAny(s, " \t\n<>") {
		return false
	}
	for i := 0; i < colon; i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// slackURL is url made safe inside <…|…>.
func slackURL(url string) string {
	return strings.ReplaceAll(escapeSlack(url), "|", "%7C")
}

// plainOf strips canonical markup from a link label: Slack labels show no formatting.
func plainOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && isPunct(s[i+1]):
			i++
			b.WriteByte(s[i])
		case c == '*' || c == '_' || c == '`':
		case c == '|':
			b.WriteByte('/')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// resolver turns Slack references into display names; nil resolves nothing.
type resolver interface {
	userName(id string) string // "" when unknown
}

// fromMrkdwn converts Slack mrkdwn (as found in a message event's text) to canonical
// text. The result always passes bridges.ValidText.
func fromMrkdwn(s string, r resolver) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	convertMrkdwn(&b, s, r, 0)
	return clip(b.String())
}

// clip removes control characters other than "\n" and "\t" and cuts the text to
// bridges.MaxTextLen at a rune boundary.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if bridges.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > bridges.MaxTextLen {
		s = bridges.Truncate(s, bridges.MaxTextLen)
		// do not leave a dangling backslash escape
		if n := len(s) - len(strings.TrimRight(s, `\`)); n%2 == 1 {
			s = s[:len(s)-1]
		}
	}
	return s
}

// unescapeSlack decodes the three entities Slack escapes.
func unescapeSlack(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return slackUnescaper.Replace(s)
}

var slackUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

func convertMrkdwn(b *strings.Builder, s string, r resolver, depth int) {
	lineStart := true
	for i := 0; i < len(s); {
		c := s[i]
		if lineStart && depth == 0 {
			if rest, ok := strings.CutPrefix(s[i:], "&gt;"); ok {
				b.WriteString("> ")
				i += 4
				if strings.HasPrefix(rest, " ") {
					i++
				}
				lineStart = false
				continue
			}
		}
		lineStart = false
		switch {
		case c == '\n':
			b.WriteByte('\n')
			i++
			lineStart = true
			continue
		case strings.HasPrefix(s[i:], "```") && depth == 0:
			if j := strings.Index(s[i+3:], "```"); j >= 0 {
				code := strings.Trim(unescapeSlack(s[i+3:i+3+j]), "\n")
				if out := b.String(); out != "" && !strings.HasSuffix(out, "\n") {
					b.WriteByte('\n')
				}
				// a line starting with ``` would close the fence early
				code = strings.ReplaceAll(code, "\n```", "\n ```")
				b.WriteString("```\n" + code + "\n```")
				i += j + 6
				if i < len(s) && s[i] != '\n' {
					b.WriteByte('\n')
					lineStart = true
				}
				continue
			}
		case c == '`':
			if j := strings.IndexByte(s[i+1:], '`'); j > 0 {
				b.WriteString("`" + strings.ReplaceAll(unescapeSlack(s[i+1:i+1+j]), "\n", " ") + "`")
				i += j + 2
				continue
			}
		case (c == '*' || c == '_') && depth < maxDepth:
			start := i + 1
			if start < len(s) && s[start] != ' ' && s[start] != c {
				if j := mrkdwnCloser(s, start, c); j > start {
					mark := "*" // _x_ → *x*
					if c == '*' {
						mark = "**"
					}
					b.WriteString(mark)
					convertMrkdwn(b, s[start:j], r, depth+1)
					b.WriteString(mark)
					i = j + 1
					continue
				}
			}
		case c == '<':
			if j := strings.IndexByte(s[i:], '>'); j > 1 && !strings.Contains(s[i+1:i+j], "\n") {
				b.WriteString(reference(s[i+1:i+j], r))
				i += j + 1
				continue
			}
		case c == '&':
			for _, e := range [...]struct{ ent, ch string }{{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}} {
				if strings.HasPrefix(s[i:], e.ent) {
					b.WriteString(bridges.Escape(e.ch))
					i += len(e.ent)
					goto next
				}
			}
		case c == '\r':
			i++
			continue
		}
		{
			_, n := utf8.DecodeRuneInString(s[i:])
			b.WriteString(bridges.Escape(s[i : i+n]))
			i += n
		}
	next:
	}
}

// mrkdwnCloser finds the closing c of a mrkdwn emphasis opened before start, on the
// same line, preceded by a non-space.
func mrkdwnCloser(s string, start int, c byte) int {
	for i := start; i < len(s) && s[i] != '\n'; i++ {
		if s[i] == c && s[i-1] != ' ' {
			return i
		}
	}
	return -1
}

// reference converts the inside of a Slack <…> reference to canonical text.
func reference(ref string, r resolver) string {
	target, label, hasLabel := strings.Cut(ref, "|")
	label = unescapeSlack(label)
	switch {
	case strings.HasPrefix(target, "@"):
		name := label
		if r != nil {
			if n := r.userName(target[1:]); n != "" {
				name = n
			}
		}
		if name == "" {
			name = target[1:]
		}
		return "@" + bridges.Escape(name)
	case strings.HasPrefix(target, "#"):
		if label == "" {
			label = target[1:]
		}
		return "#" + bridges.Escape(label)
	case strings.HasPrefix(target, "!"):
		if hasLabel {
			return bridges.Escape(label)
		}
		name, _, _ := strings.Cut(target[1:], "^")
		return "@" + bridges.Escape(name)
	}
	url := unescapeSlack(target)
	if !isURL(url) || strings.ContainsAny(url, "()[]") {
		if hasLabel {
			return bridges.Escape(label + " (" + url + ")")
		}
		return bridges.Escape(url)
	}
	if !hasLabel || label == url {
		return "<" + url + ">"
	}
	return "[" + bridges.Escape(label) + "](" + url + ")"
}

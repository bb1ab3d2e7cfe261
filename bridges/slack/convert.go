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
		b.WriteString(inlineToMrkdwn(line, 0))
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

// closer returns the index in s (searched from start) of delim closing an emphasis:
// not escaped, preceded by a non-space, and for a single-character delim not part of a
// double. It returns -1 if there is none.
func closer(s string, start int, delim string) int {
	for i := start; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case s[i] == '`':
			if j := strings.IndexByte(s[i+1:], '`'); j >= 0 {
				i += j + 1
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
	return -1
}

func inlineToMrkdwn(s string, depth int) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isPunct(s[i+1]):
			b.WriteString(escapeSlack(s[i+1 : i+2]))
			i += 2
			continue
		case c == '`':
			if j := strings.IndexByte(s[i+1:], '`'); j > 0 {
				b.WriteString("`" + escapeSlack(s[i+1:i+1+j]) + "`")
				i += j + 2
				continue
			}
		case (c == '*' || c == '_') && depth < maxDepth:
			d := string(c)
			if i+1 < len(s) && s[i+1] == c {
				d += d
			}
			start := i + len(d)
			if start < len(s) && s[start] != ' ' {
				if j := closer(s, start, d); j > start {
					mark := "_"
					if len(d) == 2 {
						mark = "*"
					}
					b.WriteString(mark + inlineToMrkdwn(s[start:j], depth+1) + mark)
					i = j + len(d)
					continue
				}
			}
			b.WriteString(d)
			i += len(d)
			continue
		case c == '[':
			if label, url, n, ok := canonicalLink(s[i:]); ok {
				b.WriteString("<" + slackURL(url) + "|" + escapeSlack(plainOf(label)) + ">")
				i += n
				continue
			}
		case c == '<':
			if j := strings.IndexByte(s[i:], '>'); j > 1 && isURL(s[i+1:i+j]) {
				b.WriteString("<" + slackURL(s[i+1:i+j]) + ">")
				i += j + 1
				continue
			}
		}
		b.WriteString(escapeSlack(s[i : i+1]))
		i++
	}
	return b.String()
}

// canonicalLink parses "[label](url)" at the start of s, returning its length.
func canonicalLink(s string) (label, url string, n int, ok bool) {
	end := strings.Index(s, "](")
	if end < 1 {
		return "", "", 0, false
	}
	close := strings.IndexByte(s[end+2:], ')')
	if close < 1 {
		return "", "", 0, false
	}
	url = s[end+2 : end+2+close]
	if !isURL(url) {
		return "", "", 0, false
	}
	return s[1:end], url, end + 3 + close, true
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

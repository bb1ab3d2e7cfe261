package irc

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/statusgate/statusgate/bridges"
)

// IRC formatting control codes (https://modern.ircdocs.horse/formatting).
const (
	fmtBold      = '\x02'
	fmtColor     = '\x03'
	fmtHexColor  = '\x04'
	fmtReset     = '\x0f'
	fmtMonospace = '\x11'
	fmtReverse   = '\x16'
	fmtItalic    = '\x1d'
	fmtStrike    = '\x1e'
	fmtUnderline = '\x1f'
	ctcpDelim    = '\x01'
)

// Wire limits.
const (
	maxLine     = 512 // RFC 1459, with CR LF
	maxHostLen  = 63  // the host part of the prefix others see
	zwsp        = "\u200b"
	replacement = "\uFFFD"
)

// toCanonical converts the text of an IRC line to canonical text: bold → **, italic → *,
// colours, underline, strike-through, reverse and monospace stripped, plain text
// escaped (bridges.Escape), invalid UTF-8 and other control characters replaced.
func toCanonical(s string) string {
	s = strings.ToValidUTF8(s, replacement)
	var b strings.Builder
	var want, have struct{ bold, italic bool }
	var text strings.Builder
	flush := func() {
		if text.Len() == 0 {
			return
		}
		if (have.bold && !want.bold) || (have.italic && !want.italic) {
			if have.italic {
				b.WriteString("*")
			}
			if have.bold {
				b.WriteString("**")
			}
			have.bold, have.italic = false, false
		}
		if want.bold && !have.bold {
			b.WriteString("**")
			have.bold = true
		}
		if want.italic && !have.italic {
			b.WriteString("*")
			have.italic = true
		}
		b.WriteString(bridges.Escape(text.String()))
		text.Reset()
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == fmtBold:
			flush()
			want.bold = !want.bold
		case r == fmtItalic:
			flush()
			want.italic = !want.italic
		case r == fmtReset:
			flush()
			want.bold, want.italic = false, false
		case r == fmtColor:
			i += colorLen(s[i:], 2)
		case r == fmtHexColor:
			i += colorLen(s[i:], 6)
		case r == fmtMonospace || r == fmtReverse || r == fmtStrike || r == fmtUnderline:
		case r == '\t':
			text.WriteByte(' ')
		case isControl(r):
			text.WriteString(replacement)
		default:
			text.WriteRune(r)
		}
	}
	flush()
	if have.italic {
		b.WriteString("*")
	}
	if have.bold {
		b.WriteString("**")
	}
	return b.String()
}

// colorLen returns the length of the colour arguments after ^C ("fg" or "fg,bg", each
// up to width digits; hex colours use width 6 hex digits).
func colorLen(s string, width int) int {
	isDigit := func(c byte) bool {
		if width == 6 {
			return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
		}
		return '0' <= c && c <= '9'
	}
	n := 0
	for n < len(s) && n < width && isDigit(s[n]) {
		n++
	}
	if n == 0 {
		return 0
	}
	if n < len(s)-1 && s[n] == ',' && isDigit(s[n+1]) {
		m := n + 1
		for m < len(s) && m-n-1 < width && isDigit(s[m]) {
			m++
		}
		return m
	}
	return n
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// sanitize makes any string safe for the IRC wire: invalid UTF-8 and every control
// character but "\n" become U+FFFD ("\t" a space; "\r\n" and "\r" become "\n"). It is
// the single gate in front of the encoder: nothing that could end a line, hide a CTCP
// or format text reaches the wire unless the encoder put it there itself.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, replacement)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\r':
			return '\n'
		case r == '\t':
			return ' '
		case isControl(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

// fromCanonical converts canonical text to IRC text lines (without CR LF, never
// empty): ** and __ become bold, * and _ italic, `code` and fenced code blocks plain,
// links "text (url)", escapes resolved. Input is sanitized first.
func fromCanonical(s string) []string {
	var lines []string
	inFence := false
	for _, line := range strings.Split(sanitize(s), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if !inFence {
			line = inlineToIRC(line)
		}
		if strings.TrimSpace(stripCodes(line)) == "" {
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

func stripCodes(s string) string {
	return strings.Map(func(r rune) rune {
		if r == fmtBold || r == fmtItalic {
			return -1
		}
		return r
	}, s)
}

// inlineToIRC converts the inline markup of one canonical line.
func inlineToIRC(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
			b.WriteByte(s[i+1])
			i += 2
		case c == '`':
			if j := strings.IndexByte(s[i+1:], '`'); j >= 0 {
				b.WriteString(s[i+1 : i+1+j])
				i += j + 2
			} else {
				b.WriteByte(c)
				i++
			}
		case (c == '*' || c == '_') && i+1 < len(s) && s[i+1] == c:
			d := s[i : i+2]
			if j := strings.Index(s[i+2:], d); j > 0 && canOpen(s, i, 2) {
				b.WriteRune(fmtBold)
				b.WriteString(inlineToIRC(s[i+2 : i+2+j]))
				b.WriteRune(fmtBold)
				i += j + 4
			} else {
				b.WriteString(d)
				i += 2
			}
		case c == '*' || c == '_':
			if j := closing(s, i+1, c); j > 0 && canOpen(s, i, 1) {
				b.WriteRune(fmtItalic)
				b.WriteString(inlineToIRC(s[i+1 : i+1+j]))
				b.WriteRune(fmtItalic)
				i += j + 2
			} else {
				b.WriteByte(c)
				i++
			}
		case c == '<' && (strings.HasPrefix(s[i:], "<http://") || strings.HasPrefix(s[i:], "<https://")):
			if j := strings.IndexByte(s[i:], '>'); j > 0 {
				b.WriteString(s[i+1 : i+j])
				i += j + 1
			} else {
				b.WriteByte(c)
				i++
			}
		case c == '[':
			if text, url, n, ok := link(s[i:]); ok {
				b.WriteString(inlineToIRC(text))
				b.WriteString(" (" + url + ")")
				i += n
			} else {
				b.WriteByte(c)
				i++
			}
		default:
			_, n := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+n])
			i += n
		}
	}
	return b.String()
}

// canOpen: emphasis opens before a non-space, and '_' not inside a word.
func canOpen(s string, i, n int) bool {
	if i+n >= len(s) || s[i+n] == ' ' {
		return false
	}
	if s[i] == '_' && i > 0 && isWordByte(s[i-1]) {
		return false
	}
	return true
}

// closing finds the single delimiter c closing emphasis opened before from: not
// doubled, not after a space; returns its offset from from, or -1.
func closing(s string, from int, c byte) int {
	for j := from + 1; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] == c && s[j-1] != ' ' && (j+1 >= len(s) || s[j+1] != c) {
			if c == '_' && j+1 < len(s) && isWordByte(s[j+1]) {
				continue
			}
			return j - from
		}
	}
	return -1
}

func link(s string) (text, url string, n int, ok bool) {
	end := strings.Index(s, "](")
	if end < 0 {
		return "", "", 0, false
	}
	close := strings.IndexByte(s[end+2:], ')')
	if close < 0 {
		return "", "", 0, false
	}
	return s[1:end], s[end+2 : end+2+close], end + 3 + close, true
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80
}

func isASCIIPunct(c byte) bool {
	return c > ' ' && c < 0x7f && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9')
}

// relayNick is how a relayed sender appears: sanitized, one line, at most 64 bytes,
// with a zero-width space after the first character when antiPing is set.
func relayNick(name string, antiPing bool) string {
	name = strings.Join(strings.Fields(strings.ReplaceAll(sanitize(name), "\n", " ")), " ")
	if name == "" {
		name = "?"
	}
	if len(name) > maxRelayName {
		name = truncateRunes(name, maxRelayName)
	}
	if antiPing {
		_, n := utf8.DecodeRuneInString(name)
		if n < len(name) {
			name = name[:n] + zwsp + name[n:]
		}
	}
	return name
}

func truncateRunes(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxRelayName is the longest sender name in a relay prefix, in bytes.
const maxRelayName = 64

// wireBudget is the longest text (bytes) of a PRIVMSG/NOTICE to channel by nick!user
// (nickLen bytes of nick)
// so that the line others receive, ":nick!user@host PRIVMSG channel :text\r\n", fits
// 512 bytes with a host of up to 63 bytes and an ident prefix '~'. ACTION costs 9 more.
func wireBudget(nickLen int, user, channel string, action bool) int {
	n := maxLine - nickLen - len(":!~"+user+"@") - maxHostLen - len(" PRIVMSG "+channel+" :") - len("\r\n")
	if action {
		n -= len("\x01ACTION \x01")
	}
	return n
}

// shape turns canonical text from sender into at most maxLines IRC texts of at most
// budget bytes each: every line starts with prefix (such as "<alice> "), long lines are
// split on UTF-8 boundaries with the bold/italic state carried over, and lines past
// the cap are replaced by a last "… (N more lines)". Texts hold no CR, LF or NUL.
func shape(text, prefix string, budget, maxLines int) []string {
	var out []string
	for _, line := range fromCanonical(text) {
		out = append(out, splitLine(line, prefix, budget)...)
	}
	if len(out) > maxLines {
		more := len(out) - (maxLines - 1)
		out = append(out[:maxLines-1], prefix+"… ("+strconv.Itoa(more)+" more lines)")
	}
	return out
}

// splitLine splits prefix+line into texts of at most budget bytes on rune boundaries.
func splitLine(line, prefix string, budget int) []string {
	room := budget - len(prefix) - 2 // 2: the codes re-opened on a continuation
	if room < 16 {
		room = 16
		prefix = truncateRunes(prefix, budget-room-2)
	}
	var out []string
	bold, italic := false, false
	for line != "" {
		n := len(line)
		if n > room {
			n = len(truncateRunes(line, room))
		}
		var b strings.Builder
		b.WriteString(prefix)
		if bold {
			b.WriteRune(fmtBold)
		}
		if italic {
			b.WriteRune(fmtItalic)
		}
		chunk := line[:n]
		b.WriteString(chunk)
		out = append(out, b.String())
		bold = bold != (strings.Count(chunk, string(fmtBold))%2 == 1)
		italic = italic != (strings.Count(chunk, string(fmtItalic))%2 == 1)
		line = line[n:]
	}
	return out
}

package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/russolsen/transit"
)

// Transit (§7.1). Reading uses github.com/russolsen/transit, the library status-go used,
// so the Transit semantics (escapes, tags, the rolling write cache "^n", "~i" integers)
// are the ones late-2019 peers had. Writing is by hand: the library encodes Go maps in
// random key order and always emits the map's keys through a map[interface{}], so it
// cannot produce the byte-exact output of status-react's writer; a c4 record is a small
// fixed shape, written by writeC4 below with the same cache rules.

// Record tags (without "~#").
const (
	tagMessage    = "c4" // Message
	tagOldMessage = "c7" // older Message, read only
)

// transitMaxJSONInt is the largest integer Transit writes as a JSON number; larger ones
// become "~i…" strings (russolsen/transit emitter.go MaxJsonInt, transit-js likewise).
const transitMaxJSONInt = 1<<53 - 1

// decodeTransit decodes a Transit chat record (c4 or c7). Other well-formed records give
// an *UnsupportedRecordError.
func decodeTransit(b []byte) (*Message, string, error) {
	v, err := parseTransit(b)
	if err != nil {
		return nil, "", err
	}
	tv, ok := v.(transit.TaggedValue)
	if !ok {
		return nil, "", fmt.Errorf("decode transit: top level is %T, want a tagged record: %w", v, ErrMalformedTransit)
	}
	tag := string(tv.Tag)
	if tag != tagMessage && tag != tagOldMessage {
		return nil, tag, &UnsupportedRecordError{Tag: tag}
	}
	fields, ok := tv.Value.([]interface{})
	if !ok {
		return nil, tag, fmt.Errorf("decode transit %s: value is %T, want an array: %w", tag, tv.Value, ErrMalformedTransit)
	}
	m, err := messageFromFields(fields)
	if err != nil {
		return nil, tag, fmt.Errorf("decode transit %s: %w", tag, err)
	}
	m.Format = FormatTransit
	return m, tag, nil
}

// parseTransit reads exactly one Transit JSON value.
//
// russolsen/transit indexes and type-asserts without checking on some malformed input
// (a tag with no value `["~#c4"]`, an odd map-as-array `["^ ","k"]`, an unhashable map
// key `["^ ",[1],2]`, an empty rune `"~c"`, a link whose fields have the wrong types).
// A payload is one unit of work, so the recover below turns such a panic inside the
// library into ErrMalformedTransit for that payload; our own code never relies on it.
func parseTransit(b []byte) (v interface{}, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("parse transit: %w: rejected by decoder (%v)", ErrMalformedTransit, r)
		}
	}()
	jsd := json.NewDecoder(bytes.NewReader(b))
	v, err = transit.NewJsonDecoder(jsd).Decode()
	if err != nil {
		return nil, fmt.Errorf("parse transit: %w: %v", ErrMalformedTransit, err)
	}
	if _, err := jsd.Token(); err != io.EOF {
		return nil, fmt.Errorf("parse transit: %w: trailing data after the record", ErrMalformedTransit)
	}
	return v, nil
}

// messageFromFields maps the c4/c7 array to a Message. c4: [text-or-content, content-type,
// message-type, clock, timestamp, content?, …]; c7 has no 6th element. Content is element
// 6 when present, else element 1; a non-map content x means {:text (str x)}; elements
// after the 6th are ignored (the upgrade path).
func messageFromFields(f []interface{}) (*Message, error) {
	if len(f) < 5 {
		return nil, fmt.Errorf("%w: %d fields, want at least 5", ErrMalformedTransit, len(f))
	}
	m := &Message{}
	ct, ok := f[1].(string)
	if !ok {
		return nil, fmt.Errorf("%w: content-type is %T, want a string", ErrMalformedTransit, f[1])
	}
	if m.ContentType, ok = contentTypeFromString(ct); !ok {
		return nil, fmt.Errorf("content-type %.32q: %w", ct, ErrInvalidMessage)
	}
	var mt string
	switch k := f[2].(type) {
	case transit.Keyword:
		mt = string(k)
	case string: // lenient: a plain string instead of a keyword
		mt = k
	default:
		return nil, fmt.Errorf("%w: message-type is %T, want a keyword", ErrMalformedTransit, f[2])
	}
	if m.MessageType, ok = messageTypeFromKeyword(mt); !ok {
		return nil, fmt.Errorf("message-type %.32q: %w", mt, ErrInvalidMessage)
	}
	var err error
	if m.Clock, err = transitUint(f[3]); err != nil {
		return nil, fmt.Errorf("clock-value: %w", err)
	}
	if m.Timestamp, err = transitUint(f[4]); err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	content := f[0]
	if len(f) >= 6 && f[5] != nil {
		content = f[5]
	}
	if cm, isMap := content.(map[interface{}]interface{}); isMap {
		if err := m.setContent(cm); err != nil {
			return nil, err
		}
		if _, hasText := cm[transit.Keyword("text")]; !hasText {
			if s, isString := f[0].(string); isString {
				m.Text = s
			}
		}
	} else if m.Text, err = transitStr(content); err != nil {
		return nil, err
	}
	if m.ContentType == ContentSticker && m.Sticker == nil {
		m.Sticker = &Sticker{} // a sticker record without :hash/:pack still is a sticker
	}
	if m.ContentType != ContentSticker {
		m.Sticker = nil
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// setContent copies the known keys of the content map; unknown keys (legacy command
// fields, parsed-text caches, …) are ignored.
func (m *Message) setContent(cm map[interface{}]interface{}) error {
	str := func(key string, dst *string) error {
		v, ok := cm[transit.Keyword(key)]
		if !ok || v == nil {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%w: content :%s is %T, want a string", ErrMalformedTransit, key, v)
		}
		*dst = s
		return nil
	}
	for _, kv := range [...]struct {
		key string
		dst *string
	}{{"chat-id", &m.ChatID}, {"text", &m.Text}, {"response-to", &m.ResponseTo}, {"name", &m.ENSName}} {
		if err := str(kv.key, kv.dst); err != nil {
			return err
		}
	}
	_, hasHash := cm[transit.Keyword("hash")]
	_, hasPack := cm[transit.Keyword("pack")]
	if hasHash || hasPack {
		st := &Sticker{}
		if err := str("hash", &st.Hash); err != nil {
			return err
		}
		if v := cm[transit.Keyword("pack")]; v != nil {
			p, ok := v.(int64)
			if !ok || p < math.MinInt32 || p > math.MaxInt32 {
				return fmt.Errorf("%w: content :pack is %T %v, want an int32", ErrMalformedTransit, v, v)
			}
			st.Pack = int32(p)
		}
		m.Sticker = st
	}
	return nil
}

// transitUint accepts a non-negative integer: a JSON number, a "~i" string (int64), or an
// integral JSON float (lenient; JavaScript writers produce no such thing for clocks).
func transitUint(v interface{}) (uint64, error) {
	switch n := v.(type) {
	case int64:
		if n >= 0 {
			return uint64(n), nil
		}
	case float64:
		if n >= 0 && n <= transitMaxJSONInt && n == math.Trunc(n) {
			return uint64(n), nil
		}
	}
	return 0, fmt.Errorf("%w: %T %v is not an integer in [0, 2^63)", ErrMalformedTransit, v, v)
}

// transitStr is Clojure's (str x) for the scalar contents a c4/c7 may carry.
func transitStr(v interface{}) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case transit.Keyword:
		return ":" + string(x), nil
	}
	return "", fmt.Errorf("%w: content is %T, want a map or a scalar", ErrMalformedTransit, v)
}

// encodeTransit writes m as a c4 record the way status-react did in late 2019:
//
//	text/plain: ["~#c4",[text,"text/plain","~:<type>",clock,timestamp,["^ ",<content>]]]
//	otherwise:  ["~#c4",[["^ ",<content>],"<content-type>","~:<type>",clock,timestamp]]
//
// with the content map keys in the order chat-id, text, response-to (if set), name (if
// set), then hash and pack for stickers. m must have passed validate.
func encodeTransit(m *Message) ([]byte, error) {
	if m.Clock > math.MaxInt64 || m.Timestamp > math.MaxInt64 {
		return nil, fmt.Errorf("encode transit: clock %d / timestamp %d beyond 2^63-1: %w", m.Clock, m.Timestamp, ErrInvalidMessage)
	}
	w := transitWriter{buf: make([]byte, 0, 160+2*len(m.Text))}
	w.raw(`[`)
	w.cached("~#" + tagMessage)
	w.raw(`,[`)
	if m.ContentType == ContentTextPlain {
		w.str(m.Text)
		w.raw(`,`)
	} else {
		w.content(m)
		w.raw(`,`)
	}
	w.str(m.ContentType.String())
	w.raw(`,`)
	w.cached("~:" + m.MessageType.String())
	w.raw(`,`)
	w.int(m.Clock)
	w.raw(`,`)
	w.int(m.Timestamp)
	if m.ContentType == ContentTextPlain {
		w.raw(`,`)
		w.content(m)
	}
	w.raw(`]]`)
	return w.buf, nil
}

// transitWriter appends Transit JSON. It keeps the write cache: a map key, keyword,
// symbol or tag of 4+ characters (counting "~:"/"~#") is written in full the first time
// and as "^" + base-44 code afterwards. A c4 record never repeats one, so the cache only
// ever records; it is here so the writer stays correct if the shape grows.
type transitWriter struct {
	buf   []byte
	cache []string // index = cache code
}

func (w *transitWriter) raw(s string) { w.buf = append(w.buf, s...) }

func (w *transitWriter) int(v uint64) {
	if v > transitMaxJSONInt {
		w.buf = append(w.buf, `"~i`...)
		w.buf = strconv.AppendUint(w.buf, v, 10)
		w.buf = append(w.buf, '"')
		return
	}
	w.buf = strconv.AppendUint(w.buf, v, 10)
}

// cached writes an already-encoded keyword, tag or map key through the cache.
func (w *transitWriter) cached(s string) {
	if len(s) < 4 {
		w.quote(s)
		return
	}
	for i, c := range w.cache {
		if c == s {
			w.quote(cacheCode(i))
			return
		}
	}
	if len(w.cache) == 44*44 {
		w.cache = w.cache[:0]
	}
	w.cache = append(w.cache, s)
	w.quote(s)
}

// cacheCode is the Transit cache reference for index i: "^" + one base-44 digit below 44,
// else two; digits start at '0'.
func cacheCode(i int) string {
	if i < 44 {
		return string([]byte{'^', byte('0' + i)})
	}
	return string([]byte{'^', byte('0' + i/44), byte('0' + i%44)})
}

// str writes a string value, escaping a leading '~', '^' or '`' with '~' as Transit does.
func (w *transitWriter) str(s string) {
	if s != "" && (s[0] == '~' || s[0] == '^' || s[0] == '`') {
		s = "~" + s
	}
	w.quote(s)
}

// content writes the content map.
func (w *transitWriter) content(m *Message) {
	w.raw(`["^ ",`)
	w.cached("~:chat-id")
	w.raw(`,`)
	w.str(m.ChatID)
	w.raw(`,`)
	w.cached("~:text")
	w.raw(`,`)
	w.str(m.Text)
	if m.ResponseTo != "" {
		w.raw(`,`)
		w.cached("~:response-to")
		w.raw(`,`)
		w.str(m.ResponseTo)
	}
	if m.ENSName != "" {
		w.raw(`,`)
		w.cached("~:name")
		w.raw(`,`)
		w.str(m.ENSName)
	}
	if m.ContentType == ContentSticker && m.Sticker != nil {
		w.raw(`,`)
		w.cached("~:hash")
		w.raw(`,`)
		w.str(m.Sticker.Hash)
		w.raw(`,`)
		w.cached("~:pack")
		w.raw(`,`)
		w.buf = strconv.AppendInt(w.buf, int64(m.Sticker.Pack), 10)
	}
	w.raw(`]`)
}

// quote writes s as a JSON string the way JavaScript's JSON.stringify does (what
// transit-js in status-react used): only '"', '\\' and control characters are escaped,
// with the short forms where JSON has them and lowercase \u00xx otherwise; everything
// else, including non-ASCII, '<', '>' and '&', is written as is. s is valid UTF-8.
func (w *transitWriter) quote(s string) {
	const hexDigits = "0123456789abcdef"
	w.buf = append(w.buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		w.buf = append(w.buf, s[start:i]...)
		switch c {
		case '"', '\\':
			w.buf = append(w.buf, '\\', c)
		case '\b':
			w.buf = append(w.buf, '\\', 'b')
		case '\f':
			w.buf = append(w.buf, '\\', 'f')
		case '\n':
			w.buf = append(w.buf, '\\', 'n')
		case '\r':
			w.buf = append(w.buf, '\\', 'r')
		case '\t':
			w.buf = append(w.buf, '\\', 't')
		default:
			w.buf = append(w.buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	w.buf = append(w.buf, s[start:]...)
	w.buf = append(w.buf, '"')
}

// isTransit reports whether a payload is Transit JSON by the detection rule of Decode.
func isTransit(b []byte) bool { return len(b) > 0 && b[0] == '[' }

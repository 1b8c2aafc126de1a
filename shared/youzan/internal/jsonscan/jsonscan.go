// Package jsonscan reads JSON in one pass for the Youzan push and API
// readers: it checks the syntax of a whole text and hands the members of the
// objects a caller asks about to a visitor, without building anything.
package jsonscan

import (
	"encoding/json"
	"unicode/utf8"
)

// Scanner reads JSON in one pass: it checks the syntax of the
// whole text and hands each member of the objects it is asked about to a
// visitor, without building anything. It is at least as strict as
// encoding/json and never interprets what it is unsure of: keys with escapes
// or non-ASCII bytes, nesting deeper than encoding/json's limit, anything it
// refuses. On any of those the caller goes back to encoding/json, which then
// gives the answer, so the fast path changes speed, not results.
type Scanner struct {
	data  []byte
	i     int
	depth int
}

// maxDepth is encoding/json's nesting limit; deeper input goes to it.
const maxDepth = 10000

// New returns a Scanner at the start of data.
func New(data []byte) Scanner { return Scanner{data: data} }

// Peek is the byte at the scanner's position, 0 at the end.
func (s *Scanner) Peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func (s *Scanner) ws() {
	for s.i < len(s.data) && isSpace(s.data[s.i]) {
		s.i++
	}
}

// Whole reads data as one value followed by nothing but white space,
// visiting the members of a top-level object with visit (nil: check only).
func (s *Scanner) Whole(visit func(key []byte) bool) bool {
	s.ws()
	if visit != nil {
		if s.i >= len(s.data) || s.data[s.i] != '{' || !s.object(visit) {
			return false
		}
	} else if !s.Skip() {
		return false
	}
	s.ws()
	return s.i == len(s.data)
}

// Valid is json.Valid, fast on what the scanner reads.
func Valid(b []byte) bool {
	s := Scanner{data: b}
	return s.Whole(nil) || json.Valid(b)
}

// Skip checks one value at s.i and moves past it.
func (s *Scanner) Skip() bool {
	if s.i >= len(s.data) {
		return false
	}
	switch s.data[s.i] {
	case '{':
		return s.object(nil)
	case '[':
		return s.array()
	case '"':
		_, ok := s.str()
		return ok
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	return s.number()
}

// Capture checks the value at s.i and stores its text in dst.
func (s *Scanner) Capture(dst *[]byte) bool {
	start := s.i
	if !s.Skip() {
		return false
	}
	*dst = s.data[start:s.i]
	return true
}

// Sub visits the members of the object at s.i; any other value is checked
// and skipped. This is how encoding/json fills a struct field: null or a
// value of another type leaves it as it was.
func (s *Scanner) Sub(visit func(key []byte) bool) bool {
	if s.i < len(s.data) && s.data[s.i] == '{' {
		return s.object(visit)
	}
	return s.Skip()
}

func (s *Scanner) lit(w string) bool {
	if len(s.data)-s.i < len(w) || string(s.data[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

func (s *Scanner) number() bool {
	d, i := s.data, s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return false
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && isDigit(d[i]) {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && isDigit(d[i]) {
			i++
		}
		if i == j {
			return false
		}
	}
	s.i = i
	return true
}

// str checks the string at s.i. plain: it has no escape and no byte
// outside ASCII, so its text between the quotes is its value.
func (s *Scanner) str() (plain, ok bool) {
	d := s.data
	plain = true
	for i := s.i + 1; i < len(d); {
		// Most of a push is the text of msg: run over plain bytes first.
		for i < len(d) && plainByte[d[i]] {
			i++
		}
		if i >= len(d) {
			break
		}
		c := d[i]
		switch {
		case c == '"':
			s.i = i + 1
			return plain, true
		case c == '\\':
			plain = false
			i++
			if i >= len(d) {
				return false, false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(d)-i < 5 || !isHex(d[i+1]) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) {
					return false, false
				}
				i += 5
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		default:
			if c >= utf8.RuneSelf {
				plain = false
			}
			i++
		}
	}
	return false, false
}

// plainByte: a string byte that is its own value (ASCII, not a quote, a
// backslash or a control byte).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// object reads the object at s.i. With visit, each key is passed to it with
// s at the member's value, which visit must read (skip, capture or sub);
// a key that is not plain ends the scan (the caller falls back).
func (s *Scanner) object(visit func(key []byte) bool) bool {
	s.depth++
	if s.depth > maxDepth {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return false
		}
		k := s.i + 1
		plain, ok := s.str()
		if !ok {
			return false
		}
		key := s.data[k : s.i-1]
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if visit != nil {
			if !plain || !visit(key) {
				return false
			}
		} else if !s.Skip() {
			return false
		}
		s.ws()
		if s.i >= len(s.data) {
			return false
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

func (s *Scanner) array() bool {
	s.depth++
	if s.depth > maxDepth {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		if !s.Skip() {
			return false
		}
		s.ws()
		if s.i >= len(s.data) {
			return false
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// FoldKey is encoding/json's struct field matching for an ASCII key: equal
// but for the case of letters. name is lower case.
func FoldKey(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// UnquotePlain is Unquote without a copy: the text between the quotes, when
// it is the value. false: use Unquote.
func UnquotePlain(raw []byte) ([]byte, bool) {
	n := len(raw)
	if n < 2 || raw[0] != '"' || raw[n-1] != '"' {
		return nil, false
	}
	in := raw[1 : n-1]
	for _, c := range in {
		if c < utf8.RuneSelf && !plainByte[c] {
			return nil, false
		}
	}
	return in, utf8.Valid(in)
}

// Unquote is json.Unmarshal of a JSON string into a string, without it when
// the text between the quotes is the value: no escape, no quote, no control
// byte, valid UTF-8 (encoding/json replaces invalid bytes).
func Unquote(raw []byte) (string, error) {
	if in, ok := UnquotePlain(raw); ok {
		return string(in), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

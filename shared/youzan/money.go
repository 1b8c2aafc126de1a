package youzan

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/yzpay/yzpay/shared/youzan/internal/jsonscan"
)

// YuanToFen converts a decimal yuan amount ("0.01", "11.00", "3") to integer
// fen without ever going through a float. Amounts finer than a fen are an
// error rather than being rounded: Youzan never sends them, so one means we
// misread a field. Extra trailing zeros ("1.500") are exact and accepted.
func YuanToFen(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("youzan: empty amount")
	}
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i+1:]
		if frac == "" {
			return 0, fmt.Errorf("youzan: bad amount %q", s)
		}
	}
	if intPart == "" || !allDigits(intPart) || !allDigits(frac) {
		return 0, fmt.Errorf("youzan: bad amount %q", s)
	}
	for len(frac) > 2 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("youzan: amount %q is finer than a fen", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	fen, _ := strconv.ParseInt(frac, 10, 64)
	yuan, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || yuan > (math.MaxInt64-fen)/100 {
		return 0, fmt.Errorf("youzan: amount %q out of range", s)
	}
	return yuan*100 + fen, nil
}

// JSONYuanToFen converts a JSON yuan value to fen. Youzan sends amounts as
// strings ("0.01") in most places and as bare numbers (0.01) in some SDK
// models; both are taken from their literal digits.
func JSONYuanToFen(raw []byte) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] == '"' {
		s, err := jsonscan.Unquote(raw)
		if err != nil {
			return 0, fmt.Errorf("youzan: bad amount: %w", err)
		}
		if s == "" {
			return 0, nil
		}
		return YuanToFen(s)
	}
	return YuanToFen(string(raw))
}

// ID is a 64-bit Youzan id that arrives as a JSON number in some payloads and
// as a numeric string in others (qr_id, kdt_id, buyer_id…). Empty string and
// null decode to 0. It marshals as a JSON number.
type ID int64

// UnmarshalJSON accepts 123, "123", "" and null.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*id = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		s, err := jsonscan.Unquote(b)
		if err != nil {
			return err
		}
		b = []byte(s)
		if len(b) == 0 {
			*id = 0
			return nil
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("youzan: bad id %q", b)
	}
	*id = ID(n)
	return nil
}

// Fen is an amount decoded from a yuan JSON value (string or number) into
// integer fen.
type Fen int64

// UnmarshalJSON accepts "0.01", 0.01, "" and null.
func (f *Fen) UnmarshalJSON(b []byte) error {
	n, err := JSONYuanToFen(b)
	if err != nil {
		return err
	}
	*f = Fen(n)
	return nil
}

// text is a JSON scalar kept as text: strings as they are, numbers by their
// literal digits (status is documented as a number in one doc example).
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*t = ""
	case len(b) > 0 && b[0] == '"':
		s, err := jsonscan.Unquote(b)
		if err != nil {
			return err
		}
		*t = text(s)
	default:
		*t = text(b)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Package merchant signs and verifies the notifications yzpay POSTs to a
// merchant's server (the PUSH_API endpoints) when a payment changes status.
//
// The format is the original YouzanPayPortal's, so merchants that integrated
// with it keep working: fields tradeNo, orderId, payment (integer fen), status,
// uuid, time (unix seconds) and sign, where
//
//	sign = lowercase hex md5(time|tradeNo|orderId|payment|status|SELF_SECRET)
//
// uuid is not covered by the signature. The package depends only on the
// standard library so that merchants can copy or import it.
package merchant

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Fields are the values covered by the signature.
type Fields struct {
	Time    string // unix seconds as a decimal string, exactly as sent
	TradeNo string // "<tid>-<qr_id>"
	OrderID string // the merchant's order id
	Payment int64  // integer fen
	Status  string // Youzan trade status, e.g. TRADE_SUCCESS
}

// Sign returns the lowercase hex MD5 of time|tradeNo|orderId|payment|status|secret.
func Sign(f Fields, secret string) string {
	// On the stack for any realistic push: the notifier signs every one.
	var buf [256]byte
	b := append(buf[:0], f.Time...)
	b = append(b, '|')
	b = append(b, f.TradeNo...)
	b = append(b, '|')
	b = append(b, f.OrderID...)
	b = append(b, '|')
	b = strconv.AppendInt(b, f.Payment, 10)
	b = append(b, '|')
	b = append(b, f.Status...)
	b = append(b, '|')
	b = append(b, secret...)
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// Verify reports whether sign is the signature of f under secret. The
// comparison is constant-time so that a forger learns nothing from timing;
// upper-case hex is accepted because some merchant stacks normalise it.
func Verify(f Fields, secret, sign string) bool {
	want := Sign(f, secret)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(sign))) == 1
}

// Push is one notification as it travels to the merchant.
type Push struct {
	TradeNo string
	OrderID string
	Payment int64
	Status  string
	UUID    string
	Time    string
	Sign    string
}

// New builds a signed Push.
func New(f Fields, uuid, secret string) Push {
	return Push{
		TradeNo: f.TradeNo,
		OrderID: f.OrderID,
		Payment: f.Payment,
		Status:  f.Status,
		UUID:    uuid,
		Time:    f.Time,
		Sign:    Sign(f, secret),
	}
}

// Fields returns the signed part of p.
func (p Push) Fields() Fields {
	return Fields{Time: p.Time, TradeNo: p.TradeNo, OrderID: p.OrderID, Payment: p.Payment, Status: p.Status}
}

// Verify reports whether p carries a valid signature under secret.
func (p Push) Verify(secret string) bool {
	return Verify(p.Fields(), secret, p.Sign)
}

// Form returns p as the application/x-www-form-urlencoded fields the original
// service sent.
func (p Push) Form() url.Values {
	return url.Values{
		"tradeNo": {p.TradeNo},
		"orderId": {p.OrderID},
		"payment": {strconv.FormatInt(p.Payment, 10)},
		"status":  {p.Status},
		"uuid":    {p.UUID},
		"time":    {p.Time},
		"sign":    {p.Sign},
	}
}

// AppendForm appends p's form encoding to dst: exactly the bytes of
// p.Form().Encode() (keys sorted, values query-escaped), without building
// the url.Values.
func (p Push) AppendForm(dst []byte) []byte {
	dst = appendField(dst, "orderId=", p.OrderID)
	dst = append(dst, "&payment="...)
	dst = strconv.AppendInt(dst, p.Payment, 10) // digits and '-': never escaped
	dst = appendField(dst, "&sign=", p.Sign)
	dst = appendField(dst, "&status=", p.Status)
	dst = appendField(dst, "&time=", p.Time)
	dst = appendField(dst, "&tradeNo=", p.TradeNo)
	return appendField(dst, "&uuid=", p.UUID)
}

// appendField appends key (already escaped) and url.QueryEscape(v); the
// usual value (letters, digits, '-', '_', '.', '~') is copied as is, which
// is what QueryEscape returns for it.
func appendField(dst []byte, key, v string) []byte {
	dst = append(dst, key...)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return append(dst, url.QueryEscape(v)...)
		}
	}
	return append(dst, v...)
}

type jsonPush struct {
	TradeNo string `json:"tradeNo"`
	OrderID string `json:"orderId"`
	Payment int64  `json:"payment"`
	Status  string `json:"status"`
	UUID    string `json:"uuid"`
	Time    string `json:"time"`
	Sign    string `json:"sign"`
}

// JSON returns p as the JSON object the original service's README shows
// (docs/youzan.md#sources): payment is a number, time a string.
func (p Push) JSON() []byte {
	b, err := json.Marshal(jsonPush(p))
	if err != nil {
		// Only strings and an int64: Marshal cannot fail.
		panic(err)
	}
	return b
}

// MaxBodyBytes bounds what FromRequest reads; a real push is a few hundred bytes.
const MaxBodyBytes = 64 << 10

// ErrMalformed is returned by FromRequest for a body that is not a push.
var ErrMalformed = errors.New("merchant push: malformed push")

// FromRequest reads a push from r: JSON when the Content-Type is
// application/json (or +json), form fields otherwise. It does not verify the
// signature; call Push.Verify. payment must be a decimal integer in both
// encodings (a JSON string such as "10" is accepted too).
func FromRequest(r *http.Request) (Push, error) {
	if r.Body == nil {
		return Push{}, fmt.Errorf("%w: no body", ErrMalformed)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return Push{}, fmt.Errorf("merchant push: reading body: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return Push{}, fmt.Errorf("%w: body larger than %d bytes", ErrMalformed, MaxBodyBytes)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return fromJSON(body)
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return Push{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return fromForm(vals)
}

func fromForm(v url.Values) (Push, error) {
	p := Push{
		TradeNo: v.Get("tradeNo"),
		OrderID: v.Get("orderId"),
		Status:  v.Get("status"),
		UUID:    v.Get("uuid"),
		Time:    v.Get("time"),
		Sign:    v.Get("sign"),
	}
	pay, err := strconv.ParseInt(v.Get("payment"), 10, 64)
	if err != nil {
		return Push{}, fmt.Errorf("%w: payment is not an integer", ErrMalformed)
	}
	p.Payment = pay
	return p, nil
}

func fromJSON(body []byte) (Push, error) {
	var raw struct {
		TradeNo string          `json:"tradeNo"`
		OrderID string          `json:"orderId"`
		Payment json.RawMessage `json:"payment"`
		Status  string          `json:"status"`
		UUID    string          `json:"uuid"`
		Time    json.RawMessage `json:"time"`
		Sign    string          `json:"sign"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Push{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	pay, err := strconv.ParseInt(unquote(raw.Payment), 10, 64)
	if err != nil {
		return Push{}, fmt.Errorf("%w: payment is not an integer", ErrMalformed)
	}
	return Push{
		TradeNo: raw.TradeNo,
		OrderID: raw.OrderID,
		Payment: pay,
		Status:  raw.Status,
		UUID:    raw.UUID,
		// time is signed as text, so keep its digits exactly as sent
		// whether it arrived as a string or a number.
		Time: unquote(raw.Time),
		Sign: raw.Sign,
	}, nil
}

// unquote returns a JSON scalar's text: the string's contents, or a number's
// literal digits.
func unquote(r json.RawMessage) string {
	r = bytes.TrimSpace(r)
	if len(r) > 0 && r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s
		}
		return ""
	}
	if string(r) == "null" {
		return ""
	}
	return string(r)
}

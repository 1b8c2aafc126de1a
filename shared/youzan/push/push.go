// Package push authenticates and parses the push messages Youzan Cloud
// POSTs to yzpay's /api/status receiver (docs/youzan.md#push-delivery).
//
// Verify accepts both generations of signature: the Event-Sign header
// (md5 of client_id + raw body + client_secret), which wins when present, and
// the legacy body "sign" (md5 of client_id + raw msg + client_secret). It
// decodes every msg encoding seen in the wild (2017/2018 partial escaping,
// 2021 form encoding, JSON-object msg) and keeps large ids exact.
//
// The package reads the whole body it is given: limiting the size of what is
// read from the network (http.MaxBytesReader) is the caller's job.
package push

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/yzpay/yzpay/shared/youzan/internal/jsonscan"
)

var (
	// ErrBadSignature means the signature is missing or does not match.
	ErrBadSignature = errors.New("youzan push: bad signature")
	// ErrMalformed means the body is not a push message this package can
	// read: not a JSON object, a field of the wrong type, an undecodable msg.
	ErrMalformed = errors.New("youzan push: malformed push message")
)

// Auth says which signature authenticated a push, and so which of its fields
// can be believed (docs/youzan.md#push-signatures).
type Auth int

const (
	// AuthNone: an unsigned test message; nothing in it is authentic.
	AuthNone Auth = iota
	// AuthBodySign: the legacy body sign, which covers msg only; type, id,
	// status, msg_id, kdt_id and version are the sender's word.
	AuthBodySign
	// AuthEventSign: the Event-Sign header, which covers every byte of the body.
	AuthEventSign
)

// Push is a parsed push message.
type Push struct {
	Type      string          // body "type"; letters, digits, '_' and '-' only, so it is safe as a NATS subject token
	ID        string          // body "id" as sent (the trade number for trade messages)
	TID       string          // body "id"; msg's tid when "id" is absent
	Status    string          // body "status" ("" when absent/null); msg.status for TRADE_ORDER_STATE when the body has none
	MsgTID    string          // the tid inside msg (tid, full_order_info.order_info.tid or trade.tid), "" if none
	MsgStatus string          // the status inside msg (status, full_order_info.order_info.status or trade.status), "" if none
	Auth      Auth            // set by Verify: which signature vouched for the push
	MsgID     string          // body "msg_id" ("" on 2017/early-2018 messages)
	Version   int64           // body "version": seconds in most captures, milliseconds in one
	KdtID     int64           // body "kdt_id" (number or numeric string)
	ClientID  string          // body "client_id"
	SendCount int             // body "sendCount"
	Test      bool            // body "test": a health-check message, to be acknowledged and otherwise ignored
	Msg       json.RawMessage // the decoded msg JSON (nil when absent or empty)
	QRID      int64           // QR code id found in msg (qr_info.qr_id, full_order_info.qrcode_info.qrcode_id or trade.qr_id), else 0
	msgSum    string          // hex sha256 of the msg text the body sign covers; "" when msg is empty
}

// DedupID identifies the message for de-duplication from signed content
// only: "msg:" and a digest of msg, which both signatures cover, so that
// neither a changed unsigned field (msg_id, id, type, version) nor a dropped
// Event-Sign header turns one captured push into a new message. Youzan's
// re-pushes of a message repeat its msg. Without a msg: msg_id, else
// type:kdt_id:id:version (only an Event-Signed push can get here and be
// acted upon; docs/youzan.md#push-delivery).
func (p Push) DedupID() string {
	if p.msgSum != "" {
		return "msg:" + p.msgSum
	}
	if p.MsgID != "" {
		return p.MsgID
	}
	return fmt.Sprintf("%s:%d:%s:%d", p.Type, p.KdtID, p.TID, p.Version)
}

// ValidTID reports whether s has the shape of a Youzan trade id: "E"
// followed by 23 digits (docs/youzan.md#trade-ids). Anything else is refused
// before it reaches a NATS header or a log line.
func ValidTID(s string) bool {
	if len(s) != 24 || s[0] != 'E' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// BodySign is the legacy body signature: lowercase hex md5 of
// clientID + rawMsg + clientSecret, where rawMsg is the msg string as it
// appears in the JSON (JSON-unescaped, still URL-encoded).
func BodySign(clientID, rawMsg, clientSecret string) string {
	h := md5.New()
	h.Write([]byte(clientID))
	h.Write([]byte(rawMsg))
	h.Write([]byte(clientSecret))
	return hex.EncodeToString(h.Sum(nil))
}

// EventSign is the Event-Sign header value: lowercase hex md5 of
// clientID + body + clientSecret over the body bytes exactly as received.
func EventSign(clientID string, body []byte, clientSecret string) string {
	h := md5.New()
	h.Write([]byte(clientID))
	h.Write(body)
	h.Write([]byte(clientSecret))
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks the signature of body and parses it.
//
// With a non-empty Event-Sign header, the header must match and the body's
// own sign is ignored: falling back to it on a mismatch would let a forger
// pick the weaker check. Without one, the body's sign must match BodySign.
// A body with "test": true and no signature at all is accepted with
// Test set: such a push is unauthenticated and must not be acted upon. A test
// message with a wrong signature is still ErrBadSignature.
//
// On success the result equals Parse(body).
func Verify(body []byte, header http.Header, clientID, clientSecret string) (Push, error) {
	if es := strings.TrimSpace(header.Get("Event-Sign")); es != "" {
		if !signMatches(clientID, body, clientSecret, es) {
			return Push{}, fmt.Errorf("%w: Event-Sign does not match", ErrBadSignature)
		}
		p, _, err := parse(body)
		if err != nil {
			return Push{}, err
		}
		p.Auth = AuthEventSign
		return p, nil
	}
	p, r, err := parse(body)
	if err != nil {
		return Push{}, err
	}
	if r.sign == "" {
		if p.Test {
			return p, nil
		}
		return Push{}, fmt.Errorf("%w: no Event-Sign header and no sign field", ErrBadSignature)
	}
	if !signMatches(clientID, r.rawMsg, clientSecret, r.sign) {
		return Push{}, fmt.Errorf("%w: body sign does not match", ErrBadSignature)
	}
	p.Auth = AuthBodySign
	return p, nil
}

// signMatches reports whether got is the signature of data (EventSign over
// the body, BodySign over msg). The parts are hashed in turn rather than
// joined in a buffer, so no copy of the secret outlives the call.
func signMatches(clientID string, data []byte, clientSecret, got string) bool {
	h := md5.New()
	_, _ = io.WriteString(h, clientID)
	_, _ = h.Write(data)
	_, _ = io.WriteString(h, clientSecret)
	var sum [md5.Size]byte
	h.Sum(sum[:0])
	var want [2 * md5.Size]byte
	hex.Encode(want[:], sum[:])
	return equalHex(want[:], got)
}

// equalHex compares a computed lowercase hex digest with a received one in
// constant time; the received one may be upper-case.
func equalHex(want []byte, got string) bool {
	return subtle.ConstantTimeCompare(want, []byte(strings.ToLower(got))) == 1
}

// Parse parses body without checking any signature, for re-reading a receipt
// that was verified when it arrived.
func Parse(body []byte) (Push, error) {
	p, _, err := parse(body)
	return p, err
}

// signed holds what the body signature covers.
type signed struct {
	rawMsg []byte
	sign   string
}

// bodyFields are the texts of the body members parse reads; nil when absent
// (a present value is never empty). Duplicate keys: the last one counts,
// as when decoding into a map.
type bodyFields struct {
	typ, id, status, msgID, version, kdtID, clientID, sendCount, test, sign, msg []byte
}

// scan reads body in one pass; false sends it to decode.
func (f *bodyFields) scan(body []byte) bool {
	s := jsonscan.New(body)
	return s.Whole(func(k []byte) bool {
		// Keys compare exactly, as map keys do.
		var dst *[]byte
		switch string(k) {
		case "type":
			dst = &f.typ
		case "id":
			dst = &f.id
		case "status":
			dst = &f.status
		case "msg_id":
			dst = &f.msgID
		case "version":
			dst = &f.version
		case "kdt_id":
			dst = &f.kdtID
		case "client_id":
			dst = &f.clientID
		case "sendCount":
			dst = &f.sendCount
		case "test":
			dst = &f.test
		case "sign":
			dst = &f.sign
		case "msg":
			dst = &f.msg
		default:
			return s.Skip()
		}
		return s.Capture(dst)
	})
}

// decode is scan by encoding/json: for what the scanner does not read, and
// for the error message when the body is not JSON.
func (f *bodyFields) decode(body []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	*f = bodyFields{typ: m["type"], id: m["id"], status: m["status"], msgID: m["msg_id"], version: m["version"],
		kdtID: m["kdt_id"], clientID: m["client_id"], sendCount: m["sendCount"], test: m["test"], sign: m["sign"], msg: m["msg"]}
	return nil
}

func parse(body []byte) (Push, signed, error) {
	var p Push
	var s signed
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return p, s, fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
	}
	var f bodyFields
	if !f.scan(body) {
		if err := f.decode(body); err != nil {
			return p, s, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}

	var err error
	str := func(name string, raw []byte, dst *string) {
		if err == nil {
			var e error
			if *dst, e = jsonString(raw); e != nil {
				err = fmt.Errorf("%w: field %q: %v", ErrMalformed, name, e)
			}
		}
	}
	num := func(name string, raw []byte, dst *int64) {
		if err == nil {
			var e error
			if *dst, e = jsonInt(raw); e != nil {
				err = fmt.Errorf("%w: field %q: %v", ErrMalformed, name, e)
			}
		}
	}
	var sendCount int64
	str("type", f.typ, &p.Type)
	str("id", f.id, &p.ID)
	str("status", f.status, &p.Status)
	str("msg_id", f.msgID, &p.MsgID)
	num("version", f.version, &p.Version)
	num("kdt_id", f.kdtID, &p.KdtID)
	str("client_id", f.clientID, &p.ClientID)
	num("sendCount", f.sendCount, &sendCount)
	if err == nil {
		var e error
		if p.Test, e = jsonBool(f.test); e != nil {
			err = fmt.Errorf("%w: field %q: %v", ErrMalformed, "test", e)
		}
	}
	str("sign", f.sign, &s.sign)
	if err != nil {
		return Push{}, signed{}, err
	}
	if sendCount < 0 || int64(int(sendCount)) != sendCount {
		return Push{}, signed{}, fmt.Errorf("%w: field \"sendCount\" out of range", ErrMalformed)
	}
	p.SendCount = int(sendCount)
	if !validType(p.Type) || (p.Type == "" && !p.Test) {
		return Push{}, signed{}, fmt.Errorf("%w: missing or invalid type", ErrMalformed)
	}

	s.rawMsg, p.Msg, err = decodeMsg(f.msg)
	if err != nil {
		return Push{}, signed{}, err
	}
	if len(s.rawMsg) != 0 {
		sum := sha256.Sum256(s.rawMsg)
		p.msgSum = hex.EncodeToString(sum[:20])
	}
	p.TID = p.ID
	probeMsg(&p)
	return p, s, nil
}

// validType keeps the type usable as one NATS subject token and in logs.
func validType(t string) bool {
	if len(t) > 128 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// decodeMsg returns the text the body signature covers (the msg string's
// value; it may share raw's memory) and the decoded msg JSON (never
// sharing it).
func decodeMsg(raw json.RawMessage) ([]byte, json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	switch raw[0] {
	case '{':
		// Newer refund messages carry msg as an object. Whether the body sign
		// then covers its raw text is unconfirmed; such messages come with
		// Event-Sign. The body parser hands over valid JSON; another caller
		// may not (found by FuzzDecodeMsg).
		if !jsonscan.Valid(raw) {
			return nil, nil, fmt.Errorf("%w: msg object is not JSON", ErrMalformed)
		}
		return raw, append(json.RawMessage(nil), raw...), nil
	case '"':
	default:
		return nil, nil, fmt.Errorf("%w: msg is neither a string nor an object", ErrMalformed)
	}
	s, ok := jsonscan.UnquotePlain(raw)
	if !ok {
		u, err := jsonscan.Unquote(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: msg: %v", ErrMalformed, err)
		}
		s = []byte(u)
	}
	t := bytes.TrimSpace(s)
	if len(t) == 0 {
		return s, nil, nil
	}
	// A msg that is already JSON was not URL-encoded; decoding it would turn
	// a literal '+' into a space.
	if (t[0] == '{' || t[0] == '[') && jsonscan.Valid(t) {
		return s, append(json.RawMessage(nil), t...), nil
	}
	// Full form decoding (%XX and '+' as space) reads both the 2017/2018
	// partial escaping and the 2021 form encoding
	// (docs/youzan.md#push-msg-encoding).
	dec, ok := formUnescape(s)
	if !ok {
		d, err := url.QueryUnescape(string(s))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: msg is not URL-encoded: %v", ErrMalformed, err)
		}
		dec = []byte(d)
	}
	if !jsonscan.Valid(dec) {
		return nil, nil, fmt.Errorf("%w: decoded msg is not JSON", ErrMalformed)
	}
	return s, bytes.TrimSpace(dec), nil
}

// formUnescape is url.QueryUnescape into new memory, for text whose every
// '%' starts a valid escape; false otherwise (QueryUnescape then says why).
func formUnescape(s []byte) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2]) {
				return nil, false
			}
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case '+':
			out = append(out, ' ')
		default:
			out = append(out, c)
		}
	}
	return out, true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// msgFields are the texts of the msg members probeMsg reads, found as
// encoding/json fills a struct: keys match regardless of case, the last
// match counts, and a nested member that is not an object is ignored.
type msgFields struct {
	tid, status, qrID                []byte // top level; qrID is qr_info.qr_id
	orderTID, orderStatus, qrcodeID  []byte // full_order_info.order_info.{tid,status}, full_order_info.qrcode_info.qrcode_id
	tradeTID, tradeStatus, tradeQRID []byte // trade.{tid,status,qr_id}
}

// scan reads msg in one pass; false sends it to decode.
func (m *msgFields) scan(msg []byte) bool {
	s := jsonscan.New(msg)
	return s.Whole(func(k []byte) bool {
		switch {
		case jsonscan.FoldKey(k, "tid"):
			return s.Capture(&m.tid)
		case jsonscan.FoldKey(k, "status"):
			return s.Capture(&m.status)
		case jsonscan.FoldKey(k, "qr_info"):
			return s.Sub(func(k []byte) bool {
				if jsonscan.FoldKey(k, "qr_id") {
					return s.Capture(&m.qrID)
				}
				return s.Skip()
			})
		case jsonscan.FoldKey(k, "full_order_info"):
			return s.Sub(func(k []byte) bool {
				switch {
				case jsonscan.FoldKey(k, "order_info"):
					return s.Sub(func(k []byte) bool {
						switch {
						case jsonscan.FoldKey(k, "tid"):
							return s.Capture(&m.orderTID)
						case jsonscan.FoldKey(k, "status"):
							return s.Capture(&m.orderStatus)
						}
						return s.Skip()
					})
				case jsonscan.FoldKey(k, "qrcode_info"):
					return s.Sub(func(k []byte) bool {
						if jsonscan.FoldKey(k, "qrcode_id") {
							return s.Capture(&m.qrcodeID)
						}
						return s.Skip()
					})
				}
				return s.Skip()
			})
		case jsonscan.FoldKey(k, "trade"):
			return s.Sub(func(k []byte) bool {
				switch {
				case jsonscan.FoldKey(k, "tid"):
					return s.Capture(&m.tradeTID)
				case jsonscan.FoldKey(k, "status"):
					return s.Capture(&m.tradeStatus)
				case jsonscan.FoldKey(k, "qr_id"):
					return s.Capture(&m.tradeQRID)
				}
				return s.Skip()
			})
		}
		return s.Skip()
	})
}

// decode is scan by encoding/json, for what the scanner does not read.
func (m *msgFields) decode(msg []byte) {
	var d struct {
		TID    json.RawMessage `json:"tid"`
		Status json.RawMessage `json:"status"`
		QRInfo struct {
			QRID json.RawMessage `json:"qr_id"`
		} `json:"qr_info"`
		FullOrderInfo struct {
			OrderInfo struct {
				TID    json.RawMessage `json:"tid"`
				Status json.RawMessage `json:"status"`
			} `json:"order_info"`
			QRCodeInfo struct {
				QRCodeID json.RawMessage `json:"qrcode_id"`
			} `json:"qrcode_info"`
		} `json:"full_order_info"`
		Trade struct {
			TID    json.RawMessage `json:"tid"`
			Status json.RawMessage `json:"status"`
			QRID   json.RawMessage `json:"qr_id"`
		} `json:"trade"`
	}
	// A type mismatch in one field must not hide the others, and msg content
	// beyond what the relay needs is Youzan's to change: ignore the error.
	_ = json.Unmarshal(msg, &d)
	*m = msgFields{tid: d.TID, status: d.Status, qrID: d.QRInfo.QRID,
		orderTID: d.FullOrderInfo.OrderInfo.TID, orderStatus: d.FullOrderInfo.OrderInfo.Status, qrcodeID: d.FullOrderInfo.QRCodeInfo.QRCodeID,
		tradeTID: d.Trade.TID, tradeStatus: d.Trade.Status, tradeQRID: d.Trade.QRID}
}

// probeMsg fills what the relay needs from msg: the QR id in any of its known
// places, and the legacy trade number and status.
func probeMsg(p *Push) {
	if len(p.Msg) == 0 || p.Msg[0] != '{' {
		return
	}
	var m msgFields
	if !m.scan(p.Msg) {
		m.decode(p.Msg)
	}
	for _, raw := range [...][]byte{m.qrID, m.qrcodeID, m.tradeQRID} {
		if id, err := jsonInt(raw); err == nil && id > 0 {
			p.QRID = id
			break
		}
	}
	// The flat messages (TRADE_ORDER_STATE, trade_TradeSuccess, …) carry tid
	// at the top, the full structure in order_info, the V1 TRADE in trade.
	for _, raw := range [...][]byte{m.tid, m.orderTID, m.tradeTID} {
		if s, err := jsonString(raw); err == nil && s != "" {
			p.MsgTID = s
			break
		}
	}
	for _, raw := range [...][]byte{m.status, m.orderStatus, m.tradeStatus} {
		if s, err := jsonString(raw); err == nil && s != "" {
			p.MsgStatus = s
			break
		}
	}
	if p.TID == "" {
		p.TID, _ = jsonString(m.tid)
	}
	if p.Status == "" && p.Type == "TRADE_ORDER_STATE" {
		p.Status, _ = jsonString(m.status)
	}
}

// jsonString accepts a JSON string, null, or a number (kept as its literal
// digits: ids are sometimes sent as numbers).
func jsonString(raw []byte) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		return jsonscan.Unquote(raw)
	}
	if isNumber(raw) {
		return string(raw), nil
	}
	return "", errors.New("not a string")
}

// jsonInt accepts an integer JSON number or a string holding one, without
// going through float64, so ids beyond 2^53 keep every digit.
func jsonInt(raw []byte) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var text string
	if raw[0] == '"' {
		var err error
		if text, err = jsonscan.Unquote(raw); err != nil {
			return 0, err
		}
		text = strings.TrimSpace(text)
		if text == "" {
			return 0, nil
		}
	} else if !isNumber(raw) {
		return 0, errors.New("not a number")
	} else {
		text = string(raw)
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, errors.New("not an integer in range")
	}
	return n, nil
}

func jsonBool(raw []byte) (bool, error) {
	switch string(bytes.TrimSpace(raw)) {
	case "true", `"true"`:
		return true, nil
	case "false", `"false"`, "null", "", `""`:
		return false, nil
	}
	return false, errors.New("not a boolean")
}

func isNumber(raw []byte) bool {
	c := raw[0]
	return (c == '-' || c >= '0' && c <= '9') && jsonscan.Valid(raw)
}

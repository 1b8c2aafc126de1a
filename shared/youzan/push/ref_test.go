package push

// The push parser as it was before the one-pass scanner (issue 16), kept
// verbatim as the reference the scanner's results are held to: the fast
// path may change speed, never a result or an error.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

func refParse(body []byte) (Push, refSigned, error) {
	var p Push
	var s refSigned
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return p, s, fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(body, &f); err != nil {
		return p, s, fmt.Errorf("%w: %v", ErrMalformed, err)
	}

	var err error
	field := func(name string, dst any) {
		if err != nil {
			return
		}
		raw, ok := f[name]
		if !ok {
			return
		}
		var e error
		switch d := dst.(type) {
		case *string:
			*d, e = refJsonString(raw)
		case *int64:
			*d, e = refJsonInt(raw)
		case *bool:
			*d, e = refJsonBool(raw)
		}
		if e != nil {
			err = fmt.Errorf("%w: field %q: %v", ErrMalformed, name, e)
		}
	}
	var sendCount int64
	field("type", &p.Type)
	field("id", &p.ID)
	field("status", &p.Status)
	field("msg_id", &p.MsgID)
	field("version", &p.Version)
	field("kdt_id", &p.KdtID)
	field("client_id", &p.ClientID)
	field("sendCount", &sendCount)
	field("test", &p.Test)
	field("sign", &s.sign)
	if err != nil {
		return Push{}, refSigned{}, err
	}
	if sendCount < 0 || int64(int(sendCount)) != sendCount {
		return Push{}, refSigned{}, fmt.Errorf("%w: field \"sendCount\" out of range", ErrMalformed)
	}
	p.SendCount = int(sendCount)
	if !validType(p.Type) || (p.Type == "" && !p.Test) {
		return Push{}, refSigned{}, fmt.Errorf("%w: missing or invalid type", ErrMalformed)
	}

	s.rawMsg, p.Msg, err = refDecodeMsg(f["msg"])
	if err != nil {
		return Push{}, refSigned{}, err
	}
	if s.rawMsg != "" {
		sum := sha256.Sum256([]byte(s.rawMsg))
		p.msgSum = hex.EncodeToString(sum[:20])
	}
	p.TID = p.ID
	refProbeMsg(&p)
	return p, s, nil
}

// decodeMsg returns the string the body signature covers and the decoded
// msg JSON.
func refDecodeMsg(raw json.RawMessage) (string, json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, nil
	}
	switch raw[0] {
	case '{':
		// Newer refund messages carry msg as an object. Whether the body sign
		// then covers its raw text is unconfirmed; such messages come with
		// Event-Sign. The body parser hands over valid JSON; another caller
		// may not (found by FuzzDecodeMsg).
		if !json.Valid(raw) {
			return "", nil, fmt.Errorf("%w: msg object is not JSON", ErrMalformed)
		}
		return string(raw), append(json.RawMessage(nil), raw...), nil
	case '"':
	default:
		return "", nil, fmt.Errorf("%w: msg is neither a string nor an object", ErrMalformed)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", nil, fmt.Errorf("%w: msg: %v", ErrMalformed, err)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return s, nil, nil
	}
	// A msg that is already JSON was not URL-encoded; decoding it would turn
	// a literal '+' into a space.
	if (t[0] == '{' || t[0] == '[') && json.Valid([]byte(t)) {
		return s, json.RawMessage(t), nil
	}
	// Full form decoding (%XX and '+' as space) reads both the 2017/2018
	// partial escaping and the 2021 form encoding
	// (docs/youzan.md#push-msg-encoding).
	dec, err := url.QueryUnescape(s)
	if err != nil {
		return "", nil, fmt.Errorf("%w: msg is not URL-encoded: %v", ErrMalformed, err)
	}
	if !json.Valid([]byte(dec)) {
		return "", nil, fmt.Errorf("%w: decoded msg is not JSON", ErrMalformed)
	}
	return s, json.RawMessage(strings.TrimSpace(dec)), nil
}

// probeMsg fills what the relay needs from msg: the QR id in any of its known
// places, and the legacy trade number and status.
func refProbeMsg(p *Push) {
	if len(p.Msg) == 0 || p.Msg[0] != '{' {
		return
	}
	var m struct {
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
	_ = json.Unmarshal(p.Msg, &m)
	for _, raw := range []json.RawMessage{m.QRInfo.QRID, m.FullOrderInfo.QRCodeInfo.QRCodeID, m.Trade.QRID} {
		if id, err := refJsonInt(raw); err == nil && id > 0 {
			p.QRID = id
			break
		}
	}
	// The flat messages (TRADE_ORDER_STATE, trade_TradeSuccess, …) carry tid
	// at the top, the full structure in order_info, the V1 TRADE in trade.
	for _, raw := range []json.RawMessage{m.TID, m.FullOrderInfo.OrderInfo.TID, m.Trade.TID} {
		if s, err := refJsonString(raw); err == nil && s != "" {
			p.MsgTID = s
			break
		}
	}
	for _, raw := range []json.RawMessage{m.Status, m.FullOrderInfo.OrderInfo.Status, m.Trade.Status} {
		if s, err := refJsonString(raw); err == nil && s != "" {
			p.MsgStatus = s
			break
		}
	}
	if p.TID == "" {
		p.TID, _ = refJsonString(m.TID)
	}
	if p.Status == "" && p.Type == "TRADE_ORDER_STATE" {
		p.Status, _ = refJsonString(m.Status)
	}
}

// jsonString accepts a JSON string, null, or a number (kept as its literal
// digits: ids are sometimes sent as numbers).
func refJsonString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	if refIsNumber(raw) {
		return string(raw), nil
	}
	return "", errors.New("not a string")
}

// jsonInt accepts an integer JSON number or a string holding one, without
// going through float64, so ids beyond 2^53 keep every digit.
func refJsonInt(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, err
		}
		text = strings.TrimSpace(text)
		if text == "" {
			return 0, nil
		}
	} else if !refIsNumber(raw) {
		return 0, errors.New("not a number")
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, errors.New("not an integer in range")
	}
	return n, nil
}

func refJsonBool(raw json.RawMessage) (bool, error) {
	switch string(bytes.TrimSpace(raw)) {
	case "true", `"true"`:
		return true, nil
	case "false", `"false"`, "null", "", `""`:
		return false, nil
	}
	return false, errors.New("not a boolean")
}

func refIsNumber(raw []byte) bool {
	c := raw[0]
	return (c == '-' || c >= '0' && c <= '9') && json.Valid(raw)
}

// refSigned is signed as it was: the signed msg text as a string.
type refSigned struct {
	rawMsg string
	sign   string
}

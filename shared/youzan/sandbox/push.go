package sandbox

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RetrySchedule is Youzan's documented re-push schedule (field tables of the
// trade messages): at most four re-pushes. Config.RetryScale multiplies it.
var RetrySchedule = []time.Duration{5 * time.Second, 5*time.Minute + 20*time.Second, 21*time.Minute + 20*time.Second, 2 * time.Hour}

// pushTimeout is how long Youzan waits for a receiver.
const pushTimeout = 5 * time.Second

type pushMsg struct {
	tid     string
	typ     string
	status  string
	msg     string // already URL-encoded, as it appears in the body
	msgID   string
	version int64
	retries int // re-pushes so far; also the body's sendCount
}

type pushQueue struct {
	msgs    []*pushMsg
	running bool
}

// pushBody has the field order of the real deliveries.
type pushBody struct {
	ClientID  string `json:"client_id"`
	ID        string `json:"id"`
	KdtID     int64  `json:"kdt_id"`
	KdtName   string `json:"kdt_name"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Msg       string `json:"msg"`
	MsgID     string `json:"msg_id"`
	Version   int64  `json:"version"`
	SendCount int    `json:"sendCount"`
	Sign      string `json:"sign,omitempty"`
	Test      bool   `json:"test"`
	Mode      int    `json:"mode"`
}

// buildMsgLocked snapshots t as a message of type typ. s.mu must be held.
func (s *Sandbox) buildMsgLocked(t *trade, typ string) (*pushMsg, error) {
	m := &pushMsg{tid: t.tid, typ: typ, status: t.status, msgID: newUUID(), version: t.updated.Unix()}
	var payload any
	switch typ {
	case MsgTradeCreate:
		// Whether Create carries qr_info is unconfirmed; leaving it out
		// makes receivers exercise their trade.get fallback.
		payload = s.fullTrade(t, false)
		m.status = StatusWaitBuyerPay
	case MsgTradePaid:
		payload = s.fullTrade(t, true)
		m.status = StatusTradePaid
	case MsgTradeSuccess:
		payload = map[string]any{"tid": t.tid, "update_time": fmtTime(t.updated)}
		m.status = StatusTradeSuccess
	case MsgTradeClose:
		payload = map[string]any{"tid": t.tid, "close_type": t.closeType, "close_reason": "超时未支付", "update_time": fmtTime(t.updated)}
		m.status = StatusTradeClosed
	case MsgTradeOrderState:
		payload = legacyState{UpdateTime: fmtTime(t.updated), Payment: fmtYuan(t.price), TID: t.tid, Status: t.status}
	default:
		return nil, fmt.Errorf("sandbox: unknown message type %q", typ)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encode msg: %w", err)
	}
	if typ == MsgTradeOrderState {
		m.msg = legacyEscape(string(raw))
	} else {
		m.msg = url.QueryEscape(string(raw))
	}
	return m, nil
}

// legacyState keeps the key order of the 2017 TRADE_ORDER_STATE sample.
type legacyState struct {
	UpdateTime string `json:"update_time"`
	Payment    string `json:"payment"`
	TID        string `json:"tid"`
	Status     string `json:"status"`
}

// legacyEscape reproduces the 2017/2018 partial escaping: { } " space ? and
// non-ASCII are escaped, while : , / [ ] = stay literal.
func legacyEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-_.~:,/[]=", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// enqueueLocked queues a push for t. Pushes of one trade go out in order
// (first attempts; retries run on their own timers, as Youzan's do), while
// different trades push concurrently. s.mu must be held.
func (s *Sandbox) enqueueLocked(t *trade, typ string) {
	if t.noPush || s.closed {
		return
	}
	m, err := s.buildMsgLocked(t, typ)
	if err != nil {
		s.log.Error("sandbox: build push", "tid", t.tid, "type", typ, "err", err)
		return
	}
	q := s.queues[t.tid]
	if q == nil {
		q = &pushQueue{}
		s.queues[t.tid] = q
	}
	q.msgs = append(q.msgs, m)
	if !q.running {
		q.running = s.goTracked(func() { s.drain(t.tid, q) })
	}
}

func (s *Sandbox) drain(tid string, q *pushQueue) {
	for {
		s.mu.Lock()
		if len(q.msgs) == 0 || s.closed {
			q.running = false
			delete(s.queues, tid)
			s.mu.Unlock()
			return
		}
		m := q.msgs[0]
		q.msgs = q.msgs[1:]
		s.mu.Unlock()
		s.attempt(m)
	}
}

// attempt delivers m once and, on failure, schedules the next re-push.
func (s *Sandbox) attempt(m *pushMsg) {
	s.mu.Lock()
	target, drop := s.pushURL, s.knobs.DropPushes
	s.mu.Unlock()
	if drop || target == "" {
		s.pushesDropped.Add(1)
		return
	}
	body, hdr, err := s.render(m)
	if err != nil {
		s.log.Error("sandbox: render push", "tid", m.tid, "err", err)
		return
	}
	err = s.deliver(target, body, hdr)
	if err == nil {
		s.pushesSent.Add(1)
		s.log.Debug("sandbox: push delivered", "tid", m.tid, "type", m.typ, "send_count", m.retries)
		return
	}
	s.pushesFailed.Add(1)
	if m.retries >= len(RetrySchedule) {
		s.log.Warn("sandbox: push abandoned after retries", "tid", m.tid, "type", m.typ, "msg_id", m.msgID, "err", err)
		return
	}
	delay := time.Duration(float64(RetrySchedule[m.retries]) * s.cfg.RetryScale)
	m.retries++
	s.log.Info("sandbox: push failed, will retry", "tid", m.tid, "type", m.typ, "in", delay, "err", err)
	s.mu.Lock()
	s.goTracked(func() {
		if sleepCtx(s.ctx, delay) {
			s.attempt(m)
		}
	})
	s.mu.Unlock()
}

func (s *Sandbox) render(m *pushMsg) ([]byte, http.Header, error) {
	id, secret := s.cfg.ClientID, s.cfg.ClientSecret
	b := pushBody{
		ClientID: id, ID: m.tid, KdtID: s.kdtID, KdtName: s.cfg.KdtName, Type: m.typ, Status: m.status,
		Msg: m.msg, MsgID: m.msgID, Version: m.version, SendCount: m.retries, Mode: 1,
	}
	if s.cfg.SignMode != SignHeader {
		b.Sign = md5Hex(id + m.msg + secret)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, nil, err
	}
	body := bytes.TrimRight(buf.Bytes(), "\n")
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if s.cfg.SignMode != SignBody {
		h.Set("Event-Sign", md5Hex(id+string(body)+secret))
		h.Set("Event-Type", m.typ)
		h.Set("Client-Id", id)
	}
	return body, h, nil
}

// deliver POSTs one push; any answer but HTTP 200 with "success" in the
// body is a failure, as for Youzan.
func (s *Sandbox) deliver(target string, body []byte, hdr http.Header) error {
	ctx, cancel := context.WithTimeout(s.ctx, pushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = hdr.Clone()
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("receiver answered HTTP %d", resp.StatusCode)
	}
	if !bytes.Contains(reply, []byte("success")) {
		return fmt.Errorf("receiver reply lacks \"success\"")
	}
	return nil
}

// BuildPush returns a signed push body and headers of msgType for tid
// exactly as the sandbox would POST it (fresh msg_id, sendCount 0), from
// the trade's current state. For benchmarks and tests that post pushes
// themselves.
func (s *Sandbox) BuildPush(tid, msgType string) (body []byte, header http.Header, err error) {
	s.mu.Lock()
	t := s.trades[tid]
	if t == nil {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("build push %s: %w", tid, ErrUnknownTID)
	}
	m, err := s.buildMsgLocked(t, msgType)
	s.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	return s.render(m)
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

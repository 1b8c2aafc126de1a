package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/youzan/push"
)

// maxPushBody fits every real push (a few KiB; the largest, a full-structure
// trade_TradePaid, is under 8 KiB) with room to spare.
const maxPushBody = 64 << 10

// tradeTypes are the push types the pipeline processes; every other verified
// type is acknowledged and counted, never published.
var tradeTypes = map[string]bool{
	"TRADE_ORDER_STATE":   true,
	"trade_TradeCreate":   true,
	"trade_TradePaid":     true,
	"trade_TradeBuyerPay": true,
	"trade_TradeSuccess":  true,
	"trade_TradeClose":    true,
}

// youzanOK is the body Youzan expects; anything without "success" is retried.
var youzanOK = []byte(`{"code":0,"msg":"success"}`)

// jsonContentType is shared by every answer: net/http only reads it, and
// Header.Set or Add would replace or reallocate it, never write into it.
var jsonContentType = []string{"application/json"}

func writeYouzanOK(w http.ResponseWriter) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(youzanOK)
}

// receivePush reads the body first, under a short deadline and the in-flight
// byte budget, and takes a publish slot only for a verified push: a slow or
// hostile sender holds a connection, never a slot another push needs
// (docs/security.md#bounded-intake).
func (g *Gateway) receivePush(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	received := time.Now()
	// Every publish slot taken: this push would be refused after reading
	// and verifying it, so refuse it now. Under overload (a backlog on one
	// core, Youzan pushing again every few seconds) reading and verifying
	// pushes only to refuse them took the CPU the backlog needed, and each
	// refused sender's connection stayed open. The check takes no slot, so
	// a slow or unverified sender still cannot hold one.
	if len(g.pushes) == cap(g.pushes) {
		g.refuseBusy(w, r, "unknown")
		return
	}
	body, release, err := g.readPush(w, r)
	defer release()
	if err != nil {
		g.refuseRead(w, r, err)
		return
	}
	p, err := push.Verify(body, r.Header, g.cfg.Youzan.ClientID, g.cfg.Youzan.ClientSecret)
	switch {
	case errors.Is(err, push.ErrBadSignature):
		g.m.PushesReceived.WithLabelValues(typeLabel(p.Type), "bad_signature").Inc()
		g.log.Warn("push with a bad signature refused", "remote", r.RemoteAddr)
		g.writeErr(w, r, domain.Errorf(domain.CodeBadSignature, "push signature does not verify"))
		return
	case err != nil:
		g.m.PushesReceived.WithLabelValues("unknown", "malformed").Inc()
		g.writeErr(w, r, domain.Errorf(domain.CodeMalformedPush, "push body is not a Youzan message"))
		return
	}
	if p.Test {
		g.m.PushesReceived.WithLabelValues(typeLabel(p.Type), "test").Inc()
		writeYouzanOK(w)
		return
	}
	if !tradeTypes[p.Type] {
		g.m.PushesReceived.WithLabelValues(typeLabel(p.Type), "ignored").Inc()
		g.log.Debug("push of a type yzpay does not process", "type", p.Type, "tid", logTID(p.TID))
		writeYouzanOK(w)
		return
	}
	p, err = believe(p)
	if err != nil {
		g.m.PushesReceived.WithLabelValues(p.Type, "fields_mismatch").Inc()
		g.log.Warn("body-signed push whose unsigned fields disagree with its signed msg refused",
			"type", p.Type, "tid", logTID(p.MsgTID), "why", err.Error(), "remote", r.RemoteAddr)
		g.writeErr(w, r, domain.Errorf(domain.CodePushFieldsMismatch, "push fields disagree with its signed msg: %s", strings.TrimPrefix(err.Error(), errFieldsMismatch.Error()+": ")))
		return
	}
	if p.TID == "" {
		g.m.PushesReceived.WithLabelValues(p.Type, "malformed").Inc()
		g.writeErr(w, r, domain.Errorf(domain.CodeMalformedPush, "trade push without an id"))
		return
	}
	if !push.ValidTID(p.TID) {
		g.m.PushesReceived.WithLabelValues(p.Type, "bad_tid").Inc()
		g.log.Warn("trade push with a malformed trade id refused", "type", p.Type, "remote", r.RemoteAddr)
		g.writeErr(w, r, domain.Errorf(domain.CodeInvalidTradeID, "trade id must be E followed by 23 digits"))
		return
	}
	select {
	case g.pushes <- struct{}{}:
		defer func() { <-g.pushes }()
	default:
		g.refuseBusy(w, r, p.Type)
		return
	}
	dup, err := g.publishReceipt(r.Context(), p, body, received)
	if err != nil {
		g.m.PushesReceived.WithLabelValues(p.Type, "unavailable").Inc()
		g.log.Error("could not store push receipt; Youzan will retry", "type", p.Type, "tid", p.TID, "err", err)
		g.writeErr(w, r, domain.Wrap(err, domain.CodeBrokerUnavailable, "receipt could not be stored; retry later"))
		return
	}
	result := "accepted"
	if dup {
		result = "duplicate"
	}
	g.m.PushesReceived.WithLabelValues(p.Type, result).Inc()
	writeYouzanOK(w)
}

// refuseBusy answers 503 busy because every publish slot is taken, and
// closes the connection: Youzan pushes again in a few seconds anyway, and
// under overload the open connections of refused senders were a good part
// of yzpay serve's memory (8 KiB of buffers and a goroutine each, thousands
// at once; docs/performance.md, "Memory under backlog").
func (g *Gateway) refuseBusy(w http.ResponseWriter, r *http.Request, pushType string) {
	g.m.PushesReceived.WithLabelValues(pushType, "busy").Inc()
	w.Header().Set("Retry-After", "5")
	w.Header().Set("Connection", "close")
	g.writeErr(w, r, domain.Errorf(domain.CodeBusy, "too many pushes in flight; retry later"))
}

// readPush reads the whole body within PushReadTimeout, at most maxPushBody
// bytes, charging every byte to the gateway's in-flight budget. release
// gives the bytes back and the buffer to the pool; call it once the body is
// no longer needed, and keep nothing that shares its memory.
func (g *Gateway) readPush(w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	rc := http.NewResponseController(w)
	// Not every ResponseWriter supports deadlines (httptest's recorder does
	// not); the server's ReadTimeout is then the bound.
	deadline := rc.SetReadDeadline(time.Now().Add(g.cfg.PushReadTimeout)) == nil
	br := &budgetReader{r: http.MaxBytesReader(w, r.Body, maxPushBody), b: g.bodyBytes}
	size := 4 << 10
	if r.ContentLength > 0 && r.ContentLength <= maxPushBody {
		size = int(r.ContentLength) + 1 // +1 so ReadFrom sees EOF without growing
	}
	buf := pushBufs.Get().(*bytes.Buffer)
	buf.Reset()
	buf.Grow(size)
	release = func() {
		br.release()
		pushBufs.Put(buf)
	}
	if _, err = buf.ReadFrom(br); err != nil {
		// Otherwise net/http would try to read the rest of the body before
		// answering, waiting on the very sender being refused.
		w.Header().Set("Connection", "close")
		return nil, release, err
	}
	if deadline {
		// A deadline left in place would end the connection's background
		// read while the receipt is being stored, cancelling the request.
		// The body is read whole: nothing more is read for this request.
		_ = rc.SetReadDeadline(time.Time{})
	}
	return buf.Bytes(), release, nil
}

// pushBufs hold push bodies between requests. A body is handed back by
// readPush's release, once the handler is done with it: push.Verify keeps
// nothing of the body's memory in the Push it returns, and the JetStream
// publish has copied the body into the connection's buffer by the time
// PublishMsg returns. Bodies are at most maxPushBody+1 bytes, so a pooled
// buffer stays small.
var pushBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// refuseRead answers a push whose body could not be read whole.
func (g *Gateway) refuseRead(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		g.m.PushesReceived.WithLabelValues("unknown", "too_large").Inc()
		g.writeErr(w, r, domain.Errorf(domain.CodeBodyTooLarge, "push body exceeds 64 KiB"))
	case errors.Is(err, errOverBudget):
		g.m.PushesReceived.WithLabelValues("unknown", "busy").Inc()
		w.Header().Set("Retry-After", "5")
		g.writeErr(w, r, domain.Errorf(domain.CodeBusy, "too many push bytes in flight; retry later"))
	case errors.Is(err, os.ErrDeadlineExceeded):
		g.m.PushesReceived.WithLabelValues("unknown", "slow").Inc()
		g.writeErr(w, r, domain.Errorf(domain.CodeBadBody, "push body not received in time"))
	default:
		g.m.PushesReceived.WithLabelValues("unknown", "unreadable").Inc()
		g.writeErr(w, r, domain.Errorf(domain.CodeBadBody, "could not read push body"))
	}
}

// errFieldsMismatch: see believe.
var errFieldsMismatch = errors.New("fields mismatch")

// typeStatus is the status each event type announces (PAID is the 2018
// spelling of TRADE_PAID; docs/youzan.md#push-message-types).
var typeStatus = map[string][]string{
	"trade_TradeCreate":   {domain.StatusWaitBuyerPay},
	"trade_TradePaid":     {domain.StatusTradePaid, domain.StatusPaid},
	"trade_TradeBuyerPay": {domain.StatusWaitSellerSendGoods},
	"trade_TradeSuccess":  {domain.StatusTradeSuccess},
	"trade_TradeClose":    {domain.StatusTradeClosed},
}

// believe returns p with the trade id and status the gateway may act on.
// An Event-Signed push is signed whole. A body sign covers msg only, so the
// trade id comes from msg, and the unsigned id, type and status must agree
// with it: a captured push replayed with another id, type or status is a
// forgery. The error says what disagrees (no attacker-chosen text in it).
func believe(p push.Push) (push.Push, error) {
	if p.Auth == push.AuthEventSign {
		return p, nil
	}
	if p.MsgTID == "" {
		return p, fmt.Errorf("%w: the signed msg carries no trade id", errFieldsMismatch)
	}
	if p.ID != "" && p.ID != p.MsgTID {
		return p, fmt.Errorf("%w: id differs from the signed msg's tid", errFieldsMismatch)
	}
	implied := typeStatus[p.Type]
	if p.MsgStatus != "" {
		// The full structure of trade_TradePaid may already say
		// TRADE_SUCCESS: a status (or type) behind the signed one is
		// Youzan's, one ahead of it is not.
		if p.Status != "" && p.Status != p.MsgStatus && !notAhead(p.Status, p.MsgStatus) {
			return p, fmt.Errorf("%w: status is ahead of the signed msg's", errFieldsMismatch)
		}
		if len(implied) > 0 && !notAhead(implied[0], p.MsgStatus) {
			return p, fmt.Errorf("%w: type announces a status ahead of the signed msg's", errFieldsMismatch)
		}
		p.Status = p.MsgStatus
	} else if p.Status != "" && len(implied) > 0 && !slices.Contains(implied, p.Status) {
		return p, fmt.Errorf("%w: status does not match the type", errFieldsMismatch)
	}
	p.TID = p.MsgTID
	return p, nil
}

// notAhead reports whether status a is a known status not past b.
func notAhead(a, b string) bool {
	ra := domain.Rank(a)
	return ra > 0 && ra <= domain.Rank(b)
}

// logTID keeps whatever a sender wrote out of log lines unless it is
// shaped like a trade id.
func logTID(tid string) string {
	if push.ValidTID(tid) {
		return tid
	}
	return "(not a tid)"
}

// publishReceipt stores the verified raw body in JetStream and waits for the
// PubAck. The dedup id makes Youzan's re-pushes of one message a no-op.
func (g *Gateway) publishReceipt(ctx context.Context, p push.Push, body []byte, received time.Time) (duplicate bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.PublishTimeout)
	defer cancel()
	msg := nats.NewMsg(natsjs.WebhookSubject(p.Type))
	msg.Data = body
	msg.Header.Set(natsjs.HeaderReceivedAt, received.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(natsjs.HeaderTID, p.TID)
	if p.Status != "" {
		msg.Header.Set(natsjs.HeaderStatus, p.Status)
	}
	ack, err := g.deps.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(p.DedupID()))
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// typeLabel keeps arbitrary client-chosen strings out of metric labels.
func typeLabel(t string) string {
	if tradeTypes[t] {
		return t
	}
	if t == "" {
		return "unknown"
	}
	return "other"
}

package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/youzan/push"
)

const maxPushBody = 1 << 20

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

func writeYouzanOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(youzanOK)
}

func (g *Gateway) receivePush(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	received := time.Now()
	select {
	case g.pushes <- struct{}{}:
		defer func() { <-g.pushes }()
	default:
		g.m.PushesReceived.WithLabelValues("unknown", "busy").Inc()
		w.Header().Set("Retry-After", "5")
		g.writeErr(w, r, domain.Errorf(domain.CodeBusy, "too many pushes in flight; retry later"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPushBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.m.PushesReceived.WithLabelValues("unknown", "too_large").Inc()
			g.writeErr(w, r, domain.Errorf(domain.CodeBodyTooLarge, "push body exceeds 1 MiB"))
			return
		}
		g.m.PushesReceived.WithLabelValues("unknown", "unreadable").Inc()
		g.writeErr(w, r, domain.Errorf(domain.CodeBadBody, "could not read push body"))
		return
	}
	p, err := push.Verify(body, r.Header, g.cfg.Youzan.ClientID, g.cfg.Youzan.ClientSecret)
	switch {
	case errors.Is(err, push.ErrBadSignature):
		g.m.PushesReceived.WithLabelValues(typeLabel(p.Type), "bad_signature").Inc()
		g.log.Warn("push with a bad signature refused", "type", p.Type, "tid", p.TID, "remote", r.RemoteAddr)
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
		g.log.Debug("push of a type yzpay does not process", "type", p.Type, "tid", p.TID)
		writeYouzanOK(w)
		return
	}
	if p.TID == "" {
		g.m.PushesReceived.WithLabelValues(p.Type, "malformed").Inc()
		g.writeErr(w, r, domain.Errorf(domain.CodeMalformedPush, "trade push without an id"))
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

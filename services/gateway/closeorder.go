package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/natsjs"
)

// closeOrder serves POST /api/payment/orders/:order_id/close: an unpaid
// order is closed at once, the way ORDER_TTL closes it (the store first,
// then TRADE_CLOSED under the expiry's event id, so the notifier and the
// pages hear it once however often it is repeated). Closing a closed order
// announces it again, which covers a publish that failed the first time.
// A payment that arrives after all is reported as after an expiry.
func (g *Gateway) closeOrder(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id := ps.ByName("order_id")
	if !orderIDPattern.MatchString(id) {
		g.writeErr(w, r, errInvalidOrderID)
		return
	}
	c, err := g.deps.Store.CloseExpired(r.Context(), id, time.Now())
	if err != nil {
		g.writeErr(w, r, err, "order_id", id)
		return
	}
	o := c.Order
	if o.EverPaid || domain.IsPaid(o.Status) {
		g.writeErr(w, r, domain.Errorf(domain.CodeAlreadyPaid, "the order is paid (%s); it cannot be closed", o.Status), "order_id", id)
		return
	}
	if o.Status != domain.StatusTradeClosed {
		// Not at WAIT_BUYER_PAY and not paid: a status yzpay does not
		// close (none today); say so rather than pretend.
		g.writeErr(w, r, domain.Errorf(domain.CodeOrderConflict, "the order is at %s and cannot be closed", o.Status), "order_id", id)
		return
	}
	if c.Changed {
		g.log.Info("order closed by the merchant", "order_id", id, "qr_id", o.QRID)
	}
	// The close is stored: a client hanging up must not keep its
	// announcement from going out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), g.cfg.PublishTimeout+5*time.Second)
	defer cancel()
	ev := domain.FromOrder(o)
	msg := nats.NewMsg(natsjs.StatusSubject(ev.Status))
	msg.Data = ev.Encode()
	ack, err := g.deps.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.EventID))
	if err != nil {
		g.log.Warn("close stored, announcement not published; the merchant's retry publishes it", "order_id", id, "err", err)
		g.writeErr(w, r, domain.Wrap(err, domain.CodeBrokerUnavailable, "the order is closed but its TRADE_CLOSED event could not be published; retry the same request"), "order_id", id)
		return
	}
	if !ack.Duplicate {
		g.m.TradeEvents.WithLabelValues(ev.Status).Inc()
	}
	httpapi.WriteJSON(w, http.StatusOK, toOrderResponse(o))
}

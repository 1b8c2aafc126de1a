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
	o, err := g.closeUnpaid(r.Context(), id)
	if err != nil {
		g.writeErr(w, r, err, "order_id", id)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, toOrderResponse(o))
}

// closeUnpaid is the close API's work, shared with the operator console:
// errors are domain errors (already_paid, order_conflict, order_not_found,
// broker_unavailable) or a backend's.
func (g *Gateway) closeUnpaid(ctx context.Context, id string) (domain.Order, error) {
	c, err := g.deps.Store.CloseExpired(ctx, id, time.Now())
	if err != nil {
		return domain.Order{}, err
	}
	o := c.Order
	if o.EverPaid || domain.IsPaid(o.Status) {
		return o, domain.Errorf(domain.CodeAlreadyPaid, "the order is paid (%s); it cannot be closed", o.Status)
	}
	if o.Status != domain.StatusTradeClosed {
		// Not at WAIT_BUYER_PAY and not paid: a status yzpay does not
		// close (none today); say so rather than pretend.
		return o, domain.Errorf(domain.CodeOrderConflict, "the order is at %s and cannot be closed", o.Status)
	}
	if c.Changed {
		g.log.Info("order closed", "order_id", id, "qr_id", o.QRID)
	}
	// The close is stored: a client hanging up must not keep its
	// announcement from going out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.PublishTimeout+5*time.Second)
	defer cancel()
	ev := domain.FromOrder(o)
	msg := nats.NewMsg(natsjs.StatusSubject(ev.Status))
	msg.Data = ev.Encode()
	ack, err := g.deps.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.EventID))
	if err != nil {
		g.log.Warn("close stored, announcement not published; a repeated close publishes it", "order_id", id, "err", err)
		return o, domain.Wrap(err, domain.CodeBrokerUnavailable, "the order is closed but its TRADE_CLOSED event could not be published; retry the same request")
	}
	if !ack.Duplicate {
		g.m.TradeEvents.WithLabelValues(ev.Status).Inc()
	}
	return o, nil
}

package tradefetcher

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/youzan"
)

const orderTTL = 30 * time.Minute

// sweeperAt is a sweeper whose clock reads the real time plus ahead: the
// orders the test just created look that old to it.
func (e *env) sweeperAt(ahead time.Duration) *Sweeper {
	s := NewSweeper(config.Sweep{Interval: time.Minute, OrderTTL: orderTTL}, e.store, e.js, e.youzan, e.m, e.log)
	s.now = func() time.Time { return time.Now().Add(ahead) }
	return s
}

func TestSweeperClosesAnExpiredUnpaidOrderAndAnnouncesIt(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	s := e.sweeperAt(orderTTL + time.Minute)
	if err := s.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Youzan was asked once more before closing.
	if len(e.youzan.qrQueries) != 1 || e.youzan.qrQueries[0].QRID != 501 || e.youzan.qrQueries[0].Status != "TRADE_RECEIVED" {
		t.Errorf("trades.qr.get queries %+v, want one for QR 501's paid trades", e.youzan.qrQueries)
	}
	if o := e.orderByID("o-1"); o.Status != domain.StatusTradeClosed {
		t.Fatalf("order %s after its TTL, want TRADE_CLOSED", o.Status)
	}
	evs := e.events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want the TRADE_CLOSED one", len(evs))
	}
	ev := evs[0]
	if ev.EventID != "order:o-1:TRADE_CLOSED" || ev.OrderID != "o-1" || ev.QRID != 501 || ev.Status != domain.StatusTradeClosed ||
		ev.Payment != 0 || ev.TID != "" || ev.subject != natsjs.StatusSubject(domain.StatusTradeClosed) {
		t.Errorf("event %+v on %s", ev.PaymentEvent, ev.subject)
	}
	if id := ev.header.Get(nats.MsgIdHdr); id != ev.EventID {
		t.Errorf("Nats-Msg-Id %q, want the event id", id)
	}

	// The next sweep re-announces recent closes in case one was lost; the
	// fixed event id keeps the merchant from hearing it twice.
	if err := s.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.events()); n != 1 {
		t.Errorf("%d events after a second sweep, want 1", n)
	}
}

func TestSweeperLeavesAnOrderWithinItsTTLOpen(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	if err := e.sweeperAt(orderTTL - time.Minute).Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if o := e.orderByID("o-1"); o.Status != domain.StatusWaitBuyerPay {
		t.Errorf("order %s before its TTL", o.Status)
	}
	if n := len(e.events()); n != 0 {
		t.Errorf("%d events", n)
	}
}

func TestSweeperDoesNotCloseAnOrderItCouldNotCheck(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	e.youzan.qrErr = &youzan.Error{API: youzan.APITradesQRGet, Kind: youzan.Server, HTTPStatus: 502}
	if err := e.sweeperAt(orderTTL + time.Minute).Sweep(t.Context()); err == nil {
		t.Error("sweep reported no error while Youzan failed")
	}
	if o := e.orderByID("o-1"); o.Status != domain.StatusWaitBuyerPay {
		t.Errorf("order %s although Youzan could not say whether it was paid", o.Status)
	}
	if n := len(e.events()); n != 0 {
		t.Errorf("%d events", n)
	}
}

func TestSweeperFeedsAPaymentWhosePushWasLostIntoThePipeline(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	e.youzan.qrTrades[501] = []youzan.QRTrade{{TID: "T9", QRID: 501, Status: "TRADE_RECEIVED", RealPrice: 100}}
	e.youzan.answer("T9", reading{trade: paid("T9", 501)})
	e.start()

	// Past its TTL, but paid: the order must not be closed.
	if err := e.sweeperAt(orderTTL + time.Minute).Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := e.streamMsgs(natsjs.WebhookStream, natsjs.WebhookSubject(natsjs.ReconcileType))
	if len(got) != 1 || got[0].Header.Get(natsjs.HeaderTID) != "T9" {
		t.Fatalf("reconcile receipts %v, want one for T9", got)
	}
	eventually(t, "the payment event", func() bool { return len(e.events()) == 1 })
	eventually(t, "the receipt to be acked", e.settled)
	if ev := e.events()[0]; ev.EventID != "T9:TRADE_PAID" || ev.OrderID != "o-1" || ev.Payment != 100 {
		t.Errorf("event %+v", ev.PaymentEvent)
	}
	if o := e.orderByID("o-1"); o.Status != domain.StatusTradePaid || o.TID != "T9" {
		t.Errorf("order %s %q, want paid by T9", o.Status, o.TID)
	}
}

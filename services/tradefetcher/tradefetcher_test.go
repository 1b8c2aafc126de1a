package tradefetcher

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/youzan"
)

var paidAt = time.Date(2024, 1, 2, 11, 4, 5, 0, time.UTC)

func paid(tid string, qrID int64) youzan.Trade {
	return youzan.Trade{TID: tid, Status: domain.StatusTradePaid, QRID: qrID, Payment: 100,
		BuyerID: "buyer-7", PayType: "WEIXIN_DAIXIAO", PaidAt: paidAt}
}

func TestReceiptIsReadWithTradeGetStoredAndAnnounced(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	e.youzan.answer("T1", reading{trade: paid("T1", 501)})
	e.start()
	e.receipt("trade_TradePaid", "T1", domain.StatusTradePaid, "m-1")

	eventually(t, "the payment event", func() bool { return len(e.events()) == 1 })
	eventually(t, "the receipt to be acked", e.settled)

	ev := e.events()[0]
	want := domain.PaymentEvent{V: 1, EventID: "T1:TRADE_PAID", OrderID: "o-1", QRID: 501, TID: "T1",
		Status: domain.StatusTradePaid, Payment: 100, UUID: "buyer-7", PayType: "WEIXIN_DAIXIAO"}
	got := ev.PaymentEvent
	got.OccurredAt = time.Time{}
	if got != want {
		t.Errorf("event\n got %+v\nwant %+v", got, want)
	}
	if ev.subject != natsjs.StatusSubject(domain.StatusTradePaid) {
		t.Errorf("subject %q", ev.subject)
	}
	if id := ev.header.Get(nats.MsgIdHdr); id != "T1:TRADE_PAID" {
		t.Errorf("Nats-Msg-Id %q: a repeat would not be recognised", id)
	}
	if v := ev.header.Get(natsjs.HeaderReceivedAt); v != "2024-01-02T03:04:05.123456789Z" {
		t.Errorf("received-at not carried through: %q", v)
	}
	o := e.orderByID("o-1")
	if o.TID != "T1" || o.Status != domain.StatusTradePaid || o.Payment != 100 || o.BuyerID != "buyer-7" ||
		o.PayType != "WEIXIN_DAIXIAO" || !o.PaidAt.Equal(paidAt) {
		t.Errorf("stored order %+v", o)
	}
	if byTID, err := e.store.OrderByTID(t.Context(), "T1"); err != nil || byTID.OrderID != "o-1" {
		t.Errorf("order by trade: %+v, %v", byTID, err)
	}
	if gets := e.youzan.gets(); len(gets) != 1 || gets[0].arg != "T1" {
		t.Errorf("trade.get calls %v", gets)
	}
}

func TestRepeatedReceiptsOfOneTradeAnnounceItOnce(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	e.youzan.answer("T1", reading{trade: paid("T1", 501)})
	e.start()
	// Youzan pushes TradePaid and TRADE_ORDER_STATE for one payment, and
	// reconciliation may add its own receipt.
	e.receipt("trade_TradePaid", "T1", domain.StatusTradePaid, "m-1")
	e.receipt("TRADE_ORDER_STATE", "T1", domain.StatusTradePaid, "m-2")
	e.receipt(natsjs.ReconcileType, "T1", "", "reconcile:T1:1")

	eventually(t, "three trade.get calls", func() bool { return len(e.youzan.gets()) == 3 })
	eventually(t, "the receipts to be acked", e.settled)
	if evs := e.events(); len(evs) != 1 || evs[0].EventID != "T1:TRADE_PAID" {
		t.Errorf("events %+v, want one T1:TRADE_PAID", evs)
	}
}

func TestFailedTradeGetIsRetriedOnTheSchedule(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"retryable", &youzan.Error{API: youzan.APITradeGet, Kind: youzan.Timeout}},
		// Refused (a revoked capability): kept for after the operator's fix.
		{"refused", &youzan.Error{API: youzan.APITradeGet, Kind: youzan.Forbidden, Code: 4204}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.order("o-1", 501)
			fail := reading{err: c.err}
			e.youzan.answer("T1", fail, fail, fail, reading{trade: paid("T1", 501)})
			e.start()
			e.receipt("trade_TradePaid", "T1", domain.StatusTradePaid, "m-1")

			eventually(t, "the payment event", func() bool { return len(e.events()) == 1 })
			gets := e.youzan.gets()
			if len(gets) != 4 {
				t.Fatalf("%d trade.get calls, want 4", len(gets))
			}
			// Each redelivery waits its step of the schedule; past the end
			// the last step repeats, so the receipt is never dropped.
			for i, want := range []time.Duration{retrySchedule[0], retrySchedule[1], retrySchedule[1]} {
				if gap := gets[i+1].at.Sub(gets[i].at); gap < want {
					t.Errorf("retry %d came %s after the failure, want at least %s", i+1, gap, want)
				}
			}
			if o := e.orderByID("o-1"); o.Status != domain.StatusTradePaid {
				t.Errorf("order %s after the retries", o.Status)
			}
		})
	}
}

func TestTradeGetBehindThePushIsReadAgain(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	unpaid := youzan.Trade{TID: "T1", Status: domain.StatusWaitBuyerPay, QRID: 501}
	e.youzan.answer("T1", reading{trade: unpaid}, reading{trade: paid("T1", 501)})
	e.start()
	e.receipt("trade_TradePaid", "T1", domain.StatusTradePaid, "m-1")

	eventually(t, "the payment event", func() bool { return len(e.events()) == 1 })
	eventually(t, "the receipt to be acked", e.settled)
	gets := e.youzan.gets()
	if len(gets) != 2 {
		t.Fatalf("%d trade.get calls, want 2", len(gets))
	}
	if gap := gets[1].at.Sub(gets[0].at); gap < retrySchedule[0] {
		t.Errorf("read again after %s, want at least %s", gap, retrySchedule[0])
	}
	if evs := e.events(); evs[0].Status != domain.StatusTradePaid {
		t.Errorf("announced %s: the lagging reading must not be announced", evs[0].Status)
	}
}

func TestTradeGetStillBehindAfterTheScheduleIsTakenAsRead(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	e.youzan.answer("T1", reading{trade: youzan.Trade{TID: "T1", Status: domain.StatusWaitBuyerPay, QRID: 501}})
	e.start()
	e.receipt("trade_TradePaid", "T1", domain.StatusTradePaid, "m-1")

	// One read per schedule step plus the first; then the receipt is done
	// with, rather than blocking the stream for ever.
	eventually(t, "the receipt to be acked", e.settled)
	if n := len(e.youzan.gets()); n != len(retrySchedule)+1 {
		t.Errorf("%d trade.get calls, want %d", n, len(retrySchedule)+1)
	}
	o := e.orderByID("o-1")
	if o.Status != domain.StatusWaitBuyerPay || o.TID != "T1" {
		t.Errorf("order %s %q: nothing paid was read, so nothing may be paid", o.Status, o.TID)
	}
	for _, ev := range e.events() {
		if domain.IsPaid(ev.Status) {
			t.Errorf("announced %s without trade.get ever saying so", ev.Status)
		}
	}
}

func TestTradesThatAreNotOursAreAckedSilently(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	e.youzan.answer("T-other", reading{trade: paid("T-other", 999)}) // a QR yzpay did not make
	e.youzan.answer("T-shop", reading{trade: paid("T-shop", 0)})     // not a QR trade at all
	e.start()
	e.receipt("trade_TradePaid", "T-other", domain.StatusTradePaid, "m-1")
	e.receipt("trade_TradePaid", "T-shop", domain.StatusTradePaid, "m-2")

	eventually(t, "both receipts read and acked", func() bool { return len(e.youzan.gets()) == 2 && e.settled() })
	if evs := e.events(); len(evs) != 0 {
		t.Errorf("events %+v for trades that are not ours", evs)
	}
	if o := e.orderByID("o-1"); o.TID != "" || o.Status != domain.StatusWaitBuyerPay {
		t.Errorf("order o-1 touched: %+v", o)
	}
}

func TestLateReceiptNeverMovesAnOrderBack(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	success := paid("T1", 501)
	success.Status = domain.StatusTradeSuccess
	e.youzan.answer("T1", reading{trade: success}, reading{trade: paid("T1", 501)})
	e.start()
	e.receipt("trade_TradeSuccess", "T1", domain.StatusTradeSuccess, "m-1")
	eventually(t, "the TRADE_SUCCESS event", func() bool { return len(e.events()) == 1 })
	// A TradePaid push delivered late, read from a stale replica.
	e.receipt("trade_TradePaid", "T1", domain.StatusTradePaid, "m-2")
	eventually(t, "the late receipt read and acked", func() bool { return len(e.youzan.gets()) == 2 && e.settled() })

	if o := e.orderByID("o-1"); o.Status != domain.StatusTradeSuccess {
		t.Errorf("order moved back to %s", o.Status)
	}
	if evs := e.events(); len(evs) != 1 || evs[0].Status != domain.StatusTradeSuccess {
		t.Errorf("events %+v, want only TRADE_SUCCESS", evs)
	}
}

func TestReceiptWithoutATradeIDIsSetAside(t *testing.T) {
	e := newEnv(t)
	e.start()
	m := nats.NewMsg(natsjs.WebhookSubject("trade_TradePaid"))
	m.Data = []byte(`not json`)
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	// Termed, not redelivered for ever, and Youzan is not asked about it.
	eventually(t, "the receipt to be settled", e.settled)
	if n := len(e.youzan.gets()); n != 0 {
		t.Errorf("%d trade.get calls for an unreadable receipt", n)
	}
	if n := len(e.streamMsgs(natsjs.WebhookStream, "")); n != 1 {
		t.Errorf("the receipt is gone from the stream (%d left); an operator needs it", n)
	}
}

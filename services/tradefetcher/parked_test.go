package tradefetcher

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan"
)

func (e *env) receipts(state string) []domain.ParkedReceipt {
	e.t.Helper()
	rs, err := e.store.ListReceipts(context.Background(), store.ReceiptFilter{State: state})
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

// A receipt whose trade Youzan never knows leaves the consumer at once
// (nothing stays ack-pending), is asked about again on the schedule, and is
// kept as a dead receipt once FETCH_GIVE_UP_AFTER has passed.
func TestReceiptForAnUnknownTradeIsGivenUpAfterFetchGiveUpAfter(t *testing.T) {
	e := newEnv(t)
	e.giveUpAfter = 700 * time.Millisecond
	e.start()
	const tid = "E20260101000000000000042"
	e.receipt("trade_TradePaid", tid, domain.StatusTradePaid, "m-1")

	eventually(t, "the receipt to be parked and acked", func() bool { return len(e.receipts("")) == 1 && e.settled() })
	eventually(t, "the receipt to be given up", func() bool { return len(e.receipts(domain.ReceiptDead)) == 1 })
	r := e.receipts(domain.ReceiptDead)[0]
	gets := e.youzan.gets()
	if r.TID != tid || r.Type != "trade_TradePaid" || r.Status != domain.StatusTradePaid || r.Attempts != len(gets) || len(gets) < 3 {
		t.Fatalf("dead receipt %+v after %d trade.get calls; want the push's tid, type and status and every call counted", r, len(gets))
	}
	if age := r.DeadAt.Sub(r.FirstSeen); age < e.giveUpAfter || age > e.giveUpAfter+2*time.Second {
		t.Errorf("given up %s after it was first seen, want just past FETCH_GIVE_UP_AFTER (%s)", age, e.giveUpAfter)
	}
	for i := 1; i < len(gets); i++ {
		if gap := gets[i].at.Sub(gets[i-1].at); gap < retrySchedule[0]-10*time.Millisecond {
			t.Errorf("trade.get %d came %s after the previous one, want the schedule's %s at least", i+1, gap, retrySchedule[0])
		}
	}
	if n := testutil.ToFloat64(e.m.ReceiptsGivenUp); n != 1 {
		t.Errorf("yzpay_receipts_given_up_total = %v, want 1", n)
	}
	if evs := e.events(); len(evs) != 0 {
		t.Errorf("events published for an unknown trade: %v", evs)
	}
}

// A parked receipt whose trade appears later is processed like any other,
// and forgotten.
func TestParkedReceiptWhoseTradeAppearsIsAnnounced(t *testing.T) {
	e := newEnv(t)
	e.order("o-1", 501)
	nf := reading{err: &youzan.Error{API: youzan.APITradeGet, Kind: youzan.NotFound, Message: "trade not found"}}
	e.youzan.answer("E20260101000000000000007", nf, nf, reading{trade: paid("E20260101000000000000007", 501)})
	e.start()
	e.receipt("trade_TradePaid", "E20260101000000000000007", domain.StatusTradePaid, "m-1")

	eventually(t, "the payment event", func() bool { return len(e.events()) == 1 })
	eventually(t, "the parked receipt to be forgotten", func() bool { return len(e.receipts("")) == 0 })
	eventually(t, "the consumer to settle", e.settled)
	if ev := e.events()[0]; ev.Status != domain.StatusTradePaid || ev.OrderID != "o-1" {
		t.Errorf("event %+v", ev.PaymentEvent)
	}
	// The store keeps microseconds.
	if got := e.events()[0].header.Get("Yzpay-Received-At"); got != "2024-01-02T03:04:05.123456Z" {
		t.Errorf("the event carries Yzpay-Received-At %q, want the gateway's original acceptance time", got)
	}
	if o := e.orderByID("o-1"); o.Status != domain.StatusTradePaid {
		t.Errorf("order %s", o.Status)
	}
}

// An operator's replay of a dead receipt asks Youzan once more; when the
// trade exists by then it is processed.
func TestReopenedDeadReceiptIsProcessedWhenItsTradeExists(t *testing.T) {
	e := newEnv(t)
	e.giveUpAfter = 300 * time.Millisecond
	e.order("o-1", 501)
	const tid = "E20260101000000000000009"
	e.start()
	e.receipt("trade_TradePaid", tid, domain.StatusTradePaid, "m-1")
	eventually(t, "the receipt to be given up", func() bool { return len(e.receipts(domain.ReceiptDead)) == 1 })

	e.youzan.answer(tid, reading{trade: paid(tid, 501)})
	if _, err := e.store.ReopenReceipt(context.Background(), tid, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the payment event", func() bool { return len(e.events()) == 1 })
	eventually(t, "the receipt to be forgotten", func() bool { return len(e.receipts("")) == 0 })
}

package sandbox

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Trade is the sandbox's view of a trade, as returned by Pay and CloseQR.
type Trade struct {
	TID     string    `json:"tid"`
	QRID    int64     `json:"qr_id"`
	Status  string    `json:"status"`
	Payment int64     `json:"payment"` // fen actually paid
	BuyerID string    `json:"buyer_id"`
	PayType string    `json:"pay_type"`
	PaidAt  time.Time `json:"paid_at,omitzero"`
}

// PayOptions tune a simulated payment.
type PayOptions struct {
	PayType string // "WEIXIN_DAIXIAO" default, or "ALIPAY"...
	BuyerID string // default generated numeric
	NoPush  bool   // change state but send no pushes (benchmarks push themselves)
	// Amount, if not 0, is what the buyer pays instead of the QR's price
	// (Youzan's open-amount QR codes allow it), for amount-mismatch tests.
	Amount int64
}

type trade struct {
	tid       string
	qrID      int64
	qrPayID   int64
	qrName    string
	price     int64 // fen due
	status    string
	paid      bool
	buyerID   string
	fansID    int64
	payType   string
	created   time.Time
	updated   time.Time
	paidAt    time.Time
	success   time.Time
	closeType int
	appeared  time.Time // for Knobs.ReadLag
	noPush    bool
}

func (t *trade) public() Trade {
	p := Trade{TID: t.tid, QRID: t.qrID, Status: t.status, BuyerID: t.buyerID, PayType: t.payType, PaidAt: t.paidAt}
	if t.paid {
		p.Payment = t.price
	}
	return p
}

// Trade statuses the sandbox moves through.
const (
	StatusWaitBuyerPay = "WAIT_BUYER_PAY"
	StatusTradePaid    = "TRADE_PAID"
	StatusTradeSuccess = "TRADE_SUCCESS"
	StatusTradeClosed  = "TRADE_CLOSED"
)

// Push message types.
const (
	MsgTradeCreate     = "trade_TradeCreate"
	MsgTradePaid       = "trade_TradePaid"
	MsgTradeSuccess    = "trade_TradeSuccess"
	MsgTradeClose      = "trade_TradeClose"
	MsgTradeOrderState = "TRADE_ORDER_STATE"
)

// createQR registers a QR code; called by the qrcode.create API.
func (s *Sandbox) createQR(name string, price int64) *qrCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextQR++
	q := &qrCode{id: s.nextQR, name: name, price: price, created: time.Now()}
	s.qrs[q.id] = q
	return q
}

// CreateQR registers a dynamic QR code directly, without the API (handy for
// benchmarks and demos). It returns the qr_id.
func (s *Sandbox) CreateQR(name string, priceFen int64) int64 {
	return s.createQR(name, priceFen).id
}

// newTradeLocked makes the trade a payer's scan creates. s.mu must be held.
func (s *Sandbox) newTradeLocked(q *qrCode, o PayOptions) *trade {
	now := time.Now()
	s.tidSeq++
	s.nextPayID++
	tid := fmt.Sprintf("E%s%09d", now.In(shanghai).Format("20060102150405"), s.tidSeq%1_000_000_000)
	if o.PayType == "" {
		o.PayType = "WEIXIN_DAIXIAO"
	}
	if o.BuyerID == "" {
		o.BuyerID = strconv.FormatInt(100_000_000+s.rng.Int64N(900_000_000), 10)
	}
	t := &trade{
		tid: tid, qrID: q.id, qrPayID: s.nextPayID, qrName: q.name, price: q.price,
		status: StatusWaitBuyerPay, buyerID: o.BuyerID, fansID: 4_000_000_000 + s.rng.Int64N(1_000_000_000),
		payType: o.PayType, created: now, updated: now, appeared: time.Now(), noPush: o.NoPush,
	}
	s.trades[tid] = t
	q.tids = append(q.tids, tid)
	if s.cfg.PushStyle == PushStyleLegacy {
		s.enqueueLocked(t, MsgTradeOrderState)
	} else {
		s.enqueueLocked(t, MsgTradeCreate)
	}
	return t
}

// Pay simulates a payer scanning the QR code and paying: the trade is
// created (WAIT_BUYER_PAY), paid (TRADE_PAID) and, after
// Knobs.SuccessDelay, completed (TRADE_SUCCESS), each with its push.
func (s *Sandbox) Pay(ctx context.Context, qrID int64, o PayOptions) (Trade, error) {
	if err := ctx.Err(); err != nil {
		return Trade{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.qrs[qrID]
	switch {
	case q == nil:
		return Trade{}, fmt.Errorf("pay %d: %w", qrID, ErrUnknownQR)
	case q.paid:
		return Trade{}, fmt.Errorf("pay %d: %w", qrID, ErrAlreadyPaid)
	case q.closed:
		return Trade{}, fmt.Errorf("pay %d: %w", qrID, ErrClosed)
	}
	t := s.newTradeLocked(q, o)
	if o.Amount > 0 {
		t.price = o.Amount
	}
	q.paid = true
	now := time.Now()
	t.status, t.paid, t.paidAt, t.updated = StatusTradePaid, true, now, now
	if s.cfg.PushStyle != PushStyleLegacy {
		s.enqueueLocked(t, MsgTradePaid)
	}
	if d := s.knobs.SuccessDelay; d > 0 {
		s.goTracked(func() {
			if !sleepCtx(s.ctx, d) {
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.succeedLocked(t)
		})
	} else {
		s.succeedLocked(t)
	}
	return t.public(), nil
}

func (s *Sandbox) succeedLocked(t *trade) {
	if t.status != StatusTradePaid {
		return
	}
	now := time.Now()
	t.status, t.success, t.updated = StatusTradeSuccess, now, now
	if s.cfg.PushStyle == PushStyleLegacy {
		s.enqueueLocked(t, MsgTradeOrderState)
	} else {
		s.enqueueLocked(t, MsgTradeSuccess)
	}
}

// CloseQR closes the QR code's unpaid trade (as when it expires 30 minutes
// after the scan) and makes the code unpayable. A code nobody scanned gets a
// trade created and closed at once. Paid codes cannot be closed.
func (s *Sandbox) CloseQR(ctx context.Context, qrID int64) (Trade, error) {
	if err := ctx.Err(); err != nil {
		return Trade{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.qrs[qrID]
	switch {
	case q == nil:
		return Trade{}, fmt.Errorf("close %d: %w", qrID, ErrUnknownQR)
	case q.paid:
		return Trade{}, fmt.Errorf("close %d: %w", qrID, ErrAlreadyPaid)
	}
	var t *trade
	for _, tid := range q.tids {
		if x := s.trades[tid]; x.status == StatusWaitBuyerPay {
			t = x
		}
	}
	if t == nil {
		if q.closed && len(q.tids) > 0 {
			return s.trades[q.tids[len(q.tids)-1]].public(), nil
		}
		t = s.newTradeLocked(q, PayOptions{})
	}
	q.closed = true
	t.status, t.closeType, t.updated = StatusTradeClosed, 1, time.Now()
	if s.cfg.PushStyle == PushStyleLegacy {
		s.enqueueLocked(t, MsgTradeOrderState)
	} else {
		s.enqueueLocked(t, MsgTradeClose)
	}
	return t.public(), nil
}

// payTypeCode is order_info.pay_type (int) for a pay_type_str; only the
// 2018 capture's 10 = WEIXIN_DAIXIAO is confirmed.
func payTypeCode(s string) int {
	switch {
	case s == "WEIXIN_DAIXIAO":
		return 10
	case strings.HasPrefix(s, "WEIXIN"), strings.HasPrefix(s, "WX"):
		return 1
	case strings.HasPrefix(s, "ALI"):
		return 2
	}
	return 0
}

// qrPayType is the trades.qr.get vocabulary (WXPAY, ALIPAY…).
func qrPayType(s string) string {
	if strings.HasPrefix(s, "WEIXIN") || strings.HasPrefix(s, "WX") {
		return "WXPAY"
	}
	return s
}

var statusStr = map[string]string{
	StatusWaitBuyerPay: "待付款",
	StatusTradePaid:    "已支付",
	StatusTradeSuccess: "已完成",
	StatusTradeClosed:  "已关闭",
}

// fullTrade is the youzan.trade.get 4.0.0 result (and trade_Trade* push msg)
// for t, shaped like the 2018 QR-trade capture.
func (s *Sandbox) fullTrade(t *trade, withQRInfo bool) map[string]any {
	paid := t.paid
	payment := fmtYuan(t.price)
	m := map[string]any{
		"full_order_info": map[string]any{
			"order_info": map[string]any{
				"tid":             t.tid,
				"status":          t.status,
				"status_str":      statusStr[t.status],
				"type":            6,
				"pay_type":        payTypeCode(t.payType),
				"pay_type_str":    t.payType,
				"created":         fmtTime(t.created),
				"update_time":     fmtTime(t.updated),
				"pay_time":        fmtTime(t.paidAt),
				"expired_time":    fmtTime(t.created.Add(30 * time.Minute)),
				"success_time":    fmtTime(t.success),
				"close_type":      t.closeType,
				"refund_state":    0,
				"express_type":    9,
				"team_type":       1,
				"is_retail_order": false,
				"order_tags": map[string]any{
					"is_payed":                paid,
					"is_secured_transactions": false,
					"is_virtual":              true,
				},
				"order_extra": map[string]any{"is_from_cart": "false"},
			},
			"buyer_info": map[string]any{
				"buyer_id":      mustInt(t.buyerID),
				"buyer_phone":   "",
				"fans_type":     9,
				"fans_id":       t.fansID,
				"fans_nickname": "",
				"outer_user_id": "",
			},
			"pay_info": map[string]any{
				"payment":   payment,
				"total_fee": payment,
				"post_fee":  "0.00",
			},
			"orders": []any{map[string]any{
				"oid":            1_400_000_000_000_000_000 + t.qrPayID,
				"title":          t.qrName,
				"item_type":      30,
				"num":            1,
				"price":          payment,
				"total_fee":      payment,
				"payment":        payment,
				"discount_price": payment,
			}},
			"source_info": map[string]any{
				"is_offline_order": false,
				"source":           map[string]any{"platform": "wx", "wx_entrance": "direct_buy"},
			},
		},
		"refund_order":   []any{},
		"delivery_order": []any{},
		"order_promotion": map[string]any{
			"item": []any{}, "order": []any{}, "item_discount_fee": "0.00", "order_discount_fee": "0.00", "adjust_fee": "0.00",
		},
	}
	if withQRInfo {
		m["qr_info"] = map[string]any{"qr_id": t.qrID, "qr_pay_id": t.qrPayID, "qr_name": t.qrName}
	}
	return m
}

// mustInt renders a numeric buyer id as a JSON number, like Youzan; a
// non-numeric one (given through PayOptions) stays a string.
func mustInt(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	return s
}

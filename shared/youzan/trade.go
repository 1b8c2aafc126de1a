package youzan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// API names used by this package, also the labels passed to Config.Observe.
const (
	APIQRCodeCreate = "youzan.pay.qrcode.create"
	APITradeGet     = "youzan.trade.get"
	APITradesQRGet  = "youzan.trades.qr.get"
)

// QRCode is a freshly created dynamic (payable once) QR code.
type QRCode struct {
	ID   int64
	URL  string
	Code string // Code = Youzan's data URI (we re-render our own elsewhere)
}

// CreateQRCode creates a QR code the payer can pay exactly once for priceFen.
func (c *Client) CreateQRCode(ctx context.Context, name string, priceFen int64) (QRCode, error) {
	if strings.TrimSpace(name) == "" || priceFen <= 0 {
		return QRCode{}, &Error{API: APIQRCodeCreate, Kind: BadRequest, Message: "name must be non-empty and price positive"}
	}
	params := map[string]any{
		"qr_name":  name,
		"qr_price": priceFen, // integer fen, the one place Youzan takes fen
		"qr_type":  "QR_TYPE_DYNAMIC",
	}
	var q QRCode
	err := c.call(ctx, APIQRCodeCreate, "3.0.0", params, func(res json.RawMessage) error {
		var r struct {
			QRID   ID     `json:"qr_id"`
			QRURL  string `json:"qr_url"`
			QRCode string `json:"qr_code"`
		}
		if err := json.Unmarshal(res, &r); err != nil {
			return &Error{API: APIQRCodeCreate, Kind: Protocol, Message: "decode result: " + err.Error(), err: err}
		}
		if r.QRID <= 0 {
			return &Error{API: APIQRCodeCreate, Kind: Protocol, Message: "result without qr_id"}
		}
		q = QRCode{ID: int64(r.QRID), URL: r.QRURL, Code: r.QRCode}
		return nil
	})
	return q, err
}

// Trade is the part of a Youzan trade the relay acts on.
type Trade struct {
	TID     string
	Status  string    // e.g. TRADE_SUCCESS (full_order_info.order_info.status; 3.0.0 trade.status)
	QRID    int64     // 0 = not a QR trade
	Payment int64     // fen actually paid; 0 when status is WAIT_BUYER_PAY or the trade is closed unpaid (order_tags.is_payed false)
	BuyerID string    // buyer_id, else fans_weixin_openid, else fans_id; "" when none/0
	PayType string    // pay_type_str (4.0.x) or pay_type string (3.0.0)
	PaidAt  time.Time // pay_time interpreted in Asia/Shanghai; zero if absent
}

// ErrNoTrade is returned (wrapped) by ParseTrade when the result holds no
// trade at all; GetTrade reports it as a NotFound *Error because Youzan
// answers an empty result while its read side lags.
var ErrNoTrade = errors.New("youzan: result holds no trade")

// GetTrade reads one trade with youzan.trade.get 4.0.0.
func (c *Client) GetTrade(ctx context.Context, tid string) (Trade, error) {
	if tid == "" {
		return Trade{}, &Error{API: APITradeGet, Kind: BadRequest, Message: "empty tid"}
	}
	var t Trade
	var params any = tradeGetParams{TID: tid}
	if plainID(tid) {
		// What json.Marshal writes for it, without reflection.
		params = encodedParams(`{"tid":"` + tid + `"}`)
	}
	err := c.do(ctx, APITradeGet, "4.0.0", params, func(status int, body []byte) error {
		var err error
		t, err = readTradeGet(status, body)
		return err
	})
	return t, err
}

// tradeGetParams encodes as {"tid":"…"}, as the map it replaces did.
type tradeGetParams struct {
	TID string `json:"tid"`
}

// plainID: letters and digits only, which JSON strings hold as they are.
func plainID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// readTradeGet classifies one trade.get answer and reads the trade in it.
// The result is read once, is_success and the trade together, by the
// scanner (else by encoding/json, which fills the same struct); only a
// result that decoding finds fault with goes through classify's separate
// is_success check and ParseTrade, which then say what is wrong exactly as
// before.
func readTradeGet(status int, body []byte) (Trade, error) {
	res, err := classifyEnvelope(APITradeGet, status, body)
	if err != nil {
		return Trade{}, err
	}
	var r tradeGetResult
	if !r.scan(res) {
		r = tradeGetResult{}
		err = json.Unmarshal(res, &r)
	}
	if err != nil {
		if err := checkIsSuccess(APITradeGet, res); err != nil {
			return Trade{}, err
		}
		return tradeFromResult(res)
	}
	// Decoded without error, so checkIsSuccess's own decode would have
	// found the same is_success, and ParseTrade the same trade.
	if r.IsSuccess != nil && !*r.IsSuccess {
		return Trade{}, &Error{API: APITradeGet, Kind: Business, HTTPStatus: http.StatusOK, Message: "is_success is false"}
	}
	if isEmptyResult(res) {
		return Trade{}, &Error{API: APITradeGet, Kind: NotFound, Code: codeTradeNotFound, Message: "empty result"}
	}
	t, err := r.trade()
	if err != nil {
		return Trade{}, &Error{API: APITradeGet, Kind: NotFound, Message: "result holds no trade", err: err}
	}
	return t, nil
}

// tradeFromResult reads the trade in a successful trade.get result.
func tradeFromResult(res json.RawMessage) (Trade, error) {
	if isEmptyResult(res) {
		return Trade{}, &Error{API: APITradeGet, Kind: NotFound, Code: codeTradeNotFound, Message: "empty result"}
	}
	t, err := ParseTrade(res)
	switch {
	case errors.Is(err, ErrNoTrade):
		return Trade{}, &Error{API: APITradeGet, Kind: NotFound, Message: "result holds no trade", err: err}
	case err != nil:
		return Trade{}, &Error{API: APITradeGet, Kind: Protocol, Message: err.Error(), err: err}
	}
	return t, nil
}

type buyerInfo struct {
	BuyerID          text `json:"buyer_id"`
	FansWeixinOpenID text `json:"fans_weixin_openid"`
	FansID           text `json:"fans_id"`
}

func (b buyerInfo) id() string {
	for _, v := range []text{b.BuyerID, b.FansWeixinOpenID, b.FansID} {
		if s := strings.TrimSpace(string(v)); s != "" && s != "0" {
			return s
		}
	}
	return ""
}

// flexBool accepts true/false, "true"/"false" and 1/0.
type flexBool struct{ set, v bool }

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(bytes.TrimSpace(b)), `"`) {
	case "true", "1":
		*f = flexBool{true, true}
	case "false", "0":
		*f = flexBool{true, false}
	default:
		*f = flexBool{}
	}
	return nil
}

type tradeResult struct {
	// 4.0.x and trade_TradePaid / trade_TradeCreate push messages.
	FullOrderInfo *fullOrderInfo `json:"full_order_info"`
	QRInfo        struct {
		QRID ID `json:"qr_id"` // 4.0.0 as observed, and push msg
	} `json:"qr_info"`

	// 3.0.0: {"trade": {...}}; also the V1 "TRADE" push.
	Trade *tradeV3 `json:"trade"`

	// Flat legacy TRADE_ORDER_STATE msg: {tid, status, payment, update_time}.
	TID     text `json:"tid"`
	Status  text `json:"status"`
	Payment Fen  `json:"payment"`
	PayType text `json:"pay_type"`
}

type fullOrderInfo struct {
	OrderInfo struct {
		TID        text `json:"tid"`
		Status     text `json:"status"`
		PayTypeStr text `json:"pay_type_str"`
		PayTime    text `json:"pay_time"`
		OrderTags  struct {
			IsPayed flexBool `json:"is_payed"`
		} `json:"order_tags"`
	} `json:"order_info"`
	BuyerInfo buyerInfo `json:"buyer_info"`
	PayInfo   struct {
		Payment Fen `json:"payment"`
	} `json:"pay_info"`
	QRCodeInfo struct {
		QRCodeID ID `json:"qrcode_id"` // 4.0.1+ docs
	} `json:"qrcode_info"`
}

type tradeV3 struct {
	TID      text      `json:"tid"`
	Status   text      `json:"status"`
	QRID     ID        `json:"qr_id"`
	Payment  Fen       `json:"payment"`
	PayType  text      `json:"pay_type"`
	PayTime  text      `json:"pay_time"`
	FansInfo buyerInfo `json:"fans_info"`
}

// ParseTrade normalises a youzan.trade.get business result (the content of
// `response` or `data`) or a decoded trade push msg. It understands 4.0.0
// (full_order_info + qr_info), 4.0.1+ (full_order_info.qrcode_info), 3.0.0
// ({"trade":{...}}) and the flat TRADE_ORDER_STATE msg. Ids may be numbers
// or numeric strings; amounts are converted from yuan without floats.
func ParseTrade(result []byte) (Trade, error) {
	var r tradeResult
	if err := json.Unmarshal(result, &r); err != nil {
		return Trade{}, fmt.Errorf("youzan: decode trade: %w", err)
	}
	return r.trade()
}

// trade normalises a decoded result; its only error is ErrNoTrade.
func (r *tradeResult) trade() (Trade, error) {
	var t Trade
	var isPayed flexBool
	var payTime text
	switch {
	case r.FullOrderInfo != nil && r.FullOrderInfo.OrderInfo.TID != "":
		f := r.FullOrderInfo
		t.TID = string(f.OrderInfo.TID)
		t.Status = string(f.OrderInfo.Status)
		t.Payment = int64(f.PayInfo.Payment)
		t.BuyerID = f.BuyerInfo.id()
		t.PayType = string(f.OrderInfo.PayTypeStr)
		payTime = f.OrderInfo.PayTime
		isPayed = f.OrderInfo.OrderTags.IsPayed
		t.QRID = int64(r.QRInfo.QRID)
		if t.QRID == 0 {
			t.QRID = int64(f.QRCodeInfo.QRCodeID)
		}
	case r.Trade != nil && r.Trade.TID != "":
		tr := r.Trade
		t.TID = string(tr.TID)
		t.Status = string(tr.Status)
		t.QRID = int64(tr.QRID)
		t.Payment = int64(tr.Payment)
		t.BuyerID = tr.FansInfo.id()
		t.PayType = string(tr.PayType)
		payTime = tr.PayTime
	case r.TID != "":
		t.TID = string(r.TID)
		t.Status = string(r.Status)
		t.Payment = int64(r.Payment)
		t.PayType = string(r.PayType)
		t.QRID = int64(r.QRInfo.QRID)
	default:
		return Trade{}, ErrNoTrade
	}
	if t.QRID < 0 {
		t.QRID = 0
	}
	switch {
	case t.Status == "WAIT_BUYER_PAY", t.Status == "TRADE_NO_CREATE_PAY":
		// pay_info.payment is the amount due, not paid.
		t.Payment = 0
	case isPayed.set && !isPayed.v:
		t.Payment = 0
	}
	t.PaidAt = parseTime(string(payTime))
	return t, nil
}

// QRTradesQuery selects trades of youzan.trades.qr.get; zero fields are omitted.
type QRTradesQuery struct {
	QRID     int64
	Status   string // WAIT_RECEIVED, TRADE_RECEIVED, TRADE_EXPIRED
	PageNo   int
	PageSize int
}

// QRTrade is one entry of youzan.trades.qr.get.
type QRTrade struct {
	TID       string
	QRID      int64
	Status    string
	RealPrice int64 // fen
	PayType   string
	CreatedAt time.Time
	PaidAt    time.Time
}

// QRTradesPage is one page of QR trades plus the total count Youzan reports.
type QRTradesPage struct {
	Trades []QRTrade
	Total  int
}

// total accepts 16, "16" and {"total": 16}: the listing APIs disagree.
type total int

func (t *total) UnmarshalJSON(b []byte) error {
	var id ID
	if err := id.UnmarshalJSON(b); err == nil {
		*t = total(id)
		return nil
	}
	var o struct {
		Total ID `json:"total"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*t = total(o.Total)
	return nil
}

// QRTradeLister lists the trades of one QR code; *Client implements it.
type QRTradeLister interface {
	QRTrades(ctx context.Context, q QRTradesQuery) (QRTradesPage, error)
}

// PaidTIDs asks Youzan for the paid trades of qrID, as reconciliation does
// (the sweep, and the console's "reconcile now"): the ids of the first 20,
// which is every one a QR made for one order has in practice. A trade
// listed for another QR is left out.
func PaidTIDs(ctx context.Context, l QRTradeLister, qrID int64) ([]string, error) {
	page, err := l.QRTrades(ctx, QRTradesQuery{QRID: qrID, Status: "TRADE_RECEIVED", PageNo: 1, PageSize: 20})
	if err != nil {
		return nil, err
	}
	var tids []string
	for _, t := range page.Trades {
		if t.TID != "" && (t.QRID == 0 || t.QRID == qrID) {
			tids = append(tids, t.TID)
		}
	}
	return tids, nil
}

// QRTrades lists the trades of QR codes (reconciliation backstop for lost pushes).
func (c *Client) QRTrades(ctx context.Context, q QRTradesQuery) (QRTradesPage, error) {
	params := map[string]any{}
	if q.QRID != 0 {
		params["qr_id"] = strconv.FormatInt(q.QRID, 10) // documented as String
	}
	if q.Status != "" {
		params["status"] = q.Status
	}
	if q.PageNo > 0 {
		params["page_no"] = q.PageNo
	}
	if q.PageSize > 0 {
		params["page_size"] = q.PageSize
	}
	var page QRTradesPage
	err := c.call(ctx, APITradesQRGet, "3.0.0", params, func(res json.RawMessage) error {
		if isEmptyResult(res) {
			return nil
		}
		var r struct {
			QRTrades []struct {
				TID         text `json:"tid"`
				QRID        ID   `json:"qr_id"`
				Status      text `json:"status"`
				RealPrice   Fen  `json:"real_price"`
				PayType     text `json:"pay_type"`
				CreatedDate text `json:"created_date"`
				PayDate     text `json:"pay_date"`
			} `json:"qr_trades"`
			TotalResults total `json:"total_results"`
		}
		if err := json.Unmarshal(res, &r); err != nil {
			return &Error{API: APITradesQRGet, Kind: Protocol, Message: "decode result: " + err.Error(), err: err}
		}
		page.Total = int(r.TotalResults)
		page.Trades = make([]QRTrade, 0, len(r.QRTrades))
		for _, x := range r.QRTrades {
			page.Trades = append(page.Trades, QRTrade{
				TID:       string(x.TID),
				QRID:      int64(x.QRID),
				Status:    string(x.Status),
				RealPrice: int64(x.RealPrice),
				PayType:   string(x.PayType),
				CreatedAt: parseTime(string(x.CreatedDate)),
				PaidAt:    parseTime(string(x.PayDate)),
			})
		}
		return nil
	})
	return page, err
}

// China has had no DST since 1991, so the fixed zone is exact when the
// system lacks tzdata.
var shanghai = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600)
}()

// Shanghai is the zone Youzan's zoneless "yyyy-MM-dd HH:mm:ss" times are in.
func Shanghai() *time.Location { return shanghai }

// TimeLayout is Youzan's timestamp format.
const TimeLayout = "2006-01-02 15:04:05"

// parseTime is lenient on purpose: a malformed or placeholder time must not
// stop a payment from being relayed.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "0000") {
		return time.Time{}
	}
	for _, layout := range []string{TimeLayout, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, shanghai); err == nil {
			return t
		}
	}
	return time.Time{}
}

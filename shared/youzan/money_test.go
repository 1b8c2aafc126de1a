package youzan_test

import (
	"encoding/json"
	"testing"

	"github.com/yzpay/yzpay/shared/youzan"
)

func TestYuanToFen(t *testing.T) {
	ok := map[string]int64{
		"0.01": 1, "11.00": 1100, "1234.5": 123450, "0.1": 10, "3": 300, "0": 0, "0.00": 0,
		"260.00": 26000, "1.500": 150, "007.07": 707, "92233720368547758.07": 9223372036854775807,
	}
	for in, want := range ok {
		got, err := youzan.YuanToFen(in)
		if err != nil || got != want {
			t.Errorf("YuanToFen(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"1.005", "abc", "-1", "", "1e3", "1.", ".5", " 1", "1,00", "+1", "0x10", "92233720368547758.08", "99999999999999999999", "1.2.3", "NaN"} {
		if got, err := youzan.YuanToFen(in); err == nil {
			t.Errorf("YuanToFen(%q) = %d, want error", in, got)
		}
	}
}

func TestJSONYuanToFen(t *testing.T) {
	cases := map[string]int64{`"0.01"`: 1, `0.01`: 1, `11`: 1100, `"11.00"`: 1100, `null`: 0, `""`: 0, `260.00`: 26000}
	for in, want := range cases {
		got, err := youzan.JSONYuanToFen([]byte(in))
		if err != nil || got != want {
			t.Errorf("JSONYuanToFen(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{`1e-2`, `"x"`, `true`, `0.001`} {
		if _, err := youzan.JSONYuanToFen([]byte(in)); err == nil {
			t.Errorf("JSONYuanToFen(%s): want error", in)
		}
	}
	var v struct {
		A, B youzan.ID
		P    youzan.Fen
	}
	if err := json.Unmarshal([]byte(`{"A":"9007199254740993","B":9007199254740993,"P":"0.10"}`), &v); err != nil ||
		v.A != 9007199254740993 || v.B != 9007199254740993 || v.P != 10 {
		t.Errorf("ID/Fen decode: %+v %v", v, err)
	}
}

func TestParseTradePush(t *testing.T) {
	// trade_TradePaid msg: full structure with qr_info as a sibling (2018 capture).
	msg := `{"full_order_info":{"order_info":{"tid":"E20180917182001000000001","status":"TRADE_SUCCESS","pay_type":10,"pay_type_str":"WEIXIN_DAIXIAO","pay_time":"2018-09-17 18:20:01","order_tags":{"is_payed":"true"}},"buyer_info":{"buyer_id":123,"fans_id":456,"fans_type":9},"pay_info":{"payment":"0.01","total_fee":"0.01"}},"qr_info":{"qr_id":8286057,"qr_pay_id":23005982,"qr_name":"测试生成收款二维码"}}`
	tr, err := youzan.ParseTrade([]byte(msg))
	if err != nil || tr.QRID != 8286057 || tr.Payment != 1 || tr.BuyerID != "123" || tr.PaidAt.Unix() != 1537179601 {
		t.Fatalf("%+v %v", tr, err)
	}
	// legacy TRADE_ORDER_STATE msg: flat.
	tr, err = youzan.ParseTrade([]byte(`{"update_time":"2017-08-07 18:19:05","payment":"11.00","tid":"E20170807181905034500002","status":"TRADE_CLOSED"}`))
	if err != nil || tr.TID != "E20170807181905034500002" || tr.Payment != 1100 || tr.QRID != 0 {
		t.Fatalf("%+v %v", tr, err)
	}
	if _, err := youzan.ParseTrade([]byte(`{}`)); err == nil {
		t.Fatal("want ErrNoTrade")
	}
	if _, err := youzan.ParseTrade([]byte(`{"full_order_info":{"order_info":{"tid":"E"},"pay_info":{"payment":"1.005"}}}`)); err == nil {
		t.Fatal("want amount error")
	}
}

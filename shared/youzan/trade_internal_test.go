package youzan

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
)

// refReadTradeGet is how a trade.get answer was read before it was decoded
// in one pass (issue 16): classify (is_success included), then ParseTrade.
func refReadTradeGet(status int, body []byte) (Trade, error) {
	res, err := classify(APITradeGet, status, body)
	if err != nil {
		return Trade{}, err
	}
	return tradeFromResult(res)
}

var tradeGetCases = []string{
	`{"response":{"full_order_info":{"order_info":{"tid":"E1","status":"TRADE_PAID","pay_time":"2024-01-02 03:04:05","order_tags":{"is_payed":true}},"pay_info":{"payment":"0.01"},"buyer_info":{"buyer_id":7}},"qr_info":{"qr_id":9}}}`,
	`{"response":{"is_success":false,"full_order_info":{"order_info":{"tid":"E1"}}}}`,
	`{"response":{"is_success":"false","full_order_info":{"order_info":{"tid":"E1"}}}}`,
	`{"response":{"is_success":true,"trade":{"tid":"E2","status":"TRADE_SUCCESS","qr_id":"5","payment":1.5}}}`,
	`{"success":true,"code":200,"data":{"tid":"E3","status":"WAIT_BUYER_PAY","payment":"2.00"}}`,
	`{"success":true,"data":{"is_success":false}}`,
	`{"success":true,"data":null}`,
	`{"success":true}`,
	`{"response":{}}`,
	`{"response":[]}`,
	`{"response":"x"}`,
	`{"response":{"full_order_info":"x","tid":"E4"}}`,
	`{"response":{"qr_info":{"qr_id":"abc"},"tid":"E5"}}`,
	`{"response":{"tid":"E6","payment":"0.001"}}`,
	`{"response":{"full_order_info":{"order_info":{"tid":"E7"}},"full_order_info":null,"trade":{"tid":"E8"}}}`,
	`{"response":{"TID":"E9","Status":"PAID"}}`,
	`{"response":{"tid":"E\u0031\u00e9"}}`,
	"{\"response\":{\"tid\":\"E\xff\"}}",
	`{"gw_err_resp":{"err_code":4201,"err_msg":"token"},"response":{"tid":"E1"}}`,
	`{"error_response":{"code":50000,"msg":"trade not found"}}`,
	`{"response":{"tid":"E10"}} x`,
}

func sameTradeGet(t *testing.T, body []byte) {
	t.Helper()
	got, err := readTradeGet(http.StatusOK, body)
	want, werr := refReadTradeGet(http.StatusOK, body)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: trade %+v, reference %+v", body, got, want)
	}
	var ge, we *Error
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) ||
		errors.As(err, &ge) != errors.As(werr, &we) || (ge != nil && (ge.Kind != we.Kind || ge.Code != we.Code)) {
		t.Fatalf("%q: err %v, reference %v", body, err, werr)
	}
}

func TestReadTradeGetSameAsReference(t *testing.T) {
	for _, c := range tradeGetCases {
		sameTradeGet(t, []byte(c))
	}
}

// FuzzReadTradeGetSameAsReference: reading is_success and the trade in one
// pass gives the trade and the error the separate passes gave.
func FuzzReadTradeGetSameAsReference(f *testing.F) {
	for _, c := range tradeGetCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameTradeGet(t, body) })
}

// FuzzUnquote: the shortcut gives what encoding/json gives.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"a"`, `""`, `"\u00e9"`, "\"\xff\"", `"a\"b"`, `"`, `"a`, "\"a\tb\"", `"中文"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := unquote(b)
		var want string
		werr := json.Unmarshal(b, &want)
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("unquote(%q) = %q, %v; encoding/json %q, %v", b, got, err, want, werr)
		}
	})
}

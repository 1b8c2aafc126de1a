package youzan

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"testing"
)

// refReadTradeGet is how a trade.get answer was read before it was decoded
// in one pass (issue 16): classify (is_success included), then ParseTrade.
func refReadTradeGet(status int, body []byte) (Trade, error) {
	res, err := refClassify(APITradeGet, status, body)
	if err != nil {
		return Trade{}, err
	}
	return tradeFromResult(res)
}

// refClassify is classify before the scanner (issue 16), verbatim: it turns one HTTP answer into the business result or an *Error, in
// the order gw_err_resp → error_response → response → success/code.
// HTTP 200 alone proves nothing: every gateway error arrives with it.
func refClassify(api string, status int, body []byte) (json.RawMessage, error) {
	switch {
	case status >= 500:
		return nil, &Error{API: api, Kind: Server, HTTPStatus: status, Message: http.StatusText(status)}
	case status == http.StatusTooManyRequests:
		return nil, &Error{API: api, Kind: RateLimited, HTTPStatus: status, Message: http.StatusText(status)}
	case status >= 300 && status < 400:
		return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "redirect refused (YOUZAN_API_BASE must name the API host itself)"}
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "unparseable body: " + snippet(body), err: err}
	}
	switch {
	case present(env.GwErr):
		var g gwErr
		if err := json.Unmarshal(env.GwErr, &g); err != nil {
			return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "bad gw_err_resp", err: err}
		}
		code, _ := strconv.Atoi(string(g.ErrCode))
		msg := string(g.ErrMsg)
		if msg == "" {
			msg = string(g.ErrMessage)
		}
		return nil, &Error{API: api, Kind: gatewayKind(code), Code: code, Message: msg, HTTPStatus: status}
	case present(env.ErrResp):
		var l legacyErr
		if err := json.Unmarshal(env.ErrResp, &l); err != nil {
			return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "bad error_response", err: err}
		}
		code, _ := strconv.Atoi(string(l.Code))
		msg := string(l.Msg)
		if msg == "" {
			msg = string(l.Message)
		}
		if l.SubMsg != "" {
			msg += " / " + string(l.SubMsg)
		}
		return nil, &Error{API: api, Kind: businessKind(code, msg), Code: code, Message: msg, HTTPStatus: status}
	case present(env.Response):
		if err := refCheckIsSuccess(api, env.Response); err != nil {
			return nil, err
		}
		return env.Response, nil
	case env.Success != nil || env.Code != "":
		code, _ := strconv.Atoi(string(env.Code))
		ok := code == 200
		if env.Success != nil {
			ok = *env.Success
		}
		msg := string(env.Message)
		if msg == "" {
			msg = string(env.Msg)
		}
		if !ok {
			return nil, &Error{API: api, Kind: businessKind(code, msg), Code: code, Message: msg, HTTPStatus: status}
		}
		if err := refCheckIsSuccess(api, env.Data); err != nil {
			return nil, err
		}
		return env.Data, nil
	}
	if status != http.StatusOK {
		return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "unexpected HTTP status: " + snippet(body)}
	}
	return nil, &Error{API: api, Kind: Protocol, HTTPStatus: status, Message: "unrecognised envelope: " + snippet(body)}
}

// checkIsSuccess honours the is_success:false some result objects carry
// inside an otherwise successful envelope.
func refCheckIsSuccess(api string, res json.RawMessage) error {
	var s struct {
		IsSuccess *bool `json:"is_success"`
	}
	if json.Unmarshal(res, &s) == nil && s.IsSuccess != nil && !*s.IsSuccess {
		return &Error{API: api, Kind: Business, HTTPStatus: http.StatusOK, Message: "is_success is false"}
	}
	return nil
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

// FuzzClassifySameAsReference: the envelope read by the scanner gives the
// result and error encoding/json gave, for every API.
func FuzzClassifySameAsReference(f *testing.F) {
	for _, c := range tradeGetCases {
		f.Add([]byte(c), 200)
	}
	f.Add([]byte(`{"success":false,"code":"500100004","message":"请求被限流"}`), 200)
	f.Add([]byte(`{"Success":null,"CODE":200,"msg":{"a":1}}`), 200)
	f.Add([]byte(`<html>`), 404)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		res, err := classify("api", status, body)
		wres, werr := refClassify("api", status, body)
		if !bytes.Equal(res, wres) || (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("%d %q: %q, %v; reference %q, %v", status, body, res, err, wres, werr)
		}
	})
}

// FuzzReadTradeGetSameAsReference: reading is_success and the trade in one
// pass gives the trade and the error the separate passes gave.
func FuzzReadTradeGetSameAsReference(f *testing.F) {
	for _, c := range tradeGetCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameTradeGet(t, body) })
}

// TestTradeGetTakesTheFastPath guards the speed-up: the sandbox's answer is
// read by the scanner, not handed back to encoding/json.
func TestTradeGetTakesTheFastPath(t *testing.T) {
	body := []byte(`{"response":` + tradeGetCases[0][len(`{"response":`):])
	var env envelope
	if !env.scan(body) {
		t.Fatal("envelope not read by the scanner")
	}
	var r tradeGetResult
	if !r.scan(env.Response) || r.FullOrderInfo == nil || r.FullOrderInfo.OrderInfo.TID != "E1" || r.QRInfo.QRID != 9 {
		t.Fatalf("trade not read by the scanner: %+v", r)
	}
}

// TestTradeGetParamsAsMarshalled: the hand-written trade.get request body is
// the one json.Marshal writes.
func TestTradeGetParamsAsMarshalled(t *testing.T) {
	for _, tid := range []string{"E20240101120000000000001", "e1", "", "E<1>", "E&1", "E\"1", "E 1", "É1", "E\xff"} {
		want, _ := json.Marshal(tradeGetParams{TID: tid})
		if plainID(tid) && `{"tid":"`+tid+`"}` != string(want) {
			t.Errorf("%q: plain body differs from %s", tid, want)
		}
	}
}

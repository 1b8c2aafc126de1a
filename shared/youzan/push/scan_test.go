package push

import (
	"bytes"
	"strings"
	"testing"
)

// sameAsRef fails t when parse and the reference parser disagree on body:
// every field, the signed text and sign, and the error text.
func sameAsRef(t *testing.T, body []byte) {
	t.Helper()
	p, s, err := parse(body)
	rp, rs, rerr := refParse(body)
	if (err == nil) != (rerr == nil) || (err != nil && err.Error() != rerr.Error()) {
		t.Fatalf("%q: err %v, reference %v", body, err, rerr)
	}
	if !equalPush(p, rp) || p.MsgTID != rp.MsgTID || p.MsgStatus != rp.MsgStatus || p.ID != rp.ID ||
		p.msgSum != rp.msgSum || string(s.rawMsg) != rs.rawMsg || s.sign != rs.sign || (p.Msg == nil) != (rp.Msg == nil) {
		t.Fatalf("%q:\n got %+v %+v\nwant %+v %+v", body, p, s, rp, rs)
	}
}

// FuzzParseSameAsReference holds the one-pass parser to the encoding/json
// one it replaced, on the push seeds and on the cases below.
func FuzzParseSameAsReference(f *testing.F) {
	addSeeds(f, func(b []byte) { f.Add(b) })
	for _, c := range scanCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameAsRef(t, body) })
}

// scanCases are the shapes where a hand-written reader could part from
// encoding/json: key case and escapes, repeats, nesting, numbers, strings.
var scanCases = []string{
	`{"type":"t","msg":"%7B%22TID%22:%22E1%22,%22Status%22:%22PAID%22%7D"}`, // msg keys match in any case
	`{"type":"t","msg":"%7B%22tid%22:%22E1%22,%22tid%22:%22E2%22%7D"}`,      // last one counts
	`{"type":"t","msg":"%7B%22tid%22:%22E1%22,%22TID%22:null%7D"}`,          // null counts as a value
	`{"type":"t","msg":"%7B%22t\u0069d%22:%22E1%22%7D"}`,                    // (escape in the JSON string, not in msg)
	`{"type":"t","msg":"{\"t\\u0069d\":\"E1\"}"}`,                           // escaped msg key
	`{"type":"t","msg":"{\"ſtatus\":\"PAID\",\"tid\":\"E1\"}"}`,             // long s folds to s in encoding/json
	`{"type":"t","msg":"{\"\u212aey\":1,\"tid\":\"E1\"}"}`,                  // Kelvin sign
	`{"type":"t","msg":{"qr_info":{"qr_id":5},"qr_info":null}}`,             // null leaves the struct as it was
	`{"type":"t","msg":{"qr_info":{"qr_id":5},"qr_info":{}}}`,               // an object merges into it
	`{"type":"t","msg":{"qr_info":{"qr_id":5},"qr_info":[1]}}`,              // another type is ignored
	`{"type":"t","msg":{"trade":{"qr_id":"7","tid":12},"full_order_info":{"qrcode_info":{"qrcode_id":9},"order_info":{"tid":"E3","status":"X"}}}}`,
	`{"type":"t","type":"u"}`,                         // top level: last one counts
	`{"type":"t","Type":"u"}`,                         // top level keys are exact
	`{"typ\u0065":"t"}`,                               // escaped top-level key
	`{"type":"t","kdt_id":-0,"version":1e3}`,          //
	`{"type":"t","kdt_id":01}`,                        //
	`{"type":"t","version":-}`,                        //
	`{"type":"t","version":1.}`,                       //
	`{"type":"t","version":.5}`,                       //
	`{"type":"t","version":1e+}`,                      //
	"{\"type\":\"t\",\"id\":\"a\xffb\"}",              // invalid UTF-8 becomes U+FFFD
	"{\"type\":\"t\",\"id\":\"a\tb\"}",                // control byte in a string
	`{"type":"t","id":"\ud800"}`,                      //
	`{"type":"t","id":"\x"}`,                          //
	`{"type":"t","x":[1,2,]}`,                         //
	`{"type":"t","x":{"a":1,}}`,                       //
	`{"type":"t",}`,                                   //
	`{"type":"t"}` + "\u00a0",                         // no-break space is not JSON white space
	" \r\n\t{\"type\":\"t\"} \n",                      //
	`{"type":"t","x":tru}`,                            //
	`{"type":"t","x":nulls}`,                          //
	`{"type":"t","msg":" %7B%22tid%22:%22E1%22%7D "}`, //
	`{"type":"t","msg":"[1,2]"}`,                      //
	`{"type":"t","msg":"+%7B%7D"}`,                    //
	`{"type":"TRADE_ORDER_STATE","msg":"%7B%22status%22:%22WAIT_BUYER_PAY%22%7D"}`, //
	`{"test":true,"sign":"","type":""}`,                                            //
	`{"type":"t","sendCount":"  7 "}`,                                              //
	`{"type":"t","kdt_id":"\u0031"}`,                                               //
}

func TestParseSameAsReference(t *testing.T) {
	for _, c := range scanCases {
		sameAsRef(t, []byte(c))
	}
	deep := `{"type":"t","x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`
	sameAsRef(t, []byte(deep))
	ok := `{"type":"t","x":` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `}`
	sameAsRef(t, []byte(ok))
	// A msg key in another case is read as encoding/json reads it.
	p, err := Parse([]byte(scanCases[0]))
	if err != nil || p.MsgTID != "E1" || p.MsgStatus != "PAID" {
		t.Errorf("folded msg keys: %+v, %v", p, err)
	}
}

// TestScannerTakesTheFastPath guards the speed-up itself: the shapes Youzan
// sends are read by the scanner, not handed back to encoding/json.
func TestScannerTakesTheFastPath(t *testing.T) {
	files := []string{"trade_TradePaid_2018_qr_info.json", "trade_TradeSuccess_2021.json", "trade_order_state_2017.json",
		"trade_v1_qr_id_large.json", "youzan_trade_RefundSuccess_object_msg.json"}
	for _, name := range files {
		body := readFile(t, name)
		var f bodyFields
		if !f.scan(body) {
			t.Errorf("%s: body not read by the scanner", name)
			continue
		}
		_, msg, err := decodeMsg(f.msg)
		if err != nil {
			t.Fatal(err)
		}
		var m msgFields
		if !m.scan(bytes.TrimSpace(msg)) {
			t.Errorf("%s: msg not read by the scanner", name)
		}
	}
}

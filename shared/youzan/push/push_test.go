package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The illustrative credentials of docs/youzan.md#push-signatures; every signed file
// in testdata is signed with them.
const (
	cid    = "example_client_id"
	secret = "example_client_secret"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocVectors(t *testing.T) {
	const legacyMsg = `%7B%22update_time%22:%222017-08-07%2018:19:05%22,%22payment%22:%2211.00%22,%22tid%22:%22E20170807181905034500002%22,%22status%22:%22TRADE_CLOSED%22%7D`
	if got, want := BodySign(cid, legacyMsg, secret), "096957270b4a1021e0f512473a305c12"; got != want {
		t.Errorf("BodySign = %s, want %s", got, want)
	}
	body := []byte(`{"type":"trade_TradeSuccess","msg":"%7B%22tid%22%3A%22E1%22%7D"}`)
	if got, want := EventSign(cid, body, secret), "8de61b619d9ea01efb27daa970bcf97c"; got != want {
		t.Errorf("EventSign = %s, want %s", got, want)
	}
	if !bytes.Equal(readFile(t, "header_vector.json"), body) {
		t.Error("testdata/header_vector.json differs from the documented bytes (trailing newline?)")
	}
}

type want struct {
	header    bool // signed with Event-Sign only
	typ       string
	tid       string
	status    string
	msgID     string
	version   int64
	kdtID     int64
	sendCount int
	test      bool
	qrID      int64
	msgHas    []string // substrings of the decoded msg
	noMsg     bool
}

var shapes = map[string]want{
	"trade_order_state_2017.json": {
		typ: "TRADE_ORDER_STATE", tid: "E20170807181905034500002", status: "TRADE_CLOSED",
		version: 1502101145, kdtID: 1,
		msgHas: []string{`"update_time":"2017-08-07 18:19:05"`, `"payment":"11.00"`},
	},
	"trade_order_state_2018.json": {
		typ: "TRADE_ORDER_STATE", tid: "E20180201105656001353613", status: "TRADE_SUCCESS",
		version: 1517453874, kdtID: 19125401,
		msgHas: []string{`"pay_type":"微信支付"`, `"extra_info":"{\"is_from_cart\":\"false\"}"`, `"book_id":201802011056560013`},
	},
	"trade_TradePaid_2018_qr_info.json": {
		typ: "trade_TradePaid", tid: "E20180720140005023400029", status: "PAID",
		msgID: "6f4b2b8e-3c1a-4a57-9a7e-0d3f5b1e2c10", version: 1532066416, kdtID: 40383417, qrID: 8286057,
		msgHas: []string{`"qr_name":"测试生成收款二维码"`, `"buyer_id":9007199254740993`, `"oid":1459735837813186560`},
	},
	"trade_TradeSuccess_2021.json": {
		typ: "trade_TradeSuccess", tid: "E20210307180549044200012", status: "TRADE_SUCCESS",
		msgID: "b1e5b1d6-8f0e-4f7e-9d0b-5e6f1a2b3c4d", version: 1615111582, kdtID: 43886321, sendCount: 1,
		msgHas: []string{`"update_time":"2021-03-07 18:06:22"`},
	},
	"trade_TradePartlySellerShip_no_status.json": {
		typ: "trade_TradePartlySellerShip", tid: "E20210308101010044200013", status: "",
		msgID: "c2f6c2e7-9a1f-4a8f-8e1c-6f7a2b3c4d5e", version: 1615170030, kdtID: 43886321, sendCount: 1,
		msgHas: []string{`"express_no":"SF1234567890"`},
	},
	"trade_v1_qr_id_large.json": {
		typ: "TRADE", tid: "E20180115120000001353614", status: "TRADE_BUYER_SIGNED",
		version: 1516000000, kdtID: 19125401, qrID: 9007199254740993,
		msgHas: []string{`"fans_id":9223372036854775807`},
	},
	"trade_TradePaid_qrcode_info.json": {
		typ: "trade_TradePaid", tid: "E20220101120000044200014", status: "TRADE_PAID",
		msgID: "d3a7d3f8-0b2a-4b9a-9f2d-7a8b3c4d5e6f", version: 1641009600123, kdtID: 43886321, sendCount: 1,
		qrID: 123456789012,
	},
	"youzan_trade_RefundSuccess_object_msg.json": {
		header: true, typ: "youzan_trade_RefundSuccess", tid: "201801011200000001", status: "SUCCESS",
		msgID: "e4b8e4a9-1c3b-4cab-a03e-8b9c4d5e6f70", version: 1641011400, kdtID: 43886321, sendCount: 1,
		msgHas: []string{`"refund_fee":"0.01"`},
	},
	"msg_absent.json": {
		typ: "trade_TradeClose", tid: "E20220101120000044200015", status: "TRADE_CLOSED",
		msgID: "f5c9f5ba-2d4c-4dbc-b14f-9cad5e6f7081", version: 1641011500, kdtID: 43886321, sendCount: 1,
		noMsg: true,
	},
	"test_unsigned.json": {typ: "TRADE_ORDER_STATE", test: true, noMsg: true},
	"header_vector.json": {header: true, typ: "trade_TradeSuccess", tid: "E1", msgHas: []string{`{"tid":"E1"}`}},
}

func TestShapes(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, path := range files {
		name := filepath.Base(path)
		w, ok := shapes[name]
		if !ok {
			t.Errorf("%s has no expectations in shapes", name)
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			body := readFile(t, name)
			h := http.Header{}
			if w.header {
				h.Set("Event-Sign", EventSign(cid, body, secret))
			}
			p, err := Verify(body, h, cid, secret)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if parsed, err := Parse(body); err != nil || !equalPush(parsed, p) {
				t.Errorf("Parse = %+v, %v; Verify gave %+v", parsed, err, p)
			}
			check := func(field string, got, want any) {
				if got != want {
					t.Errorf("%s = %v, want %v", field, got, want)
				}
			}
			check("Type", p.Type, w.typ)
			check("TID", p.TID, w.tid)
			check("Status", p.Status, w.status)
			check("MsgID", p.MsgID, w.msgID)
			check("Version", p.Version, w.version)
			check("KdtID", p.KdtID, w.kdtID)
			check("SendCount", p.SendCount, w.sendCount)
			check("Test", p.Test, w.test)
			check("QRID", p.QRID, w.qrID)
			if w.noMsg != (p.Msg == nil) {
				t.Errorf("Msg = %s, want absent: %v", p.Msg, w.noMsg)
			}
			if p.Msg != nil && !json.Valid(p.Msg) {
				t.Errorf("Msg is not JSON: %s", p.Msg)
			}
			for _, s := range w.msgHas {
				if !strings.Contains(string(p.Msg), s) {
					t.Errorf("Msg lacks %s:\n%s", s, p.Msg)
				}
			}
			if len(p.Msg) > 0 && !strings.HasPrefix(p.DedupID(), "msg:") {
				t.Errorf("DedupID = %q, want one derived from the signed msg", p.DedupID())
			}
			if !w.header && !w.test {
				// The same body with a correct header verifies too, and a
				// wrong header is not rescued by the correct body sign.
				h.Set("Event-Sign", EventSign(cid, body, secret))
				if _, err := Verify(body, h, cid, secret); err != nil {
					t.Errorf("with Event-Sign: %v", err)
				}
				h.Set("Event-Sign", EventSign(cid, body, "wrong"))
				if _, err := Verify(body, h, cid, secret); !errors.Is(err, ErrBadSignature) {
					t.Errorf("wrong Event-Sign with right body sign: err = %v, want ErrBadSignature", err)
				}
			}
			if _, err := Verify(body, nil, cid, "other_secret"); w.test == (err != nil) {
				t.Errorf("other secret: err = %v", err)
			}
		})
	}
	if seen != len(shapes) {
		t.Errorf("%d shapes expected, %d files found", len(shapes), seen)
	}
}

func equalPush(a, b Push) bool {
	return a.Type == b.Type && a.TID == b.TID && a.Status == b.Status && a.MsgID == b.MsgID &&
		a.Version == b.Version && a.KdtID == b.KdtID && a.ClientID == b.ClientID &&
		a.SendCount == b.SendCount && a.Test == b.Test && a.QRID == b.QRID && bytes.Equal(a.Msg, b.Msg)
}

// TestDedupIDComesFromSignedContentOnly: a captured body-signed push with
// its unsigned fields changed keeps its dedup id, so JetStream stores it
// once; another msg gets another id. Without a msg the id falls back to
// msg_id, then type:kdt_id:id:version.
func TestDedupIDComesFromSignedContentOnly(t *testing.T) {
	body := readFile(t, "trade_TradeSuccess_2021.json")
	orig, err := Verify(body, nil, cid, secret)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	for field, v := range map[string]any{"msg_id": "other", "id": "E20210307180549044200099", "type": "trade_TradeClose",
		"status": "TRADE_CLOSED", "version": 1, "kdt_id": 7, "sendCount": 3} {
		g := maps.Clone(f)
		g[field] = v
		variant, _ := json.Marshal(g)
		p, err := Verify(variant, nil, cid, secret)
		if err != nil {
			t.Fatalf("%s changed: %v", field, err)
		}
		if p.DedupID() != orig.DedupID() {
			t.Errorf("changing unsigned %s changed DedupID %q → %q", field, orig.DedupID(), p.DedupID())
		}
	}
	// Event-Signed, the same msg: same id, so dropping the header gains nothing.
	h := http.Header{"Event-Sign": {EventSign(cid, body, secret)}}
	if p, err := Verify(body, h, cid, secret); err != nil || p.DedupID() != orig.DedupID() || p.Auth != AuthEventSign {
		t.Errorf("Event-Signed: %q auth %v, %v; want %q", p.DedupID(), p.Auth, err, orig.DedupID())
	}
	if orig.Auth != AuthBodySign {
		t.Errorf("Auth = %v, want AuthBodySign", orig.Auth)
	}
	other, err := Verify(readFile(t, "trade_order_state_2017.json"), nil, cid, secret)
	if err != nil || other.DedupID() == orig.DedupID() {
		t.Errorf("another msg: %q, %v", other.DedupID(), err)
	}
	noMsg, err := Parse([]byte(`{"type":"trade_TradeClose","id":"E1","kdt_id":5,"version":9}`))
	if err != nil || noMsg.DedupID() != "trade_TradeClose:5:E1:9" {
		t.Errorf("no msg, no msg_id: %q, %v", noMsg.DedupID(), err)
	}
	noMsg.MsgID = "m-1"
	if noMsg.DedupID() != "m-1" {
		t.Errorf("no msg: %q, want msg_id", noMsg.DedupID())
	}
}

func TestMsgTIDAndStatusFromEveryLayout(t *testing.T) {
	for file, want := range map[string][2]string{
		"trade_TradeSuccess_2021.json":               {"E20210307180549044200012", ""},
		"trade_order_state_2017.json":                {"E20170807181905034500002", "TRADE_CLOSED"},
		"trade_TradePaid_2018_qr_info.json":          {"E20180720140005023400029", "TRADE_SUCCESS"},
		"trade_TradePaid_qrcode_info.json":           {"E20220101120000044200014", "TRADE_PAID"},
		"trade_v1_qr_id_large.json":                  {"E20180115120000001353614", "TRADE_BUYER_SIGNED"},
		"youzan_trade_RefundSuccess_object_msg.json": {"E20220101120000044200014", ""},
	} {
		p, err := Parse(readFile(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if p.MsgTID != want[0] || p.MsgStatus != want[1] {
			t.Errorf("%s: MsgTID %q MsgStatus %q, want %q", file, p.MsgTID, p.MsgStatus, want)
		}
		if !ValidTID(p.MsgTID) {
			t.Errorf("%s: real tid %q fails ValidTID", file, p.MsgTID)
		}
	}
}

func TestValidTID(t *testing.T) {
	for _, s := range []string{"E20170807181905034500002", "E20180201105656001353613", "E20190625165051022300003"} {
		if !ValidTID(s) {
			t.Errorf("ValidTID(%q) = false for a real tid", s)
		}
	}
	for _, s := range []string{"", "E1", "E2024001", "e20170807181905034500002", "E2017080718190503450000", "E201708071819050345000021",
		"E2017080718190503450000a", "E20170807181905034500002\n", "E２0170807181905034500002", "X20170807181905034500002"} {
		if ValidTID(s) {
			t.Errorf("ValidTID(%q) = true", s)
		}
	}
}

func TestBodySignCoversMsgAfterJSONUnescaping(t *testing.T) {
	body := readFile(t, "trade_order_state_2017.json")
	// The same msg string written with JSON escapes: the signature is over the
	// string value, not its JSON spelling.
	alt := bytes.Replace(body, []byte(`:%222017`), []byte(`\u003a%222017`), 1)
	alt = bytes.Replace(alt, []byte(`%7B%22update_time`), []byte(`\u00257B%22update_time`), 1)
	if bytes.Equal(alt, body) {
		t.Fatal("replacement did not apply")
	}
	p, err := Verify(alt, nil, cid, secret)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.TID != "E20170807181905034500002" {
		t.Errorf("TID = %q", p.TID)
	}
}

func TestTamperedMsgIsRejected(t *testing.T) {
	body := readFile(t, "trade_TradePaid_2018_qr_info.json")
	alt := bytes.Replace(body, []byte("8286057"), []byte("8286058"), 1)
	if _, err := Verify(alt, nil, cid, secret); !errors.Is(err, ErrBadSignature) {
		t.Errorf("err = %v, want ErrBadSignature", err)
	}
	// Fields outside msg are not covered by the legacy sign, but are by Event-Sign.
	h := http.Header{"Event-Sign": {EventSign(cid, body, secret)}}
	alt = bytes.Replace(body, []byte(`"status":"PAID"`), []byte(`"status":"XXXX"`), 1)
	if _, err := Verify(alt, h, cid, secret); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Event-Sign over changed body: err = %v, want ErrBadSignature", err)
	}
}

func TestUpperCaseSignatureAccepted(t *testing.T) {
	body := readFile(t, "header_vector.json")
	h := http.Header{"Event-Sign": {strings.ToUpper(EventSign(cid, body, secret))}}
	if _, err := Verify(body, h, cid, secret); err != nil {
		t.Error(err)
	}
}

func TestTestMessages(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		hdr  string
		err  error
	}{
		"test, no sign field":       {`{"test":true,"type":"x"}`, "", nil},
		"test, empty sign, no type": {`{"test":true,"sign":""}`, "", nil},
		"test, wrong body sign":     {`{"test":true,"type":"x","msg":"","sign":"00000000000000000000000000000000"}`, "", ErrBadSignature},
		"test, wrong header":        {`{"test":true,"type":"x"}`, "00000000000000000000000000000000", ErrBadSignature},
		"not test, no sign":         {`{"test":false,"type":"x","msg":"%7B%7D"}`, "", ErrBadSignature},
		"no test, no sign":          {`{"type":"x","msg":"%7B%7D"}`, "", ErrBadSignature},
	} {
		h := http.Header{}
		if tc.hdr != "" {
			h.Set("Event-Sign", tc.hdr)
		}
		p, err := Verify([]byte(tc.body), h, cid, secret)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.err)
		}
		if err == nil && !p.Test {
			t.Errorf("%s: accepted without Test set", name)
		}
	}
}

func TestLegacyStatusFallsBackToMsg(t *testing.T) {
	msg := `%7B%22tid%22:%22E1%22,%22status%22:%22WAIT_BUYER_PAY%22%7D`
	for _, top := range []string{``, `"status":null,`, `"status":"",`} {
		body := `{"type":"TRADE_ORDER_STATE",` + top + `"msg":"` + msg + `","sign":"` + BodySign(cid, msg, secret) + `"}`
		p, err := Verify([]byte(body), nil, cid, secret)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != "WAIT_BUYER_PAY" || p.TID != "E1" {
			t.Errorf("%s: Status %q TID %q", top, p.Status, p.TID)
		}
	}
	// Only the legacy type: for trade_* an absent status stays absent.
	p, err := Parse([]byte(`{"type":"trade_TradeSellerShip","msg":"` + msg + `"}`))
	if err != nil || p.Status != "" {
		t.Errorf("trade_* status = %q, %v", p.Status, err)
	}
}

func TestNumbersAndStrings(t *testing.T) {
	p, err := Parse([]byte(`{"type":"t","kdt_id":"9007199254740993","version":9007199254740995,` +
		`"sendCount":"3","id":12345678901234567890,"msg":"%7B%22qr_info%22:%7B%22qr_id%22:%22  %22%7D,%22trade%22:%7B%22qr_id%22:%2277%22%7D%7D"}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.KdtID != 9007199254740993 || p.Version != 9007199254740995 || p.SendCount != 3 {
		t.Errorf("numbers lost digits: %+v", p)
	}
	if p.TID != "12345678901234567890" {
		t.Errorf("numeric id = %q", p.TID)
	}
	if p.QRID != 77 {
		t.Errorf("QRID = %d, want the first usable location (trade.qr_id)", p.QRID)
	}
}

func TestUnencodedMsgKeepsPlus(t *testing.T) {
	p, err := Parse([]byte(`{"type":"t","msg":"{\"note\":\"a+b\",\"qr_info\":{\"qr_id\":5}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(p.Msg), `"a+b"`) || p.QRID != 5 {
		t.Errorf("Msg = %s, QRID %d", p.Msg, p.QRID)
	}
}

func TestMalformed(t *testing.T) {
	for _, body := range []string{
		``, `   `, `null`, `[]`, `"x"`, `{`, `{"type":"t"} trailing`, `not json`,
		`{"msg":"%7B%7D"}`,                            // no type
		`{"type":"a.b","msg":""}`,                     // type unusable as a subject token
		`{"type":"t","msg":"%zz"}`,                    // bad escape
		`{"type":"t","msg":"%7Bnot json"}`,            // decodes to non-JSON
		`{"type":"t","msg":12}`,                       // msg of the wrong type
		`{"type":"t","msg":[1]}`,                      //
		`{"type":"t","kdt_id":"abc"}`,                 // non-numeric id
		`{"type":"t","kdt_id":1.5}`,                   //
		`{"type":"t","version":99999999999999999999}`, // overflows int64
		`{"type":"t","test":"yes"}`,                   //
		`{"type":{}}`,                                 //
		`{"type":"t","sendCount":-1}`,                 //
	} {
		_, err := Parse([]byte(body))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) err = %v, want ErrMalformed", body, err)
		}
		// Without a header the signature cannot even be looked for.
		if _, err := Verify([]byte(body), nil, cid, secret); err == nil {
			t.Errorf("Verify(%q) succeeded", body)
		}
	}
}

func TestEmptyEventSignHeaderMeansAbsent(t *testing.T) {
	body := readFile(t, "trade_order_state_2017.json")
	h := http.Header{"Event-Sign": {""}}
	if _, err := Verify(body, h, cid, secret); err != nil {
		t.Errorf("empty Event-Sign: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	body := readFile(b, "trade_TradePaid_2018_qr_info.json")
	h := http.Header{"Event-Sign": {EventSign(cid, body, secret)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(body, h, cid, secret); err != nil {
			b.Fatal(err)
		}
	}
}

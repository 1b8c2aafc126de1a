package merchant

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

type vector struct {
	Time    string `json:"time"`
	TradeNo string `json:"tradeNo"`
	OrderID string `json:"orderId"`
	Payment int64  `json:"payment"`
	Status  string `json:"status"`
	Secret  string `json:"secret"`
	Sign    string `json:"sign"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

func (v vector) fields() Fields {
	return Fields{Time: v.Time, TradeNo: v.TradeNo, OrderID: v.OrderID, Payment: v.Payment, Status: v.Status}
}

func TestSignGolden(t *testing.T) {
	for _, v := range loadVectors(t) {
		if got := Sign(v.fields(), v.Secret); got != v.Sign {
			t.Errorf("Sign = %s, want %s", got, v.Sign)
		}
		if !Verify(v.fields(), v.Secret, v.Sign) {
			t.Error("Verify rejected the documented vector")
		}
		if !Verify(v.fields(), v.Secret, strings.ToUpper(v.Sign)) {
			t.Error("Verify rejected upper-case hex")
		}
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	v := loadVectors(t)[0]
	f := v.fields()
	cases := map[string]func(*Fields){
		"time":    func(f *Fields) { f.Time = "1517457475" },
		"tradeNo": func(f *Fields) { f.TradeNo += "0" },
		"orderId": func(f *Fields) { f.OrderID = "1" },
		"payment": func(f *Fields) { f.Payment = 1000 },
		"status":  func(f *Fields) { f.Status = "TRADE_CLOSED" },
	}
	for name, mut := range cases {
		g := f
		mut(&g)
		if Verify(g, v.Secret, v.Sign) {
			t.Errorf("changed %s still verifies", name)
		}
	}
	if Verify(f, "other_secret", v.Sign) {
		t.Error("wrong secret verifies")
	}
	for _, bad := range []string{"", "eb07", v.Sign + "0"} {
		if Verify(f, v.Secret, bad) {
			t.Errorf("sign %q verifies", bad)
		}
	}
}

func TestUUIDIsNotSigned(t *testing.T) {
	v := loadVectors(t)[0]
	a := New(v.fields(), "buyer-1", v.Secret)
	b := New(v.fields(), "", v.Secret)
	if a.Sign != b.Sign || a.Sign != v.Sign {
		t.Fatalf("signatures differ with uuid: %s %s", a.Sign, b.Sign)
	}
}

func TestFormMatchesOriginalService(t *testing.T) {
	v := loadVectors(t)[0]
	p := New(v.fields(), "12345", v.Secret)
	f := p.Form()
	want := map[string]string{
		"tradeNo": v.TradeNo, "orderId": v.OrderID, "payment": "10", "status": v.Status,
		"uuid": "12345", "time": v.Time, "sign": v.Sign,
	}
	if len(f) != len(want) {
		t.Errorf("form has %d fields, want %d: %v", len(f), len(want), f)
	}
	for k, w := range want {
		if got := f.Get(k); got != w {
			t.Errorf("form %s = %q, want %q", k, got, w)
		}
	}
}

func TestJSONShape(t *testing.T) {
	v := loadVectors(t)[0]
	p := New(v.fields(), "12345", v.Secret)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(p.JSON()))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if n, ok := m["payment"].(json.Number); !ok || n.String() != "10" {
		t.Errorf("payment = %#v, want JSON number 10", m["payment"])
	}
	if s, ok := m["time"].(string); !ok || s != v.Time {
		t.Errorf("time = %#v, want string %q", m["time"], v.Time)
	}
	for _, k := range []string{"tradeNo", "orderId", "status", "uuid", "sign"} {
		if _, ok := m[k].(string); !ok {
			t.Errorf("%s missing or not a string: %#v", k, m[k])
		}
	}
}

func TestFromRequestRoundTrip(t *testing.T) {
	v := loadVectors(t)[0]
	p := New(v.fields(), "12345", v.Secret)
	reqs := map[string]*http.Request{
		"form": httptest.NewRequest("POST", "/", strings.NewReader(p.Form().Encode())),
		"json": httptest.NewRequest("POST", "/", bytes.NewReader(p.JSON())),
	}
	reqs["form"].Header.Set("Content-Type", "application/x-www-form-urlencoded")
	reqs["json"].Header.Set("Content-Type", "application/json; charset=utf-8")
	for name, r := range reqs {
		got, err := FromRequest(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != p {
			t.Errorf("%s: got %+v, want %+v", name, got, p)
		}
		if !got.Verify(v.Secret) {
			t.Errorf("%s: round-tripped push does not verify", name)
		}
	}
}

func TestFromRequestJSONNumberTime(t *testing.T) {
	v := loadVectors(t)[0]
	body := `{"tradeNo":"` + v.TradeNo + `","orderId":"` + v.OrderID + `","payment":"10","status":"` +
		v.Status + `","uuid":"","time":` + v.Time + `,"sign":"` + v.Sign + `"}`
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	p, err := FromRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Verify(v.Secret) {
		t.Errorf("push with numeric time and string payment does not verify: %+v", p)
	}
}

func TestFromRequestRejectsGarbage(t *testing.T) {
	for name, tc := range map[string]struct{ ct, body string }{
		"form payment":  {"application/x-www-form-urlencoded", "payment=1.5&sign=x"},
		"form missing":  {"", "tradeNo=x"},
		"json broken":   {"application/json", "{"},
		"json payment":  {"application/json", `{"payment":1.5}`},
		"json too big":  {"application/json", `{"tradeNo":"` + strings.Repeat("a", MaxBodyBytes) + `"}`},
		"form bad escs": {"application/x-www-form-urlencoded", "payment=%zz"},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		if _, err := FromRequest(r); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// AppendForm must send the bytes Form().Encode() would: merchants verify
// the values they parse, and some compare the raw body.
func TestAppendFormIsFormEncode(t *testing.T) {
	pushes := []Push{
		{TradeNo: "E123-456", OrderID: "order-1", Payment: 1999, Status: "TRADE_SUCCESS", UUID: "u", Time: "1700000000", Sign: "0123456789abcdef0123456789abcdef"},
		{TradeNo: "a b+c", OrderID: "订单/1?x=y&z", Payment: -5, Status: "", UUID: "", Time: "", Sign: ""},
		{TradeNo: "~._-", OrderID: "%41#é\x00\xff", Payment: 0, Status: "S T", UUID: "a=b;c,d:e@f$", Time: "1.5", Sign: "ABC"},
	}
	for _, v := range loadVectors(t) {
		pushes = append(pushes, New(v.fields(), "uuid-"+v.OrderID, v.Secret))
	}
	for _, p := range pushes {
		if got, want := string(p.AppendForm([]byte("prefix"))), "prefix"+p.Form().Encode(); got != want {
			t.Errorf("AppendForm = %q, want %q", got, want)
		}
	}
}

func BenchmarkNewForm(b *testing.B) {
	f := Fields{Time: "1764504000", TradeNo: "E20261130123456789012-123456789", OrderID: "order-000123", Payment: 1999, Status: "TRADE_SUCCESS"}
	b.Run("Form.Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = New(f, "buyer-42", "s3cret").Form().Encode()
		}
	})
	b.Run("AppendForm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = New(f, "buyer-42", "s3cret").AppendForm(make([]byte, 0, 256))
		}
	})
}

package gateway_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/natsjs"
)

const youzanSuccess = `{"code":0,"msg":"success"}`

func TestSignedPushIsStoredOnTheWebhookSubjectBeforeSuccess(t *testing.T) {
	e := newEnv(t)
	body, _ := pushBody("trade_TradePaid", "E20240101120000000000001", "TRADE_PAID", "msg-1")
	r := e.push(body, http.Header{"Event-Sign": {eventSign(body, clientSecret)}})
	if r.Status != http.StatusOK || string(r.Body) != youzanSuccess {
		t.Fatalf("got %d %s, want 200 %s", r.Status, r.Body, youzanSuccess)
	}
	got := e.receipts()
	if len(got) != 1 {
		t.Fatalf("%d receipts stored, want 1", len(got))
	}
	m := got[0]
	if m.Subject != natsjs.WebhookSubject("trade_TradePaid") {
		t.Errorf("subject %q", m.Subject)
	}
	if !strings.HasPrefix(msgID(m), "msg:") {
		t.Errorf("Nats-Msg-Id %q, want one derived from the signed msg", msgID(m))
	}
	if !bytes.Equal(m.Data, body) {
		t.Errorf("stored body differs from the verified one:\n%s\n%s", m.Data, body)
	}
	if m.Header.Get(natsjs.HeaderTID) != "E20240101120000000000001" || m.Header.Get(natsjs.HeaderStatus) != "TRADE_PAID" {
		t.Errorf("headers %v", m.Header)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.Header.Get(natsjs.HeaderReceivedAt)); err != nil {
		t.Errorf("received-at header: %v", err)
	}
}

func TestRepeatedPushIsAcknowledgedAndStoredOnce(t *testing.T) {
	e := newEnv(t)
	body, _ := pushBody("trade_TradePaid", "E20240101120000000000001", "TRADE_PAID", "msg-1")
	for i := range 3 {
		r := e.push(body, http.Header{"Event-Sign": {eventSign(body, clientSecret)}})
		if r.Status != http.StatusOK || string(r.Body) != youzanSuccess {
			t.Fatalf("push %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if n := len(e.receipts()); n != 1 {
		t.Errorf("Youzan's re-pushes stored %d receipts, want 1", n)
	}
}

func TestPushWithLegacyBodySignIsAccepted(t *testing.T) {
	e := newEnv(t)
	body, rawMsg := pushBody("trade_TradeSuccess", "E20240101120000000000002", "TRADE_SUCCESS", "msg-2")
	body = withSign(body, bodySign(rawMsg))
	r := e.push(body, nil)
	if r.Status != http.StatusOK || string(r.Body) != youzanSuccess {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	if got := e.receipts(); len(got) != 1 || got[0].Subject != natsjs.WebhookSubject("trade_TradeSuccess") {
		t.Errorf("receipts %v", got)
	}
}

// bodySign is the legacy body "sign": md5(client_id + msg as sent + secret).
func bodySign(rawMsg string) string {
	sum := md5.Sum([]byte(clientID + rawMsg + clientSecret))
	return hex.EncodeToString(sum[:])
}

func withSign(body []byte, sign string) []byte {
	var f map[string]any
	_ = json.Unmarshal(body, &f)
	f["sign"] = sign
	b, _ := json.Marshal(f)
	return b
}

func TestPushWithABadSignatureIsRefusedAndNotStored(t *testing.T) {
	e := newEnv(t)
	body, rawMsg := pushBody("trade_TradePaid", "E20240101120000000000001", "TRADE_PAID", "msg-1")
	signed := withSign(body, bodySign(rawMsg))
	cases := map[string]struct {
		body   []byte
		header http.Header
	}{
		"Event-Sign with another secret": {body, http.Header{"Event-Sign": {eventSign(body, "guessed")}}},
		"Event-Sign of another body":     {body, http.Header{"Event-Sign": {eventSign([]byte(`{}`), clientSecret)}}},
		// A good body sign must not rescue a bad Event-Sign.
		"bad Event-Sign, valid body sign": {signed, http.Header{"Event-Sign": {"00"}}},
		"wrong body sign":                 {withSign(body, "0123456789abcdef0123456789abcdef"), nil},
		"no signature at all":             {body, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.push(c.body, c.header)
			if r.Status != http.StatusUnauthorized || r.errorCode() != "bad_signature" {
				t.Errorf("got %d %s, want 401 bad_signature", r.Status, r.errorCode())
			}
		})
	}
	if n := len(e.receipts()); n != 0 {
		t.Errorf("%d forged pushes reached the pipeline", n)
	}
}

func TestPushesThePipelineIgnoresAreAcknowledgedButNotStored(t *testing.T) {
	e := newEnv(t)
	refund, _ := pushBody("trade_TradeRefund", "E20240101120000000000003", "", "msg-3")
	test := []byte(`{"type":"","test":true,"msg":""}`)
	for name, c := range map[string]struct {
		body   []byte
		header http.Header
	}{
		"another message type":        {refund, http.Header{"Event-Sign": {eventSign(refund, clientSecret)}}},
		"Youzan's unsigned test push": {test, nil},
	} {
		r := e.push(c.body, c.header)
		if r.Status != http.StatusOK || string(r.Body) != youzanSuccess {
			t.Errorf("%s: got %d %s", name, r.Status, r.Body)
		}
	}
	if n := len(e.receipts()); n != 0 {
		t.Errorf("%d ignored pushes were stored", n)
	}
	// A trade push without a trade id cannot be processed: Youzan is told.
	noID := []byte(`{"type":"trade_TradePaid","status":"TRADE_PAID","msg_id":"m"}`)
	r := e.push(noID, http.Header{"Event-Sign": {eventSign(noID, clientSecret)}})
	if r.Status != http.StatusBadRequest || r.errorCode() != "malformed_push" {
		t.Errorf("trade push without id: %d %s", r.Status, r.errorCode())
	}
}

func TestPushWhileTheBrokerIsDownIsNotAcknowledged(t *testing.T) {
	e := newEnv(t)
	e.stopBroker()
	body, _ := pushBody("trade_TradePaid", "E20240101120000000000001", "TRADE_PAID", "msg-1")
	start := time.Now()
	r := e.push(body, http.Header{"Event-Sign": {eventSign(body, clientSecret)}})
	if r.Status != http.StatusServiceUnavailable || r.errorCode() != "broker_unavailable" {
		t.Fatalf("got %d %s, want 503 broker_unavailable", r.Status, r.Body)
	}
	if bytes.Contains(r.Body, []byte("success")) {
		t.Errorf("answer %s contains \"success\": Youzan would not re-push", r.Body)
	}
	// Youzan waits 5 s for an answer; a late one counts as a failure anyway.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %s", d)
	}
	// Readiness fails too, so a load balancer stops sending pushes here.
	if rz := e.do(http.MethodGet, "/readyz", nil, nil); rz.Status != http.StatusServiceUnavailable || !bytes.Contains(rz.Body, []byte(`"nats"`)) {
		t.Errorf("/readyz: %d %s", rz.Status, rz.Body)
	}
}

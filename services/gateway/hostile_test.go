package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"testing"

	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/youzan/push"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// TestCapturedPushVariantsAreNeverPublished replays one captured valid push
// — made and signed by the Youzan sandbox, in every signing scheme and both
// push styles — with other ids (a made-up tid and another real trade's tid),
// statuses, types, msg_ids and the other unsigned fields, with and without
// its Event-Sign header. The original is stored once; no variant may store
// anything more (docs/security.md#push-authenticity).
func TestCapturedPushVariantsAreNeverPublished(t *testing.T) {
	tried, accepted, answeredOK := 0, 0, 0
	for _, mode := range []string{sandbox.SignBody, sandbox.SignHeader, sandbox.SignBoth} {
		for _, typ := range []string{sandbox.MsgTradePaid, sandbox.MsgTradeSuccess, sandbox.MsgTradeOrderState} {
			t.Run(mode+"/"+typ, func(t *testing.T) {
				e := newEnv(t)
				sb, err := sandbox.New(sandbox.Config{ClientID: clientID, ClientSecret: clientSecret, KdtID: "42", SignMode: mode})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = sb.Close() })
				ctx := context.Background()
				victim, err := sb.Pay(ctx, sb.CreateQR("coffee", 100), sandbox.PayOptions{NoPush: true})
				if err != nil {
					t.Fatal(err)
				}
				other, err := sb.Pay(ctx, sb.CreateQR("tea", 100), sandbox.PayOptions{NoPush: true})
				if err != nil {
					t.Fatal(err)
				}
				for _, tid := range []string{victim.TID, other.TID} {
					if !push.ValidTID(tid) {
						t.Fatalf("sandbox tid %q is not shaped like a Youzan tid", tid)
					}
				}
				body, hdr, err := sb.BuildPush(victim.TID, typ)
				if err != nil {
					t.Fatal(err)
				}
				if r := e.push(body, hdr.Clone()); r.Status != http.StatusOK {
					t.Fatalf("captured push itself: %d %s", r.Status, r.Body)
				}
				var f map[string]any
				if err := json.Unmarshal(body, &f); err != nil {
					t.Fatal(err)
				}
				var variants []map[string]any
				set := func(kv ...any) {
					g := maps.Clone(f)
					for i := 0; i < len(kv); i += 2 {
						g[kv[i].(string)] = kv[i+1]
					}
					variants = append(variants, g)
				}
				for i := range 20 {
					set("msg_id", fmt.Sprintf("forged-%d", i))
					set("id", fmt.Sprintf("E20240101120000%09d", i), "msg_id", fmt.Sprintf("forged-id-%d", i))
				}
				set("id", other.TID)
				set("id", other.TID, "msg_id", "forged-other")
				set("id", "")
				set("id", nil, "msg_id", "forged-no-id")
				for _, st := range []string{"WAIT_BUYER_PAY", "TRADE_PAID", "PAID", "WAIT_SELLER_SEND_GOODS", "TRADE_SUCCESS", "TRADE_CLOSED", "", "X"} {
					set("status", st)
					set("status", st, "msg_id", "forged-status-"+st)
				}
				for _, ty := range []string{sandbox.MsgTradeCreate, sandbox.MsgTradePaid, sandbox.MsgTradeSuccess, sandbox.MsgTradeClose, sandbox.MsgTradeOrderState, "trade_TradeBuyerPay"} {
					set("type", ty, "msg_id", "forged-type-"+ty)
				}
				set("version", 1, "kdt_id", 7, "sendCount", 4, "msg_id", "forged-misc")
				set("id", other.TID, "status", "TRADE_CLOSED", "type", sandbox.MsgTradeClose, "msg_id", "forged-all")
				n := 0
				for _, v := range variants {
					vb, _ := json.Marshal(v)
					// As sent, with the captured headers, and with Event-Sign
					// dropped (falling back to the body sign, if any).
					for _, h := range []http.Header{hdr.Clone(), {}} {
						n++
						if r := e.push(vb, h); r.Status == http.StatusOK {
							answeredOK++
						}
					}
				}
				// The captured push repeated as is (a replay) is a duplicate.
				n++
				if r := e.push(body, hdr.Clone()); r.Status != http.StatusOK {
					t.Errorf("replayed original: %d %s", r.Status, r.Body)
				}
				got := e.receipts()
				tried += n
				accepted += len(got) - 1
				if len(got) != 1 {
					t.Errorf("%d variants tried, %d receipts stored, want only the original", n, len(got))
				}
				for _, m := range got {
					if tid := m.Header.Get(natsjs.HeaderTID); tid != victim.TID {
						t.Errorf("stored a receipt for %q, want only %q", tid, victim.TID)
					}
				}
			})
		}
	}
	t.Logf("captured-push variants: tried %d, published %d (answered 200 as duplicates: %d)", tried, accepted, answeredOK)
	if accepted != 0 {
		t.Errorf("%d forged variants were published", accepted)
	}
}

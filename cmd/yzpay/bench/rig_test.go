package main

import (
	"testing"

	"github.com/yzpay/yzpay/shared/merchant"
)

// The cheap merchant must accept exactly what the merchant package accepts,
// or the bench's ledger would count forged or good pushes wrongly.
func TestCheckFormAgreesWithMerchantPackage(t *testing.T) {
	f := merchant.Fields{Time: "1795661298", TradeNo: "E2026-8286058", OrderID: "bench-embedded-0-7", Payment: 100, Status: "TRADE_SUCCESS"}
	good := merchant.New(f, "buyer 1", secret)
	if id, st, ok := checkForm([]byte(good.Form().Encode())); !ok || string(id) != f.OrderID || string(st) != f.Status {
		t.Fatalf("good push refused: %q %q %v", id, st, ok)
	}
	bad := good
	bad.Payment = 1
	if _, _, ok := checkForm([]byte(bad.Form().Encode())); ok {
		t.Fatal("push with a changed payment accepted")
	}
	wrong := merchant.New(f, "", "other-secret")
	if _, _, ok := checkForm([]byte(wrong.Form().Encode())); ok {
		t.Fatal("push signed with another secret accepted")
	}
}

package app_test

import "github.com/yzpay/yzpay/shared/youzan/sandbox"

func sandboxPay(buyer string) sandbox.PayOptions {
	return sandbox.PayOptions{PayType: "WEIXIN_DAIXIAO", BuyerID: buyer, NoPush: true}
}

// Package youzan is yzpay's client for the Youzan Cloud gateway
// (open.youzanyun.com): it obtains and caches the shop's access token,
// creates payment QR codes, reads trades and lists QR-code trades, and turns
// every one of Youzan's answer envelopes into either a result or a
// classified *Error that says whether retrying can help.
//
// Amounts are integer fen throughout; Youzan's yuan strings are converted
// with exact decimal arithmetic (YuanToFen). Ids that Youzan sends as numbers
// or numeric strings decode through ID. Errors and logs never contain the
// client secret or the access token.
//
// The protocol it implements is described in docs/youzan.md.
package youzan

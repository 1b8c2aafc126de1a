package youzan

import (
	"encoding/json"

	"github.com/yzpay/yzpay/shared/youzan/internal/jsonscan"
)

// The readers below fill the same structs json.Unmarshal fills, in one pass
// of jsonscan, and only when the result is the one json.Unmarshal would give
// without an error: keys match regardless of case, the last match counts,
// each custom decoder runs on each value in order, a nested object merges
// into its struct, null leaves a struct as it was and clears a pointer.
// Anything else (a value of the wrong type for a struct or a bool, a custom
// decoder's error, a key with escapes or non-ASCII bytes, a syntax the
// scanner refuses) returns false, and the caller decodes with encoding/json,
// which then gives the result or the error. Fuzz tests compare the two.

// tradeGetResult is a trade.get result: the trade and is_success, which the
// envelope check reads from the same object.
type tradeGetResult struct {
	tradeResult
	IsSuccess *bool `json:"is_success"`
}

func (env *envelope) scan(body []byte) bool {
	s := jsonscan.New(body)
	return s.Whole(func(k []byte) bool {
		switch {
		case jsonscan.FoldKey(k, "gw_err_resp"):
			return s.Capture((*[]byte)(&env.GwErr))
		case jsonscan.FoldKey(k, "error_response"):
			return s.Capture((*[]byte)(&env.ErrResp))
		case jsonscan.FoldKey(k, "response"):
			return s.Capture((*[]byte)(&env.Response))
		case jsonscan.FoldKey(k, "data"):
			return s.Capture((*[]byte)(&env.Data))
		case jsonscan.FoldKey(k, "success"):
			return scanBool(&s, &env.Success)
		case jsonscan.FoldKey(k, "code"):
			return scanInto(&s, &env.Code)
		case jsonscan.FoldKey(k, "message"):
			return scanInto(&s, &env.Message)
		case jsonscan.FoldKey(k, "msg"):
			return scanInto(&s, &env.Msg)
		}
		return s.Skip()
	})
}

func (r *tradeGetResult) scan(res []byte) bool {
	s := jsonscan.New(res)
	buyer := func(b *buyerInfo) func([]byte) bool {
		return func(k []byte) bool {
			switch {
			case jsonscan.FoldKey(k, "buyer_id"):
				return scanInto(&s, &b.BuyerID)
			case jsonscan.FoldKey(k, "fans_weixin_openid"):
				return scanInto(&s, &b.FansWeixinOpenID)
			case jsonscan.FoldKey(k, "fans_id"):
				return scanInto(&s, &b.FansID)
			}
			return s.Skip()
		}
	}
	return s.Whole(func(k []byte) bool {
		switch {
		case jsonscan.FoldKey(k, "is_success"):
			return scanBool(&s, &r.IsSuccess)
		case jsonscan.FoldKey(k, "tid"):
			return scanInto(&s, &r.TID)
		case jsonscan.FoldKey(k, "status"):
			return scanInto(&s, &r.Status)
		case jsonscan.FoldKey(k, "payment"):
			return scanInto(&s, &r.Payment)
		case jsonscan.FoldKey(k, "pay_type"):
			return scanInto(&s, &r.PayType)
		case jsonscan.FoldKey(k, "qr_info"):
			return scanStruct(&s, func(k []byte) bool {
				if jsonscan.FoldKey(k, "qr_id") {
					return scanInto(&s, &r.QRInfo.QRID)
				}
				return s.Skip()
			})
		case jsonscan.FoldKey(k, "full_order_info"):
			if !scanPointer(&s, &r.FullOrderInfo) {
				return false
			}
			if r.FullOrderInfo == nil {
				return true
			}
			f := r.FullOrderInfo
			return s.Sub(func(k []byte) bool {
				switch {
				case jsonscan.FoldKey(k, "order_info"):
					o := &f.OrderInfo
					return scanStruct(&s, func(k []byte) bool {
						switch {
						case jsonscan.FoldKey(k, "tid"):
							return scanInto(&s, &o.TID)
						case jsonscan.FoldKey(k, "status"):
							return scanInto(&s, &o.Status)
						case jsonscan.FoldKey(k, "pay_type_str"):
							return scanInto(&s, &o.PayTypeStr)
						case jsonscan.FoldKey(k, "pay_time"):
							return scanInto(&s, &o.PayTime)
						case jsonscan.FoldKey(k, "order_tags"):
							return scanStruct(&s, func(k []byte) bool {
								if jsonscan.FoldKey(k, "is_payed") {
									return scanInto(&s, &o.OrderTags.IsPayed)
								}
								return s.Skip()
							})
						}
						return s.Skip()
					})
				case jsonscan.FoldKey(k, "buyer_info"):
					return scanStruct(&s, buyer(&f.BuyerInfo))
				case jsonscan.FoldKey(k, "pay_info"):
					return scanStruct(&s, func(k []byte) bool {
						if jsonscan.FoldKey(k, "payment") {
							return scanInto(&s, &f.PayInfo.Payment)
						}
						return s.Skip()
					})
				case jsonscan.FoldKey(k, "qrcode_info"):
					return scanStruct(&s, func(k []byte) bool {
						if jsonscan.FoldKey(k, "qrcode_id") {
							return scanInto(&s, &f.QRCodeInfo.QRCodeID)
						}
						return s.Skip()
					})
				}
				return s.Skip()
			})
		case jsonscan.FoldKey(k, "trade"):
			if !scanPointer(&s, &r.Trade) {
				return false
			}
			if r.Trade == nil {
				return true
			}
			tr := r.Trade
			return s.Sub(func(k []byte) bool {
				switch {
				case jsonscan.FoldKey(k, "tid"):
					return scanInto(&s, &tr.TID)
				case jsonscan.FoldKey(k, "status"):
					return scanInto(&s, &tr.Status)
				case jsonscan.FoldKey(k, "qr_id"):
					return scanInto(&s, &tr.QRID)
				case jsonscan.FoldKey(k, "payment"):
					return scanInto(&s, &tr.Payment)
				case jsonscan.FoldKey(k, "pay_type"):
					return scanInto(&s, &tr.PayType)
				case jsonscan.FoldKey(k, "pay_time"):
					return scanInto(&s, &tr.PayTime)
				case jsonscan.FoldKey(k, "fans_info"):
					return scanStruct(&s, buyer(&tr.FansInfo))
				}
				return s.Skip()
			})
		}
		return s.Skip()
	})
}

// scanInto hands the value to its custom decoder, as encoding/json does
// (null included).
func scanInto(s *jsonscan.Scanner, u json.Unmarshaler) bool {
	var raw []byte
	return s.Capture(&raw) && u.UnmarshalJSON(raw) == nil
}

// scanBool is a *bool member: true, false or null (nil).
func scanBool(s *jsonscan.Scanner, dst **bool) bool {
	var raw []byte
	if !s.Capture(&raw) {
		return false
	}
	switch string(raw) {
	case "null":
		*dst = nil
	case "true", "false":
		v := raw[0] == 't'
		*dst = &v
	default:
		return false
	}
	return true
}

// scanStruct is a struct member: an object merges into it, null leaves it.
func scanStruct(s *jsonscan.Scanner, visit func([]byte) bool) bool {
	switch s.Peek() {
	case '{':
		return s.Sub(visit)
	case 'n':
		return s.Skip()
	}
	return false
}

// scanPointer is the first half of a pointer-to-struct member: null clears
// it (and is read), an object allocates it if nil and is left for the
// caller to read into it.
func scanPointer[T any](s *jsonscan.Scanner, p **T) bool {
	switch s.Peek() {
	case 'n':
		*p = nil
		return s.Skip()
	case '{':
		if *p == nil {
			*p = new(T)
		}
		return true
	}
	return false
}

// Package pushsign is the old import path of package merchant, kept so that
// merchants' Go code written against it still builds.
//
// Deprecated: import github.com/yzpay/yzpay/shared/merchant instead.
package pushsign

import "github.com/yzpay/yzpay/shared/merchant"

// The names merchants' code used; each is the merchant package's own.
type (
	Fields = merchant.Fields
	Push   = merchant.Push
)

// MaxBodyBytes bounds a push body FromRequest reads.
const MaxBodyBytes = merchant.MaxBodyBytes

// ErrMalformed is returned by FromRequest for a body it cannot read.
var ErrMalformed = merchant.ErrMalformed

// Sign, Verify, New and FromRequest are merchant's.
var (
	Sign        = merchant.Sign
	Verify      = merchant.Verify
	New         = merchant.New
	FromRequest = merchant.FromRequest
)

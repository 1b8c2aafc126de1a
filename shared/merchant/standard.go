package merchant

// Standard Webhooks (https://www.standardwebhooks.com, spec/standard-webhooks.md
// in github.com/standard-webhooks/standard-webhooks): the symmetric scheme,
//
//	webhook-signature: v1,<base64 HMAC-SHA256(secret, id "." timestamp "." body)>
//
// Written here rather than imported so that the package stays standard
// library only and merchants can copy it; the specification's published
// vectors (testdata/standard-webhooks-vectors.json) hold it to the reference
// libraries.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// SecretPrefix marks a Standard Webhooks secret: whsec_<base64 of the key>.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's
// clock, either way, as in the reference libraries.
const DefaultTolerance = 5 * time.Minute

// Errors of VerifyStandard; every one means "do not trust this request".
var (
	ErrMissingHeaders = errors.New("standard webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrBadTimestamp   = errors.New("standard webhook: timestamp too old, too new or unreadable")
	ErrNoMatch        = errors.New("standard webhook: no signature matches")
	ErrBadSecret      = errors.New("standard webhook: secret is not whsec_ followed by base64")
)

// ParseSecret decodes a Standard Webhooks secret. The whsec_ prefix is
// optional here, as in the reference libraries; the configuration insists
// on it so that an MD5 salt cannot be mistaken for one.
func ParseSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil || len(key) == 0 {
		// The secret itself is never part of the error.
		return nil, ErrBadSecret
	}
	return key, nil
}

// SignStandard returns one "v1,<base64>" signature of body under key.
func SignStandard(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignatureHeader is the webhook-signature value for keys: one signature per
// key, space-separated, so that a receiver holding either secret of a
// rotation accepts the push.
func SignatureHeader(keys [][]byte, id string, timestamp int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = SignStandard(k, id, timestamp, body)
	}
	return strings.Join(sigs, " ")
}

// VerifyStandard checks a Standard Webhooks request: the timestamp within
// tolerance of now and at least one v1 signature made with one of keys.
// Signatures of other versions (v1a, v2, …) are skipped, not errors.
func VerifyStandard(keys [][]byte, id, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if id == "" || timestamp == "" || signature == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrBadTimestamp
	}
	for _, k := range keys {
		want := SignStandard(k, id, ts, body)
		for _, got := range strings.Fields(signature) {
			if strings.HasPrefix(got, "v1,") && hmac.Equal([]byte(got), []byte(want)) {
				return nil
			}
		}
	}
	return ErrNoMatch
}

// standardBody is what a standard-signed push carries: the fields of the
// JSON push without the MD5 sign, which the HMAC over the whole body
// replaces (and which now covers uuid too).
type standardBody struct {
	TradeNo string `json:"tradeNo"`
	OrderID string `json:"orderId"`
	Payment int64  `json:"payment"`
	Status  string `json:"status"`
	UUID    string `json:"uuid"`
	Time    string `json:"time"`
}

// StandardJSON returns p as the body of a standard-signed push.
func (p Push) StandardJSON() []byte {
	b, err := json.Marshal(standardBody{p.TradeNo, p.OrderID, p.Payment, p.Status, p.UUID, p.Time})
	if err != nil {
		panic(fmt.Sprintf("merchant: marshal of strings and an int64 failed: %v", err))
	}
	return b
}

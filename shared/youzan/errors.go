package youzan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Kind classifies a failed call so callers can decide between retrying,
// alerting and giving up without parsing Youzan's many envelopes themselves.
type Kind int

// The zero Kind is deliberately unnamed so that a forgotten classification
// shows up as "unknown" instead of masquerading as a real class.
const (
	Network     Kind = iota + 1 // connection refused, reset, DNS…
	Timeout                     // the per-call timeout or the caller's deadline expired
	Server                      // HTTP 5xx, gateway 5003
	RateLimited                 // gateway 4101 and the two business rate-limit shapes
	Token                       // gateway 4201/4202/4203 even after one renewal
	NotFound                    // "trade not found" or an empty result (read-side lag)
	BadRequest                  // gateway 4001..4010, 5001, legacy 41000, local validation
	Forbidden                   // gateway 4204: API not in the app's capability package
	Business                    // any other business failure
	Protocol                    // a body we cannot parse or classify
	Auth                        // /auth/token refused our credentials (1000, 1103, …)
)

var kindNames = map[Kind]string{
	Network:     "network",
	Timeout:     "timeout",
	Server:      "server",
	RateLimited: "rate_limited",
	Token:       "token",
	NotFound:    "not_found",
	BadRequest:  "bad_request",
	Forbidden:   "forbidden",
	Business:    "business",
	Protocol:    "protocol",
	Auth:        "auth",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("unknown(%d)", int(k))
}

// Error is the only error type the client returns for a failed Youzan call
// (possibly wrapped, and except for context.Canceled). It never carries the
// client secret or the access token: Message is Youzan's own text, and
// transport errors are stored without the request URL.
type Error struct {
	API        string // e.g. "youzan.trade.get", or "auth/token"
	Kind       Kind
	Code       int    // gw err_code, business code or legacy error_response code; 0 if none
	Message    string // Youzan's message, or a short description of a local failure
	HTTPStatus int    // 0 if no HTTP answer was received

	err error // underlying cause, for errors.Is (never a *url.Error: that holds the token)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("youzan ")
	b.WriteString(e.API)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.HTTPStatus != 0 && e.HTTPStatus != 200 {
		fmt.Fprintf(&b, " (http %d)", e.HTTPStatus)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.err }

// Retryable reports whether the same call may succeed later without any
// change on our side. Not-found counts because Youzan's read side lags
// behind pushes by up to tens of seconds.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case Network, Timeout, Server, RateLimited, Token, NotFound:
		return true
	}
	return false
}

// IsRetryable reports whether err (from this package or the transport under
// it) is worth retrying. A cancelled context is never retryable: the caller
// gave up.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ye *Error
	if errors.As(err, &ye) {
		return ye.Retryable()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// IsNotFound reports whether err says the trade does not exist (yet).
func IsNotFound(err error) bool {
	var ye *Error
	return errors.As(err, &ye) && ye.Kind == NotFound
}

// Gateway (bifrost) error codes (docs/youzan.md#error-classification).
func gatewayKind(code int) Kind {
	switch {
	case code == 4101:
		return RateLimited
	case code == 4201 || code == 4202 || code == 4203:
		return Token
	case code == 4204:
		return Forbidden
	case code >= 4001 && code <= 4010, code == 5001:
		return BadRequest
	case code == 5003:
		return Server
	}
	return Business
}

const (
	codeRateLimitA    = 500100004
	codeRateLimitB    = 123000042
	codeTradeNotFound = 5000
	rateLimitText     = "请求被限流"
)

// businessKind classifies a business or legacy failure body by code and text.
func businessKind(code int, msg string) Kind {
	lower := strings.ToLower(msg)
	switch {
	case code == codeRateLimitA || code == codeRateLimitB || strings.Contains(msg, rateLimitText):
		return RateLimited
	case strings.Contains(lower, "trade not found"), strings.Contains(msg, "订单不存在"):
		return NotFound
	case code == 40010: // legacy "参数 token 无效"
		return Token
	case code == 41000:
		return BadRequest
	}
	return Business
}

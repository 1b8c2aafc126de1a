package domain

import (
	"errors"
	"fmt"
)

// Code is the machine-readable name of an API error. Clients switch on it,
// so a code, once published in README's "Error codes" table, is never
// renamed; httpapi decides its HTTP status.
type Code string

// The codes the API answers with.
const (
	// Requests the client must change.
	CodeUnauthorized     Code = "unauthorized"
	CodeMalformedJSON    Code = "malformed_json"
	CodeInvalidName      Code = "invalid_name"
	CodeInvalidPrice     Code = "invalid_price"
	CodeInvalidOrderID   Code = "invalid_order_id"
	CodeBadBody          Code = "bad_body"
	CodeBodyTooLarge     Code = "body_too_large"
	CodeOrderConflict    Code = "order_conflict"
	CodeOrderNotFound    Code = "order_not_found"
	CodeInvalidState     Code = "invalid_state"
	CodeInvalidLimit     Code = "invalid_limit"
	CodeDeliveryNotFound Code = "delivery_not_found"
	// CodeDeliverySuperseded: replay refused, the endpoint already has a
	// newer status of the order.
	CodeDeliverySuperseded Code = "delivery_superseded"
	CodeReceiptNotFound    Code = "receipt_not_found"
	CodeEndpointNotFound   Code = "endpoint_not_found"
	// CodeEventNotFound: no delivery of that event was ever recorded.
	CodeEventNotFound    Code = "event_not_found"
	CodeNotFound         Code = "not_found"
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeURLNotAllowed: a return_url (or notify_url) that is not https (or
	// loopback in sandbox mode), or whose host is not allowed.
	CodeURLNotAllowed Code = "url_not_allowed"
	// CodeAlreadyPaid: closing an order the buyer has paid.
	CodeAlreadyPaid Code = "already_paid"
	// Operator console (README, "Operator console").
	CodeLoginFailed   Code = "login_failed"    // wrong admin key at the console's login
	CodeTooManyLogins Code = "too_many_logins" // failed logins from one address over the limit
	CodeCSRF          Code = "csrf_failed"     // a console POST without its session's CSRF token

	// Youzan pushes.
	CodeBadSignature  Code = "bad_signature"
	CodeMalformedPush Code = "malformed_push"
	// A body-signed push whose unsigned id, type or status disagree with
	// its signed msg, or whose msg carries no trade id: a forged variant.
	CodePushFieldsMismatch Code = "push_fields_mismatch"
	// A trade push whose tid is not "E" and 23 digits.
	CodeInvalidTradeID    Code = "invalid_trade_id"
	CodeBrokerUnavailable Code = "broker_unavailable"
	CodeBusy              Code = "busy"

	// Failures on our side or upstream; the same request may succeed later.
	CodeYouzanUnavailable Code = "youzan_unavailable"
	CodeYouzanError       Code = "youzan_error"
	CodeQRRenderFailed    Code = "qr_render_failed"
	CodeTimeout           Code = "timeout"
	CodeUnavailable       Code = "unavailable"
	CodeReplayUnavailable Code = "replay_unavailable"
	CodeInternal          Code = "internal"
)

// Error is a failure the API reports to its client. Message is shown
// verbatim, so it must not carry internals (SQL, URLs with credentials,
// stack traces); those belong in the cause, which only logs see.
type Error struct {
	Code    Code
	Message string
	Err     error // cause, for errors.Is and logs; never sent to the client
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the formatted message. It does not wrap: a
// cause's text would end up in the client's message (use Wrap).
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that answers message but keeps err for errors.Is
// and the log.
func Wrap(err error, code Code, message string) error {
	return &Error{Code: code, Message: message, Err: err}
}

// AsError finds the *Error in err's chain. The store's sentinels count as
// domain errors too, so a backend need not know the API: the only lookup by
// id a client can miss is an order's (admin replay names its own miss).
func AsError(err error) (*Error, bool) {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e, true
	case errors.Is(err, ErrConflict):
		return &Error{Code: CodeOrderConflict, Message: "order_id exists with a different name or price", Err: err}, true
	case errors.Is(err, ErrNotFound):
		return &Error{Code: CodeOrderNotFound, Message: "no such order", Err: err}, true
	}
	return nil, false
}

// ErrorCode is err's Code: "" for nil, CodeInternal for an error that is
// not the domain's (the API must never echo an unknown failure's text).
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := AsError(err); ok {
		return e.Code
	}
	return CodeInternal
}

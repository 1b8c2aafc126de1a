package httpapi

import (
	"log/slog"
	"maps"
	"net/http"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
)

// statuses is the only place an error code gets its HTTP status. README's
// "Error codes" table is tested against it, and a code missing here is
// answered as internal, so no undocumented code reaches a client or becomes
// a metric label.
var statuses = map[domain.Code]int{
	domain.CodeUnauthorized:       http.StatusUnauthorized,
	domain.CodeMalformedJSON:      http.StatusBadRequest,
	domain.CodeInvalidName:        http.StatusBadRequest,
	domain.CodeInvalidPrice:       http.StatusBadRequest,
	domain.CodeInvalidOrderID:     http.StatusBadRequest,
	domain.CodeBadBody:            http.StatusBadRequest,
	domain.CodeBodyTooLarge:       http.StatusRequestEntityTooLarge,
	domain.CodeOrderConflict:      http.StatusConflict,
	domain.CodeOrderNotFound:      http.StatusNotFound,
	domain.CodeYouzanUnavailable:  http.StatusBadGateway,
	domain.CodeYouzanError:        http.StatusBadGateway,
	domain.CodeQRRenderFailed:     http.StatusInternalServerError,
	domain.CodeTimeout:            http.StatusServiceUnavailable,
	domain.CodeUnavailable:        http.StatusServiceUnavailable,
	domain.CodeBadSignature:       http.StatusUnauthorized,
	domain.CodeMalformedPush:      http.StatusBadRequest,
	domain.CodePushFieldsMismatch: http.StatusUnauthorized,
	domain.CodeInvalidTradeID:     http.StatusBadRequest,
	domain.CodeBrokerUnavailable:  http.StatusServiceUnavailable,
	domain.CodeBusy:               http.StatusServiceUnavailable,
	domain.CodeInvalidState:       http.StatusBadRequest,
	domain.CodeInvalidLimit:       http.StatusBadRequest,
	domain.CodeDeliveryNotFound:   http.StatusNotFound,
	domain.CodeDeliverySuperseded: http.StatusConflict,
	domain.CodeReceiptNotFound:    http.StatusNotFound,
	domain.CodeEndpointNotFound:   http.StatusNotFound,
	domain.CodeEventNotFound:      http.StatusNotFound,
	domain.CodeReplayUnavailable:  http.StatusNotImplemented,
	domain.CodeNotFound:           http.StatusNotFound,
	domain.CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	domain.CodeInternal:           http.StatusInternalServerError,
	domain.CodeURLNotAllowed:      http.StatusBadRequest,
	domain.CodeAlreadyPaid:        http.StatusConflict,
	domain.CodeLoginFailed:        http.StatusUnauthorized,
	domain.CodeTooManyLogins:      http.StatusTooManyRequests,
	domain.CodeCSRF:               http.StatusForbidden,
}

// Statuses returns a copy of the code → HTTP status table, for tests and
// documentation checks.
func Statuses() map[domain.Code]int { return maps.Clone(statuses) }

// internalMessage is all a client learns of a failure that is not a domain
// error; the request id in the response header finds the real one in the log.
const internalMessage = "internal error"

// ErrorBody is the error shape every yzpay error answer has.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Error answers err as an ErrorBody with the status its code has in the
// table, and counts it in yzpay_api_errors_total. An err that is not a
// domain error, or whose code the table lacks, is a bug: it is logged (to
// log, or slog.Default when nil) and answered as 500 internal without its
// text, which may hold anything from SQL to a credential.
func Error(w http.ResponseWriter, r *http.Request, m *metrics.Metrics, log *slog.Logger, err error) {
	code, message := domain.CodeInternal, internalMessage
	e, ok := domain.AsError(err)
	status, known := 0, false
	if ok {
		status, known = statuses[e.Code]
	}
	if known {
		code, message = e.Code, e.Message
	} else {
		if log == nil {
			log = slog.Default()
		}
		log.Error("request failed", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		status = statuses[domain.CodeInternal]
	}
	var b ErrorBody
	b.Error.Code, b.Error.Message = string(code), message
	if m != nil {
		m.APIErrors.WithLabelValues(string(code)).Inc()
	}
	WriteJSON(w, status, b)
}

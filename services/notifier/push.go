package notifier

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/merchant"
	"github.com/yzpay/yzpay/shared/store"
)

// Headers that help the merchant deduplicate.
const (
	HeaderEventID = "X-Yzpay-Event-Id"
	HeaderAttempt = "X-Yzpay-Attempt"
	// HeaderSandbox is "1" on every push `yzpay serve --sandbox` sends: no
	// money moved, and a merchant should refuse to act on it.
	HeaderSandbox = "X-Yzpay-Sandbox"
	maxResponse   = 64 << 10
)

// TradeNo is the original service's trade number: <tid>-<qr_id>.
func TradeNo(ev domain.PaymentEvent) string {
	return ev.TID + "-" + strconv.FormatInt(ev.QRID, 10)
}

// Build signs ev as the merchant push, timestamped now.
func Build(ev domain.PaymentEvent, secret string, now time.Time) merchant.Push {
	f := merchant.Fields{
		Time:    strconv.FormatInt(now.Unix(), 10),
		TradeNo: TradeNo(ev),
		OrderID: ev.OrderID,
		Payment: ev.Payment,
		Status:  ev.Status,
	}
	return merchant.New(f, ev.UUID, secret)
}

// request is one push as it goes on the wire.
type request struct {
	body   []byte
	ctype  string
	header http.Header // signing headers, if any
}

// build signs ev for ep at now. md5: the original push (form or JSON) with
// its sign field. standard: the JSON push without sign, and the Standard
// Webhooks headers (webhook-id is the event id, stable across retries;
// webhook-timestamp is this attempt's, equal to the body's time). both: the
// original push, and the Standard Webhooks headers over its exact bytes.
func build(ev domain.PaymentEvent, ep *endpoint, now time.Time) request {
	p := Build(ev, ep.MD5Secret, now)
	var r request
	switch {
	case ep.Signing == config.SigningStandard:
		r.body, r.ctype = p.StandardJSON(), "application/json"
	case ep.Format == config.FormatJSON:
		r.body, r.ctype = p.JSON(), "application/json"
	default:
		// The bytes of p.Form().Encode(), without the url.Values.
		r.body, r.ctype = p.AppendForm(make([]byte, 0, 256)), "application/x-www-form-urlencoded"
	}
	if ep.Signing != config.SigningMD5 {
		r.header = http.Header{}
		r.header.Set(merchant.HeaderWebhookID, ev.EventID)
		r.header.Set(merchant.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
		r.header.Set(merchant.HeaderWebhookSignature, merchant.SignatureHeader(ep.keys, ev.EventID, now.Unix(), r.body))
	}
	return r
}

// post makes one attempt and describes its outcome. receivedAt, when not
// zero, is when the gateway stored the push behind ev.
func (n *Notifier) post(ctx context.Context, ev domain.PaymentEvent, ep *endpoint, attempt int, receivedAt time.Time) domain.Attempt {
	start := time.Now()
	endpoint := ep.URL
	req := build(ev, ep, start)
	a := domain.Attempt{
		EventID: ev.EventID, Endpoint: endpoint, OrderID: ev.OrderID, Status: ev.Status,
		Event: ev.Encode(), At: start.UTC(),
	}
	var ans answer
	client, err := n.clientFor(ep)
	if err == nil {
		ans, err = n.send(ctx, client, endpoint, req, ev.EventID, attempt)
	} else {
		ans.class = domain.AttemptErrorBlocked
	}
	status := ans.status
	elapsed := time.Since(start)
	a.HTTPStatus, a.ErrorClass, a.Duration = status, ans.class, elapsed
	// Redacted before the cut, so no part of a secret survives it.
	a.Excerpt = store.TruncateExcerpt(redactSecrets(ans.excerpt, ep))
	n.m.DeliveryAttempt.Observe(float64(attempt))
	if err == nil {
		a.Delivered = true
		n.delivered.Inc()
		n.deliveredDuration.Observe(elapsed.Seconds())
		if !receivedAt.IsZero() {
			n.m.PushToDelivery.Observe(max(0, time.Since(receivedAt).Seconds()))
		}
		// Checked first: the arguments (RedactURL above all) cost more than
		// the rest of a delivered push's bookkeeping, and INFO is often off.
		if n.log.Enabled(ctx, slog.LevelInfo) {
			n.log.Info("merchant notified", "event_id", ev.EventID, "order_id", ev.OrderID, "tid", ev.TID,
				"status", ev.Status, "endpoint", config.RedactURL(endpoint), "attempt", attempt, "http_status", status)
		}
		return a
	}
	a.Error = err.Error()
	if errors.Is(err, errBlocked) {
		return n.giveUpBlocked(ev, ep, attempt, a)
	}
	n.m.Deliveries.WithLabelValues("failed").Inc()
	n.m.DeliveryDuration.WithLabelValues("failed").Observe(elapsed.Seconds())
	if d, ok := n.nextDelay(ep, attempt); ok {
		a.NextAttemptAt = start.Add(d).UTC()
		n.log.Warn("merchant push failed; will retry", "event_id", ev.EventID, "order_id", ev.OrderID,
			"endpoint", config.RedactURL(endpoint), "attempt", attempt, "retry_in", d.Round(time.Millisecond), "err", a.Error)
		return a
	}
	a.GiveUp = true
	n.m.DeliveriesGivenUp.Inc()
	n.log.Error("merchant push given up after the whole retry schedule; replay with `yzpay deliveries replay`",
		"event_id", ev.EventID, "order_id", ev.OrderID, "tid", ev.TID, "status", ev.Status,
		"endpoint", config.RedactURL(endpoint), "attempts", attempt, "err", a.Error)
	return a
}

// answer is what the attempt log keeps of one POST.
type answer struct {
	status  int
	class   string // domain.AttemptError*; "" on success
	excerpt string // the response body as read (up to maxResponse)
}

// send POSTs once: any 2xx is success; the rest, a timeout or a refused
// connection is a failure. Errors never include the body (it holds a sign).
func (n *Notifier) send(ctx context.Context, client *http.Client, endpoint string, r request, eventID string, attempt int) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(r.body))
	if err != nil {
		return answer{class: domain.AttemptErrorProtocol}, fmt.Errorf("bad endpoint URL: %w", err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	// Canonical keys assigned directly: what Header.Set does, without
	// canonicalising the same constant names on every push.
	req.Header["Content-Type"] = []string{r.ctype}
	req.Header["User-Agent"] = userAgent
	req.Header[HeaderEventID] = []string{eventID}
	req.Header[HeaderAttempt] = []string{strconv.Itoa(attempt)}
	if n.cfg.Sandbox {
		req.Header[HeaderSandbox] = sandboxOn
	}
	resp, err := client.Do(req)
	if err != nil {
		if be := (*blockedError)(nil); errors.As(err, &be) {
			return answer{class: domain.AttemptErrorBlocked}, be
		}
		return answer{class: errorClass(err)}, fmt.Errorf("post: %s", describe(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse)) // let the connection be reused
	ans := answer{status: resp.StatusCode, excerpt: string(snippet)}
	if resp.StatusCode/100 == 2 {
		return ans, nil
	}
	ans.class = domain.AttemptErrorHTTP
	s := strings.TrimSpace(string(snippet))
	if len(s) > 200 {
		s = s[:200]
	}
	return ans, fmt.Errorf("merchant answered HTTP %d: %q", resp.StatusCode, s)
}

// errorClass sorts a failed POST for the attempt log: an operator tells
// "their DNS is broken" from "their certificate expired" at a glance.
func errorClass(err error) string {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		hdrErr  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		opErr   *net.OpError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return domain.AttemptErrorTimeout
	case errors.As(err, &dnsErr):
		return domain.AttemptErrorDNS
	case errors.As(err, &certErr), errors.As(err, &hdrErr), errors.As(err, &unknown), errors.As(err, &host),
		errors.As(err, &invalid), strings.Contains(err.Error(), "tls: "):
		return domain.AttemptErrorTLS
	case errors.As(err, &opErr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return domain.AttemptErrorConnect
	}
	return domain.AttemptErrorProtocol
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Header values shared by every push; net/http only reads them.
var (
	userAgent = []string{"yzpay-notifier"}
	sandboxOn = []string{"1"}
)

// redactSecrets keeps our own secrets out of the attempt log should a
// merchant's answer echo one back (a misconfigured endpoint reflecting a
// debugging page, say).
func redactSecrets(s string, ep *endpoint) string {
	if s == "" {
		return s
	}
	s = redactSecret(s, ep.MD5Secret)
	for _, secret := range ep.Secrets {
		s = redactSecret(s, secret)
	}
	return s
}

func redactSecret(s, secret string) string {
	if secret != "" && strings.Contains(s, secret) {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// describe keeps the URL (its query may carry a merchant token) out of logs.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timeout"
		}
		return ue.Err.Error()
	}
	return err.Error()
}

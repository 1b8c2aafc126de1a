package notifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/merchant"
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
		r.body, r.ctype = []byte(p.Form().Encode()), "application/x-www-form-urlencoded"
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
	client, err := n.clientFor(ep)
	status := 0
	if err == nil {
		status, err = n.send(ctx, client, endpoint, req, ev.EventID, attempt)
	}
	a.HTTPStatus = status
	elapsed := time.Since(start)
	n.m.DeliveryAttempt.Observe(float64(attempt))
	if err == nil {
		a.Delivered = true
		n.m.Deliveries.WithLabelValues("delivered").Inc()
		n.m.DeliveryDuration.WithLabelValues("delivered").Observe(elapsed.Seconds())
		if !receivedAt.IsZero() {
			n.m.PushToDelivery.Observe(max(0, time.Since(receivedAt).Seconds()))
		}
		n.log.Info("merchant notified", "event_id", ev.EventID, "order_id", ev.OrderID, "tid", ev.TID,
			"status", ev.Status, "endpoint", config.RedactURL(endpoint), "attempt", attempt, "http_status", status)
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

// send POSTs once: any 2xx is success; the rest, a timeout or a refused
// connection is a failure. Errors never include the body (it holds a sign).
func (n *Notifier) send(ctx context.Context, client *http.Client, endpoint string, r request, eventID string, attempt int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(r.body))
	if err != nil {
		return 0, fmt.Errorf("bad endpoint URL: %w", err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", r.ctype)
	req.Header.Set("User-Agent", "yzpay-notifier")
	req.Header.Set(HeaderEventID, eventID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	if n.cfg.Sandbox {
		req.Header.Set(HeaderSandbox, "1")
	}
	resp, err := client.Do(req)
	if err != nil {
		if be := (*blockedError)(nil); errors.As(err, &be) {
			return 0, be
		}
		return 0, fmt.Errorf("post: %s", describe(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse)) // let the connection be reused
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, nil
	}
	s := strings.TrimSpace(string(snippet))
	if len(s) > 200 {
		s = s[:200]
	}
	return resp.StatusCode, fmt.Errorf("merchant answered HTTP %d: %q", resp.StatusCode, s)
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

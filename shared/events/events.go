// Package events fixes what yzpay puts on NATS JetStream: the two streams, their
// subjects, the payment-status event that internal consumers read, and the
// idempotent setup every service runs at start. design.md is the contract;
// change names here only together with it.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/store"
)

// Stream, subject and durable names (design.md, "NATS JetStream").
const (
	WebhookStream   = "YZPAY_WEBHOOKS"
	WebhookSubjects = "yzpay.webhook.>"
	PaymentStream   = "YZPAY_PAYMENTS"
	// PaymentSubjects covers status events and operator replays; internal
	// consumers subscribe to StatusSubjects only.
	PaymentSubjects = "yzpay.payment.>"
	StatusSubjects  = "yzpay.payment.status.>"

	TradefetcherDurable = "tradefetcher"
	NotifierDurable     = "notifier"

	// ReconcileType is the webhook type of receipts the reconciler makes up
	// for trades whose push never arrived.
	ReconcileType = "yzpay_Reconcile"

	// HeaderReceivedAt carries the gateway's acceptance time (RFC 3339 nano)
	// through the pipeline so latency can be measured end to end.
	HeaderReceivedAt = "Yzpay-Received-At"
	// HeaderTID carries the verified push's trade id, so the tradefetcher
	// need not parse the body again.
	HeaderTID = "Yzpay-Tid"
	// HeaderStatus carries the status the push announced, so a trade.get
	// answer that lags behind it is retried rather than taken as final.
	HeaderStatus = "Yzpay-Status"
)

// WebhookSubject is where a verified push of pushType is published.
func WebhookSubject(pushType string) string { return "yzpay.webhook." + pushType }

// StatusSubject is where an event for status is published.
func StatusSubject(status string) string { return "yzpay.payment.status." + status }

// ReplaySubject carries an operator's replay of one event to the notifier.
func ReplaySubject(status string) string { return "yzpay.payment.replay." + status }

// PaymentEvent is the normalized payment-status event (schema version 1).
type PaymentEvent struct {
	V          int       `json:"v"`
	EventID    string    `json:"event_id"`
	OrderID    string    `json:"order_id"`
	QRID       int64     `json:"qr_id"`
	TID        string    `json:"tid"`
	Status     string    `json:"status"`
	Payment    int64     `json:"payment"`
	UUID       string    `json:"uuid"`
	PayType    string    `json:"pay_type"`
	OccurredAt time.Time `json:"occurred_at"`
}

// EventID derives the id from the trade and status, so a repeated push can
// never publish a second event. An order closed by expiry has no trade; its
// id is derived from the order instead.
func EventID(tid, orderID, status string) string {
	if tid == "" {
		return "order:" + orderID + ":" + status
	}
	return tid + ":" + status
}

// FromOrder builds the event announcing that o reached its current status.
// It depends only on the stored order, so a retry rebuilds the same event.
func FromOrder(o store.Order) PaymentEvent {
	payment := o.Payment
	if !store.IsPaid(o.Status) && !(o.Status == store.StatusTradeClosed && o.EverPaid) {
		payment = 0
	}
	return PaymentEvent{
		V:          1,
		EventID:    EventID(o.TID, o.OrderID, o.Status),
		OrderID:    o.OrderID,
		QRID:       o.QRID,
		TID:        o.TID,
		Status:     o.Status,
		Payment:    payment,
		UUID:       o.BuyerID,
		PayType:    o.PayType,
		OccurredAt: o.UpdatedAt.UTC(),
	}
}

// Decode parses and checks an event.
func Decode(data []byte) (PaymentEvent, error) {
	var e PaymentEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("decode payment event: %w", err)
	}
	if e.V != 1 || e.EventID == "" || e.OrderID == "" || e.Status == "" {
		return e, fmt.Errorf("decode payment event: missing v, event_id, order_id or status")
	}
	return e, nil
}

// Encode is the wire form.
func (e PaymentEvent) Encode() []byte {
	b, _ := json.Marshal(e) // cannot fail: plain fields
	return b
}

// Setup is how long messages and duplicates are kept, and how many replicas.
type Setup struct {
	Replicas int
	// DuplicateWindow: Youzan re-pushes for hours, so the webhook stream
	// remembers msg ids for a day; the store's idempotency covers the rest.
	DuplicateWindow time.Duration
	MaxAge          time.Duration
}

// DefaultSetup is used by the services unless a test shortens it.
func DefaultSetup(replicas int) Setup {
	if replicas < 1 {
		replicas = 1
	}
	return Setup{Replicas: replicas, DuplicateWindow: 24 * time.Hour, MaxAge: 14 * 24 * time.Hour}
}

// EnsureStreams creates or updates both streams, idempotently; every service
// calls it at start, so whichever starts first sets them up.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Setup) error {
	for _, cfg := range []jetstream.StreamConfig{
		{Name: WebhookStream, Subjects: []string{WebhookSubjects}, Description: "verified Youzan push receipts"},
		{Name: PaymentStream, Subjects: []string{PaymentSubjects}, Description: "payment-status events and replays"},
	} {
		cfg.Storage = jetstream.FileStorage
		cfg.Retention = jetstream.LimitsPolicy
		cfg.Replicas = s.Replicas
		cfg.Duplicates = s.DuplicateWindow
		cfg.MaxAge = s.MaxAge
		if err := ensureStream(ctx, js, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ensureStream creates the stream, or updates it only when its settings
// differ: every service runs this at start, and needless updates racing
// with consumer creation are churn the server is better spared.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another service created it a moment ago
		}
		return err
	}
	if err != nil {
		return err
	}
	have := st.CachedInfo().Config
	if slices.Equal(have.Subjects, want.Subjects) && have.Replicas == want.Replicas &&
		have.Duplicates == want.Duplicates && have.MaxAge == want.MaxAge && have.Retention == want.Retention {
		return nil
	}
	_, err = js.UpdateStream(ctx, want)
	return err
}

// TradefetcherConsumer and NotifierConsumer are the durable configs; an
// ackWait of 0 takes the default (30 s and 60 s). MaxDeliver is unlimited: the services decide when to give
// up (and record it), JetStream must never drop a message first. AckWait
// bounds how long a crashed worker holds a message.
func TradefetcherConsumer(ackWait time.Duration) jetstream.ConsumerConfig {
	if ackWait <= 0 {
		ackWait = 30 * time.Second
	}
	return jetstream.ConsumerConfig{
		Durable:       TradefetcherDurable,
		FilterSubject: WebhookSubjects,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 1 << 16,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// NotifierConsumer: a merchant POST may take 10 s per endpoint.
func NotifierConsumer(ackWait time.Duration) jetstream.ConsumerConfig {
	if ackWait <= 0 {
		ackWait = 60 * time.Second
	}
	return jetstream.ConsumerConfig{
		Durable:       NotifierDurable,
		FilterSubject: PaymentSubjects,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		// Events waiting out a long retry delay count as pending; a dead
		// endpoint must not use up the limit and stall healthy ones.
		MaxAckPending: 1 << 20,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

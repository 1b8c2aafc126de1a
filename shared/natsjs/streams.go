// Package natsjs is yzpay's adapter to NATS JetStream: the connection, the
// two streams and their subjects, the durable consumers, and the batched
// consume loop both pipeline workers run; the embedded server of `yzpay
// serve` is in the subpackage embedded. The names here are an interface
// other consumers rely on (README, "NATS subjects and events"): change them
// only together with it.
package natsjs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream, subject and durable names (README, "NATS subjects and events").
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

// StreamSetup is how long messages and duplicates are kept, and how many replicas.
type StreamSetup struct {
	Replicas int
	// DuplicateWindow: Youzan re-pushes for hours, so the webhook stream
	// remembers msg ids for a day; the store's idempotency covers the rest.
	DuplicateWindow time.Duration
	MaxAge          time.Duration
}

// DefaultStreamSetup is used by the services unless a test shortens it.
func DefaultStreamSetup(replicas int) StreamSetup {
	if replicas < 1 {
		replicas = 1
	}
	return StreamSetup{Replicas: replicas, DuplicateWindow: 24 * time.Hour, MaxAge: 14 * 24 * time.Hour}
}

// EnsureStreams creates or updates both streams, idempotently; every service
// calls it at start, so whichever starts first sets them up.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s StreamSetup) error {
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

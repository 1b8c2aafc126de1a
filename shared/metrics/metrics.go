// Package metrics declares every Prometheus series yzpay exports, in one
// place, so the three services (or `yzpay serve`, which runs all three on one
// registry) share names and help texts. No series carries a per-order label.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests        *prometheus.CounterVec   // route, code
	HTTPRequestDuration *prometheus.HistogramVec // route
	APIErrors           *prometheus.CounterVec   // code: rejected merchant/admin requests
	PushesReceived      *prometheus.CounterVec   // type, result

	YouzanCalls        *prometheus.CounterVec   // api, result
	YouzanCallDuration *prometheus.HistogramVec // api

	Receipts    *prometheus.CounterVec // result: what tradefetcher did with a receipt
	TradeEvents *prometheus.CounterVec // status: events published
	// AmountMismatch counts orders paid with another amount than their price.
	AmountMismatch prometheus.Counter
	// ReceiptsParked counts receipts set aside in the store because Youzan
	// did not know their trade; ReceiptsGivenUp those kept as dead after
	// FETCH_GIVE_UP_AFTER.
	ReceiptsParked  prometheus.Counter
	ReceiptsGivenUp prometheus.Counter

	Deliveries        *prometheus.CounterVec   // result
	ForgedEvents      *prometheus.CounterVec   // reason
	DeliveryDuration  *prometheus.HistogramVec // result
	DeliveryAttempt   prometheus.Histogram
	DeliveriesGivenUp prometheus.Counter
	// EndpointReloads counts SIGHUP re-reads of PUSH_ENDPOINTS_FILE.
	EndpointReloads *prometheus.CounterVec // result: ok, failed
	// EndpointPaused is 1 for an endpoint paused by endpoint health
	// (services/notifier/health.go), 0 for one that is active.
	EndpointPaused *prometheus.GaugeVec // endpoint

	Redeliveries *prometheus.CounterVec // consumer
	Reconciled   *prometheus.CounterVec // result
	Expired      prometheus.Counter
	// SweepLeaseHeld is 1 on the one tradefetcher replica that sweeps.
	SweepLeaseHeld prometheus.Gauge
	// AttemptsPruned counts attempt-log rows deleted past ATTEMPT_LOG_RETENTION.
	AttemptsPruned prometheus.Counter

	// PushToDelivery is what the merchant experiences: from the gateway
	// storing Youzan's push to the merchant's 2xx, retries included.
	PushToDelivery prometheus.Histogram

	// JetStream state, polled in the background by package lag (a scrape
	// must not wait on the broker).
	StreamMessages      *prometheus.GaugeVec // stream
	StreamBytes         *prometheus.GaugeVec // stream
	ConsumerPending     *prometheus.GaugeVec // stream, consumer
	ConsumerAckPending  *prometheus.GaugeVec // stream, consumer
	ConsumerRedelivered *prometheus.GaugeVec // stream, consumer
	ConsumerOldestAge   *prometheus.GaugeVec // stream, consumer
	LagPollErrors       prometheus.Counter
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// endToEndBuckets reach past latencyBuckets because a merchant that is down
// turns the push-to-merchant time into the retry schedule (hours).
var endToEndBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400}

// New registers every series (plus Go and process collectors) on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_http_requests_total", Help: "HTTP requests answered by the gateway, by route and status code.",
		}, []string{"route", "code"}),
		HTTPRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "yzpay_http_request_duration_seconds", Help: "Time to answer a gateway HTTP request, by route.", Buckets: latencyBuckets,
		}, []string{"route"}),
		APIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_api_errors_total", Help: "Requests refused with an error body, by error code.",
		}, []string{"code"}),
		PushesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_pushes_received_total", Help: "Youzan push messages received, by message type and result.",
		}, []string{"type", "result"}),
		YouzanCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_youzan_requests_total", Help: "Youzan API calls and access-token requests (api auth/token), by API and result (ok, retryable, error).",
		}, []string{"api", "result"}),
		YouzanCallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "yzpay_youzan_request_duration_seconds", Help: "Youzan API call latency, by API.", Buckets: latencyBuckets,
		}, []string{"api"}),
		Receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_receipts_processed_total", Help: "Push receipts handled by the tradefetcher, by result.",
		}, []string{"result"}),
		AmountMismatch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yzpay_payment_amount_mismatch_total", Help: "Orders paid with an amount other than their price (the notification carries what Youzan reported).",
		}),
		TradeEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_trade_events_total", Help: "Payment-status events published, by trade status.",
		}, []string{"status"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_deliveries_total", Help: "Merchant push attempts, by result (delivered, failed, superseded, skipped, malformed).",
		}, []string{"result"}),
		ForgedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_forged_events_total", Help: "Payment events the notifier refused to sign because they do not match the store, by reason (unknown_order, mismatch).",
		}, []string{"reason"}),
		DeliveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "yzpay_delivery_duration_seconds", Help: "Merchant push attempt latency, by result.", Buckets: latencyBuckets,
		}, []string{"result"}),
		DeliveryAttempt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "yzpay_delivery_attempt_number", Help: "Attempt number of each merchant push attempt.",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 11},
		}),
		ReceiptsParked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yzpay_receipts_parked_total", Help: "Receipts whose trade Youzan answered not found, set aside in the store and retried from there.",
		}),
		ReceiptsGivenUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yzpay_receipts_given_up_total", Help: "Receipts whose trade Youzan still did not know after FETCH_GIVE_UP_AFTER, kept as dead receipts.",
		}),
		AttemptsPruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yzpay_attempt_log_pruned_total", Help: "Attempt-log rows deleted by the retention sweep, older than ATTEMPT_LOG_RETENTION.",
		}),
		DeliveriesGivenUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yzpay_deliveries_given_up_total", Help: "Event deliveries to one endpoint abandoned after the whole retry schedule.",
		}),
		EndpointReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_endpoint_reloads_total", Help: "Re-reads of PUSH_ENDPOINTS_FILE on SIGHUP, by result (a failed one keeps the previous endpoints).",
		}, []string{"result"}),
		EndpointPaused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "yzpay_endpoint_paused", Help: "1 while a merchant endpoint is paused after failing every attempt for ENDPOINT_PAUSE_AFTER (its deliveries held, one probe per ENDPOINT_PROBE_INTERVAL), else 0.",
		}, []string{"endpoint"}),
		Redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_consumer_redeliveries_total", Help: "JetStream messages received again (delivery count above 1), by consumer.",
		}, []string{"consumer"}),
		Reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yzpay_reconcile_checks_total", Help: "Unpaid orders checked against youzan.trades.qr.get, by result.",
		}, []string{"result"}),
		Expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yzpay_orders_expired_total", Help: "Unpaid orders closed after ORDER_TTL.",
		}),
		SweepLeaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "yzpay_sweep_lease_held", Help: "1 while this tradefetcher holds the sweep lease (runs reconciliation and expiry), else 0.",
		}),
		PushToDelivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "yzpay_push_to_delivery_seconds",
			Help:    "Time from the gateway storing a Youzan push (or the reconciler finding the trade) to a merchant endpoint answering 2xx for its event, retries included; replays are not counted.",
			Buckets: endToEndBuckets,
		}),
		StreamMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "yzpay_stream_messages", Help: "Messages held by a JetStream stream, as last polled.",
		}, []string{"stream"}),
		StreamBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "yzpay_stream_bytes", Help: "Bytes held by a JetStream stream, as last polled.",
		}, []string{"stream"}),
		ConsumerPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "yzpay_consumer_pending_messages", Help: "Messages a durable consumer has not been handed yet (num_pending), as last polled.",
		}, []string{"stream", "consumer"}),
		ConsumerAckPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "yzpay_consumer_ack_pending_messages", Help: "Messages handed to a durable consumer and not acknowledged yet, including those waiting out a retry delay (num_ack_pending), as last polled.",
		}, []string{"stream", "consumer"}),
		ConsumerRedelivered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "yzpay_consumer_redelivered_messages", Help: "Unacknowledged messages a durable consumer has been handed more than once (num_redelivered), as last polled.",
		}, []string{"stream", "consumer"}),
		ConsumerOldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "yzpay_consumer_oldest_unacked_age_seconds", Help: "Age of the oldest message a durable consumer has not acknowledged (0 when it is caught up), as last polled.",
		}, []string{"stream", "consumer"}),
		LagPollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yzpay_lag_poll_errors_total", Help: "Failed polls of JetStream stream and consumer state; the polled gauges keep their last values meanwhile.",
		}),
	}
	for _, c := range []prometheus.Collector{m.HTTPRequests, m.HTTPRequestDuration, m.APIErrors, m.PushesReceived,
		m.YouzanCalls, m.YouzanCallDuration, m.Receipts, m.TradeEvents, m.Deliveries, m.ForgedEvents, m.DeliveryDuration,
		m.DeliveryAttempt, m.DeliveriesGivenUp, m.EndpointReloads, m.EndpointPaused, m.Redeliveries, m.Reconciled, m.Expired, m.AmountMismatch, m.PushToDelivery,
		m.ReceiptsParked, m.ReceiptsGivenUp,
		m.StreamMessages, m.StreamBytes, m.ConsumerPending, m.ConsumerAckPending, m.ConsumerRedelivered,
		m.ConsumerOldestAge, m.LagPollErrors,
		m.SweepLeaseHeld, m.AttemptsPruned} {
		f(c)
	}
	return m
}

// ObserveYouzan has the signature of youzan.Config.Observe.
func (m *Metrics) ObserveYouzan(api, result string, d time.Duration) {
	m.YouzanCalls.WithLabelValues(api, result).Inc()
	m.YouzanCallDuration.WithLabelValues(api).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

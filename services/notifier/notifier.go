// Package notifier delivers payment-status events to the merchant's own
// servers (PUSH_API) as MD5-signed pushes compatible with the original
// service. Each endpoint is tracked separately in the store: one that
// answered 2xx for an event is never called again for it; one that keeps
// failing is retried on PUSH_RETRY_SCHEDULE through JetStream redelivery and,
// when the schedule runs out, given up visibly (store, metric, ERROR log) so
// an operator can replay it.
package notifier

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store"
)

// Deps are the notifier's collaborators.
type Deps struct {
	Store   store.Store
	JS      jetstream.JetStream
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// HTTPClient, if nil, is NewHTTPClient(cfg.Timeout).
	HTTPClient *http.Client
	// LookupHost, if set, resolves the hosts of per-order notify_urls
	// instead of DNS (tests: a name that resolves to a private address).
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Notifier is the worker.
type Notifier struct {
	cfg    config.Notifier
	deps   Deps
	log    *slog.Logger
	m      *metrics.Metrics
	client *http.Client
	// endpoints is swapped whole by Reload; each delivery of an event reads
	// it once, so the deliveries in flight finish with the set they started
	// with.
	endpoints atomic.Pointer[endpointSet]
	reloadMu  sync.Mutex
	orders    orderLocks
	health    health
	// orderClient posts to per-order notify_urls (notifyurl.go).
	orderClient *http.Client
	guard       *dialGuard
	// The series every delivered push counts, looked up once.
	delivered         interface{ Inc() }
	deliveredDuration interface{ Observe(float64) }
}

// NewHTTPClient verifies TLS (the original did not) and never follows a
// redirect: a push must reach the configured URL or fail visibly.
func NewHTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// New checks the configuration.
func New(cfg config.Notifier, deps Deps) (*Notifier, error) {
	if deps.Store == nil || deps.JS == nil || deps.Metrics == nil {
		return nil, errors.New("notifier: Store, JS and Metrics are required")
	}
	if len(cfg.Endpoints) == 0 && len(cfg.EndpointSet) == 0 {
		return nil, errors.New("notifier: at least one endpoint (PUSH_API or PUSH_ENDPOINTS_FILE) is required")
	}
	if len(cfg.EndpointSet) == 0 && cfg.Secret == "" {
		return nil, errors.New("notifier: SELF_SECRET is required")
	}
	switch cfg.Format {
	case "":
		cfg.Format = config.FormatForm
	case config.FormatForm, config.FormatJSON:
	default:
		return nil, errors.New("notifier: PUSH_FORMAT must be form or json")
	}
	if len(cfg.RetrySchedule) == 0 {
		cfg.RetrySchedule = config.DefaultPushRetrySchedule
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Jitter < 0 {
		cfg.Jitter = 0
	} else if cfg.Jitter == 0 {
		cfg.Jitter = 0.1
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 15 * time.Second
	}
	if cfg.StoreRetry <= 0 {
		cfg.StoreRetry = time.Second
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	client := deps.HTTPClient
	if client == nil {
		client = NewHTTPClient(cfg.Timeout)
	}
	n := &Notifier{cfg: cfg, deps: deps, log: deps.Logger.With("service", "notifier"), m: deps.Metrics, client: client}
	n.delivered = n.m.Deliveries.WithLabelValues("delivered")
	n.deliveredDuration = n.m.DeliveryDuration.WithLabelValues("delivered")
	n.guard = newDialGuard(cfg)
	if deps.LookupHost != nil {
		n.guard.lookup = deps.LookupHost
	}
	n.orderClient = newOrderClient(cfg.Timeout, n.guard)
	eps := cfg.EndpointSet
	if len(eps) == 0 {
		eps = cfg.LegacyEndpoints()
	}
	set, err := n.newEndpointSet(eps)
	if err != nil {
		return nil, err
	}
	n.endpoints.Store(set)
	n.health.init()
	if n.cfg.PauseAfter <= 0 {
		n.cfg.PauseAfter = config.DefaultEndpointPauseAfter
	}
	if n.cfg.ProbeInterval <= 0 {
		n.cfg.ProbeInterval = config.DefaultEndpointProbeInterval
	}
	if n.cfg.DrainRate <= 0 {
		n.cfg.DrainRate = config.DefaultEndpointDrainRate
	}
	return n, nil
}

// Run consumes events until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	if n.cfg.EndpointsFile != "" {
		stop := n.reloadOnSIGHUP(ctx)
		defer stop()
	}
	hctx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); n.runHealth(hctx) }()
	defer func() { stopHealth(); <-healthDone }()
	ccfg := natsjs.NotifierConsumer(n.cfg.AckWait)
	cons, err := natsjs.EnsureConsumer(ctx, n.deps.JS, natsjs.PaymentStream, ccfg)
	if err != nil {
		return err
	}
	return natsjs.Consume(ctx, cons, n.handle, natsjs.ConsumeOptions{
		Batch:        n.cfg.Batch,
		Admit:        n.admit,
		AckWait:      ccfg.AckWait,
		OnRedelivery: func() { n.m.Redeliveries.WithLabelValues(natsjs.NotifierDurable).Inc() },
		Logger:       n.log,
	}, n.cfg.Grace)
}

type job struct {
	msg jetstream.Msg
	ev  domain.PaymentEvent
	// receivedAt is when the gateway stored the push behind ev; zero for
	// replays, whose latency is the operator's, not the pipeline's.
	receivedAt time.Time
	prior      map[string]domain.Delivery
	// heldBefore: per endpoint, the lowest position of the order's held
	// deliveries (shared by the order's jobs; see health.go).
	heldBefore map[string]int
	// notifyURL is the order's own endpoint, replacing the configured ones.
	notifyURL string
	attempts  []domain.Attempt
	// wait is how long until the next attempt still due; 0 = all done.
	wait time.Duration
}

// handle processes one batch (admit, then the batch's turn).
func (n *Notifier) handle(ctx context.Context, msgs []jetstream.Msg) {
	if run := n.admit(msgs); run != nil {
		run(ctx)
	}
}

// admit decodes the batch and takes its place in the queues of its orders
// at once, on natsjs.Consume's loop, so that batches keep the order in which
// JetStream delivered them (see orderLocks); the returned func waits for the
// batch's turn and handles it. nil: nothing left to do.
func (n *Notifier) admit(msgs []jetstream.Msg) func(ctx context.Context) {
	var jobs []*job
	for _, m := range msgs {
		ev, err := domain.Decode(m.Data())
		if err != nil {
			n.m.Deliveries.WithLabelValues("malformed").Inc()
			n.log.Error("unreadable event left in the stream", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		if len(n.cfg.Statuses) > 0 && !n.cfg.Statuses[ev.Status] {
			n.m.Deliveries.WithLabelValues("skipped").Inc()
			_ = m.Ack()
			continue
		}
		jobs = append(jobs, &job{msg: m, ev: ev, receivedAt: receivedAt(m)})
	}
	if len(jobs) == 0 {
		return nil
	}
	// Until this batch's attempts are stored, no other batch decides about
	// the same orders (see orderLocks).
	seq := deliverySeq(jobs[0].msg)
	for _, j := range jobs[1:] {
		seq = min(seq, deliverySeq(j.msg))
	}
	place := n.orders.join(seq, distinctOrders(jobs))
	return func(ctx context.Context) {
		defer place.wait()()
		n.handleJobs(ctx, jobs)
	}
}

// handleJobs delivers one batch's jobs; the batch holds its orders.
func (n *Notifier) handleJobs(ctx context.Context, jobs []*job) {
	// One read for the whole batch (one round trip on Postgres): the
	// orders, to refuse forged events; their notify_urls; and their
	// deliveries: which endpoints already have their push, and the newest
	// status each endpoint has of each order.
	st, err := n.deps.Store.OrderState(ctx, distinctOrders(jobs))
	if err != nil {
		n.log.Error("store unavailable; events will be redelivered", "events", len(jobs), "err", err)
		for _, j := range jobs {
			_ = j.msg.NakWithDelay(n.cfg.StoreRetry)
		}
		return
	}
	jobs = n.screen(jobs, st.Orders)
	if len(jobs) == 0 {
		return
	}
	for _, j := range jobs {
		j.notifyURL = st.NotifyURLs[j.ev.OrderID]
	}
	prior := st.Deliveries
	byEvent := map[string]map[string]domain.Delivery{}
	for _, d := range prior {
		if byEvent[d.EventID] == nil {
			byEvent[d.EventID] = map[string]domain.Delivery{}
		}
		byEvent[d.EventID][d.Endpoint] = d
	}
	latest := newestDelivered(prior)
	hb := heldBefore(prior)
	for _, j := range jobs {
		j.prior = byEvent[j.ev.EventID]
		if hb[j.ev.OrderID] == nil {
			hb[j.ev.OrderID] = map[string]int{}
		}
		j.heldBefore = hb[j.ev.OrderID]
	}

	sem := make(chan struct{}, n.cfg.Workers)
	var wg sync.WaitGroup
	for _, group := range byOrder(jobs) {
		wg.Add(1)
		sem <- struct{}{}
		nw := latest[group[0].ev.OrderID]
		if nw == nil {
			nw = newest{}
		}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, j := range group {
				n.deliver(ctx, j, nw)
				for _, a := range j.attempts {
					if a.Delivered {
						nw.note(a.Endpoint, delivered{j.ev.Position(), j.ev.Status, j.ev.EventID})
					}
				}
			}
		}()
	}
	wg.Wait()

	var all []domain.Attempt
	for _, j := range jobs {
		all = append(all, j.attempts...)
	}
	if len(all) > 0 {
		if _, err := n.deps.Store.RecordAttempts(ctx, all); err != nil {
			// The merchant may have been told already; redelivery may push
			// again (allowed: X-Yzpay-Event-Id lets the merchant dedupe).
			n.log.Error("store unavailable; events will be redelivered", "events", len(jobs), "err", err)
			for _, j := range jobs {
				_ = j.msg.NakWithDelay(n.cfg.StoreRetry)
			}
			return
		}
	}
	for _, j := range jobs {
		switch {
		case j.wait > 0:
			_ = j.msg.NakWithDelay(j.wait)
		default:
			_ = j.msg.Ack()
		}
	}
}

// deliver pushes ev to every endpoint that is due and computes the attempts;
// an endpoint that already has a newer status of the order (nw) gets none.
func (n *Notifier) deliver(ctx context.Context, j *job, nw newest) {
	now := time.Now()
	type due struct {
		ep       *endpoint
		attempts int
	}
	var (
		stack [4]due
		posts = stack[:0]
	)
	for _, ep := range n.endpointsFor(j) {
		if ep.Statuses != nil && !ep.Statuses[j.ev.Status] {
			continue
		}
		d, seen := j.prior[ep.URL]
		if seen && d.State() != domain.DeliveryPending {
			continue
		}
		if newer, ok := nw.supersededBy(ep.URL, j.ev); ok {
			j.attempts = append(j.attempts, n.supersede(j.ev, ep.URL, newer))
			continue
		}
		if a, ok := n.hold(j, ep.URL); ok {
			j.attempts = append(j.attempts, a)
			continue
		}
		if seen && d.NextAttemptAt.After(now.Add(250*time.Millisecond)) {
			// Redelivered early (a replay, or another event's delay): wait.
			j.addWait(d.NextAttemptAt.Sub(now))
			continue
		}
		posts = append(posts, due{ep, d.Attempts})
	}
	record := func(a domain.Attempt) {
		j.attempts = append(j.attempts, a)
		if !a.Delivered && !a.GiveUp {
			j.addWait(time.Until(a.NextAttemptAt))
		}
	}
	if len(posts) == 1 {
		// The usual case, one endpoint: no goroutine to wait for.
		p := posts[0]
		a := n.post(ctx, j.ev, p.ep, p.attempts+1, j.receivedAt)
		n.noteOutcome(ctx, p.ep.URL, a)
		record(a)
		return
	}
	// Several endpoints are posted to in parallel, so that a slow one does
	// not hold up the others.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range posts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := n.post(ctx, j.ev, p.ep, p.attempts+1, j.receivedAt)
			n.noteOutcome(ctx, p.ep.URL, a)
			mu.Lock()
			defer mu.Unlock()
			record(a)
		}()
	}
	wg.Wait()
}

func (j *job) addWait(d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	if j.wait == 0 || d < j.wait {
		j.wait = d
	}
}

// nextDelay is the endpoint's schedule's delay after failed attempt number
// attempt, with jitter, or false when the schedule is exhausted.
func (n *Notifier) nextDelay(ep *endpoint, attempt int) (time.Duration, bool) {
	if attempt > len(ep.RetrySchedule) {
		return 0, false
	}
	d := ep.RetrySchedule[attempt-1]
	if n.cfg.Jitter > 0 {
		d += time.Duration(rand.Float64() * n.cfg.Jitter * float64(d))
	}
	return d, true
}

// receivedAt reads the gateway's acceptance time off a status event; a
// replay, or an event without the header, gives the zero time.
func receivedAt(m jetstream.Msg) time.Time {
	if !strings.HasPrefix(m.Subject(), natsjs.StatusSubject("")) {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, m.Headers().Get(natsjs.HeaderReceivedAt))
	if err != nil {
		return time.Time{}
	}
	return t
}

// deliverySeq is m's JetStream delivery (consumer) sequence, which grows in
// the order messages reach this consumer, redeliveries included; 0 when m
// has no metadata (batches then queue in arrival order).
func deliverySeq(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Consumer
}

// Package httpapi holds the HTTP plumbing every yzpay listener shares: the
// JSON error shape and the one table from error code to HTTP status (README,
// "Error codes"), request ids, per-route metrics, the /healthz, /readyz and
// /metrics endpoints, and a server that shuts down gracefully when its
// context ends.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
)

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // qr_url carries '&'; \u0026 only confuses people reading curl output
	_ = enc.Encode(v)
}

// RequestIDHeader is set on every response.
const RequestIDHeader = "X-Request-Id"

type ctxKey struct{}

// RequestID returns the id Instrument assigned to the request.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(ctxKey{}).(string)
	return s
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection: the push
// receiver sets read deadlines, the checkout page's event stream flushes
// and moves its write deadline.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Instrument wraps h: it sets X-Request-Id (keeping a sane incoming one),
// recovers panics into a 500 and records route metrics. route(r) names the
// route without ids, so no per-order label reaches Prometheus.
func Instrument(h http.Handler, m *metrics.Metrics, log *slog.Logger, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if len(id) == 0 || len(id) > 64 {
			id = newID()
		}
		w.Header().Set(RequestIDHeader, id)
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, id))
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic serving request", "request_id", id, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					// Logged above with the panic value; Error must not log it again.
					Error(sw, r, m, log, domain.Errorf(domain.CodeInternal, internalMessage))
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			rt := route(r)
			m.HTTPRequests.WithLabelValues(rt, strconv.Itoa(sw.status)).Inc()
			m.HTTPRequestDuration.WithLabelValues(rt).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(sw, r)
	})
}

// Check is one readiness probe (the store, NATS).
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// ReadyCacheFor is how long a /readyz answer is reused: probes from every
// load balancer and Prometheus then cost the store and NATS one check a
// second, however often they come.
const ReadyCacheFor = time.Second

// Health serves /healthz (the process is up) and /readyz (every check
// passes within 2 s; 503 with the failing names otherwise). A /readyz
// result is reused for ReadyCacheFor; concurrent callers wait for the one
// check in progress rather than starting their own.
func Health(checks ...Check) (healthz, readyz http.HandlerFunc) {
	healthz = func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	var (
		mu     sync.Mutex
		at     time.Time
		failed map[string]string
	)
	readyz = func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if at.IsZero() || time.Since(at) >= ReadyCacheFor {
			// Not the caller's context: a prober that hangs up must not
			// leave a cancelled check cached for everyone else.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
			f := map[string]string{}
			for _, c := range checks {
				if err := c.Fn(ctx); err != nil {
					f[c.Name] = "unavailable"
				}
			}
			cancel()
			failed, at = f, time.Now()
		}
		f := failed
		mu.Unlock()
		if len(f) > 0 {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failed": f})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
	return healthz, readyz
}

// OpsMux serves /healthz, /readyz and /metrics: the whole listener of the
// tradefetcher and the notifier.
func OpsMux(m *metrics.Metrics, log *slog.Logger, checks ...Check) http.Handler {
	mux := http.NewServeMux()
	hz, rz := Health(checks...)
	mux.Handle("GET /healthz", hz)
	mux.Handle("GET /readyz", rz)
	mux.Handle("GET /metrics", m.Handler())
	return Instrument(mux, m, log, func(r *http.Request) string {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			return r.URL.Path
		}
		return "unmatched" // arbitrary paths must not mint new series
	})
}

// Listen opens addr now, so a bad address fails at start and ":0" can be
// read back before serving.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx ends, then shuts down, giving in-flight
// requests up to grace to finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

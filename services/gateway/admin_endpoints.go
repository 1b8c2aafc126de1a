package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
)

// endpointJSON is a merchant endpoint's health (README, "Admin API").
type endpointJSON struct {
	Endpoint     string `json:"endpoint"`
	State        string `json:"state"`
	Since        string `json:"since"`
	FailingSince string `json:"failing_since"`
	LastError    string `json:"last_error"`
	NextProbeAt  string `json:"next_probe_at"`
	Pending      int    `json:"pending"`
}

func toEndpointJSON(h domain.EndpointHealth) endpointJSON {
	next := ""
	if h.State == domain.EndpointPaused {
		next = rfc3339(h.NextProbeAt)
	}
	return endpointJSON{Endpoint: config.RedactURL(h.Endpoint), State: h.State, Since: rfc3339(h.Since),
		FailingSince: rfc3339(h.FailingSince), LastError: h.LastError, NextProbeAt: next, Pending: h.Pending}
}

// listEndpoints shows every endpoint the notifier has seen fail at least
// once, paused or active.
func (g *Gateway) listEndpoints(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	hs, err := g.deps.Store.ListEndpointHealth(r.Context())
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	out := make([]endpointJSON, 0, len(hs))
	for _, h := range hs {
		out = append(out, toEndpointJSON(h))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"endpoints": out})
}

// resumeEndpoint makes a paused endpoint active by hand (?url= as in
// PUSH_API, or as the listing shows it); the notifier then sends its held
// deliveries again.
func (g *Gateway) resumeEndpoint(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	url := r.URL.Query().Get("url")
	if url != "" {
		// The listing redacts secrets in the URL: accept that form too.
		if hs, err := g.deps.Store.ListEndpointHealth(r.Context()); err == nil {
			for _, h := range hs {
				if h.Endpoint != url && config.RedactURL(h.Endpoint) == url {
					url = h.Endpoint
					break
				}
			}
		}
	}
	h, changed, err := g.resumeEndpointNow(r.Context(), url)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"endpoint": toEndpointJSON(h), "resumed": changed})
}

// resumeEndpointNow resumes endpoint (its full URL) for the admin API and
// the console alike, so both answer and log a resume the same way.
func (g *Gateway) resumeEndpointNow(ctx context.Context, endpoint string) (domain.EndpointHealth, bool, error) {
	h, changed, err := g.deps.Store.ResumeEndpoint(ctx, endpoint, time.Now())
	if errors.Is(err, domain.ErrNotFound) || (err == nil && endpoint == "") {
		err = domain.Wrap(domain.ErrNotFound, domain.CodeEndpointNotFound, "no endpoint health for that url (GET /api/admin/endpoints lists them)")
	}
	if err != nil {
		return h, false, err
	}
	if changed {
		g.log.Warn("endpoint resumed by operator: the notifier sends its held deliveries again", "endpoint", config.RedactURL(h.Endpoint))
	}
	return h, changed, nil
}

package store

import (
	"time"

	"github.com/yzpay/yzpay/shared/domain"
)

// HealthPolicy is how NoteEndpoint turns attempts into endpoint states
// (ENDPOINT_PAUSE_AFTER, ENDPOINT_PROBE_INTERVAL).
type HealthPolicy struct {
	PauseAfter    time.Duration
	ProbeInterval time.Duration
}

// ApplyOutcome is NoteEndpoint's rule, shared by the backends: a success
// clears the failure streak and resumes a paused endpoint; a failure that
// ends a streak of PauseAfter pauses an active one, with its first probe
// ProbeInterval later. h is the stored row (zero Endpoint: none yet).
func ApplyOutcome(h domain.EndpointHealth, o domain.EndpointOutcome, p HealthPolicy) (domain.EndpointHealth, bool) {
	if h.Endpoint == "" {
		h = domain.EndpointHealth{Endpoint: o.Endpoint, State: domain.EndpointActive, Since: o.At}
	}
	changed := false
	if o.OK {
		h.FailingSince, h.LastError = time.Time{}, ""
		if h.State == domain.EndpointPaused {
			h.State, h.Since, h.NextProbeAt, changed = domain.EndpointActive, o.At, time.Time{}, true
		}
	} else {
		if h.FailingSince.IsZero() || o.At.Before(h.FailingSince) {
			h.FailingSince = o.At
		}
		h.LastError = TruncateError(o.Error)
		if h.State == domain.EndpointActive && o.At.Sub(h.FailingSince) >= p.PauseAfter {
			h.State, h.Since, h.NextProbeAt, changed = domain.EndpointPaused, o.At, o.At.Add(p.ProbeInterval), true
		}
	}
	h.UpdatedAt = o.At
	return h, changed
}

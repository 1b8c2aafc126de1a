package domain

import "time"

// Endpoint health states (services/notifier/health.go).
const (
	EndpointActive = "active"
	// EndpointPaused: the endpoint failed every attempt for
	// ENDPOINT_PAUSE_AFTER; its deliveries are parked (held) in the store
	// and only a probe, the oldest of them, is sent now and then.
	EndpointPaused = "paused"
)

// EndpointHealth is one merchant endpoint's health as every notifier
// replica sees it.
type EndpointHealth struct {
	Endpoint string
	State    string // EndpointActive or EndpointPaused
	// Since: when State was entered.
	Since time.Time
	// FailingSince: the first failed attempt since the last success; zero
	// while the endpoint answers.
	FailingSince time.Time
	LastError    string
	// NextProbeAt: when a paused endpoint may be probed next (a replica
	// claims the probe by moving it on).
	NextProbeAt time.Time
	// Pending: deliveries to the endpoint not yet delivered, given up or
	// superseded (filled by listings).
	Pending   int
	UpdatedAt time.Time
}

// EndpointOutcome is one attempt's result as endpoint health counts it.
type EndpointOutcome struct {
	Endpoint string
	OK       bool
	Error    string
	At       time.Time
}

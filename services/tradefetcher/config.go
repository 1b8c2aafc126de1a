package tradefetcher

import (
	"errors"
	"time"

	"github.com/yzpay/yzpay/shared/config"
)

// DefaultMetricsAddr is the tradefetcher's METRICS_ADDR default.
const DefaultMetricsAddr = ":9101"

// Defaults of ORDER_TTL and RECONCILE_INTERVAL.
const (
	DefaultOrderTTL          = 30 * time.Minute
	DefaultReconcileInterval = time.Minute
)

// FromEnv reads FETCH_RETRY_SCHEDULE, ORDER_TTL and RECONCILE_INTERVAL.
func FromEnv(env config.Env) (Config, error) {
	sched, err := env.Durations("FETCH_RETRY_SCHEDULE", DefaultRetrySchedule)
	if err != nil {
		return Config{}, err
	}
	ttl, err := env.Duration("ORDER_TTL", DefaultOrderTTL)
	if err != nil {
		return Config{}, err
	}
	every, err := env.Duration("RECONCILE_INTERVAL", DefaultReconcileInterval)
	if err != nil {
		return Config{}, err
	}
	if ttl <= 0 || every <= 0 {
		return Config{}, errors.New("ORDER_TTL and RECONCILE_INTERVAL must be positive durations")
	}
	return Config{RetrySchedule: sched, Sweep: SweepConfig{Interval: every, OrderTTL: ttl}}, nil
}

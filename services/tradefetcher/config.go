package tradefetcher

import "github.com/yzpay/yzpay/shared/config"

// DefaultMetricsAddr is the tradefetcher's METRICS_ADDR default.
const DefaultMetricsAddr = ":9101"

// FromEnv reads FETCH_RETRY_SCHEDULE.
func FromEnv(env config.Env) (Config, error) {
	sched, err := env.Durations("FETCH_RETRY_SCHEDULE", DefaultRetrySchedule)
	if err != nil {
		return Config{}, err
	}
	return Config{RetrySchedule: sched}, nil
}

package notifier

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/store"
)

// DefaultMetricsAddr is the notifier's METRICS_ADDR default.
const DefaultMetricsAddr = ":9102"

// FromEnv reads SELF_SECRET, PUSH_API, PUSH_FORMAT, PUSH_RETRY_SCHEDULE and
// PUSH_STATUSES. allowNoEndpoints lets `yzpay serve --sandbox` fill in its
// demo merchant instead.
func FromEnv(env config.Env, allowNoEndpoints bool) (Config, error) {
	var missing config.Missing
	cfg := Config{
		Secret:    env.Get("SELF_SECRET", ""),
		Endpoints: env.List("PUSH_API", ";"),
		Format:    strings.ToLower(env.Get("PUSH_FORMAT", FormatForm)),
	}
	if cfg.Secret == "" {
		missing = append(missing, "SELF_SECRET")
	}
	if len(cfg.Endpoints) == 0 && !allowNoEndpoints {
		missing = append(missing, "PUSH_API")
	}
	if len(missing) > 0 {
		return cfg, missing
	}
	for _, ep := range cfg.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, fmt.Errorf("PUSH_API: every endpoint must be an http(s) URL; %q is not", config.RedactURL(ep))
		}
	}
	if cfg.Format != FormatForm && cfg.Format != FormatJSON {
		return cfg, errors.New("PUSH_FORMAT must be form or json")
	}
	sched, err := env.Durations("PUSH_RETRY_SCHEDULE", DefaultRetrySchedule)
	if err != nil {
		return cfg, err
	}
	cfg.RetrySchedule = sched
	if st := env.List("PUSH_STATUSES", ","); len(st) > 0 {
		cfg.Statuses = map[string]bool{}
		for _, s := range st {
			s = strings.ToUpper(s)
			if store.Rank(s) == 0 {
				return cfg, fmt.Errorf("PUSH_STATUSES: %q is not a Youzan trade status yzpay tracks", s)
			}
			cfg.Statuses[s] = true
		}
	}
	return cfg, nil
}

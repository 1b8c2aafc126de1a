package gateway

import (
	"github.com/yzpay/yzpay/shared/config"
)

// DefaultAddr is GATEWAY_ADDR's default.
const DefaultAddr = ":8080"

// FromEnv reads GATEWAY_API_KEY and ADMIN_API_KEY. The Youzan credentials
// are filled by the caller, which knows whether the sandbox provides them.
// Outside sandbox mode a missing GATEWAY_API_KEY is a config.Missing error.
func FromEnv(env config.Env, sandbox bool) (Config, error) {
	cfg := Config{
		APIKey:   env.Get("GATEWAY_API_KEY", ""),
		AdminKey: env.Get("ADMIN_API_KEY", ""),
	}
	if cfg.APIKey == "" && !sandbox {
		return cfg, config.Missing{"GATEWAY_API_KEY"}
	}
	return cfg, nil
}

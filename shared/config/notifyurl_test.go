package config

import (
	"strings"
	"testing"
)

// TestNotifyURLHosts: both lists are read lower-cased; a private host must
// also be a notify host (listing it is the explicit choice), and a value
// with a scheme, port or wildcard is refused at start.
func TestNotifyURLHosts(t *testing.T) {
	base := map[string]string{"SELF_SECRET": "s", "PUSH_API": "https://m.example/n", "NATS_URL": "nats://127.0.0.1:4222", "DATABASE_URL": "postgres://x@127.0.0.1/x",
		"NOTIFY_URL_HOSTS": "Shop.Example,127.0.0.1", "NOTIFY_URL_PRIVATE_HOSTS": "127.0.0.1"}
	n, err := LoadNotifier(FromMap(base))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(n.NotifyURLHosts, ",") != "shop.example,127.0.0.1" || strings.Join(n.NotifyURLPrivateHosts, ",") != "127.0.0.1" {
		t.Errorf("hosts %v private %v", n.NotifyURLHosts, n.NotifyURLPrivateHosts)
	}
	for k, v := range map[string]string{"NOTIFY_URL_PRIVATE_HOSTS": "10.0.0.1", "NOTIFY_URL_HOSTS": "https://shop.example"} {
		env := map[string]string{}
		for a, b := range base {
			env[a] = b
		}
		env[k] = v
		if _, err := LoadNotifier(FromMap(env)); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: err %v, want one naming %s", k, v, err, k)
		}
	}
}

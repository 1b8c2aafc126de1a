package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLoadReportsEveryMissingVariableAtOnce(t *testing.T) {
	_, err := LoadGateway(FromMap(nil))
	var m Missing
	if !errors.As(err, &m) {
		t.Fatalf("err = %v, want Missing", err)
	}
	for _, want := range []string{"GATEWAY_API_KEY", "YOUZANYUN_CLIENT_ID", "YOUZANYUN_CLIENT_SECRET", "YOUZAN_KDT_ID", "NATS_URL", "DATABASE_URL"} {
		if !slices.Contains(m, want) {
			t.Errorf("missing %v does not name %s", m, want)
		}
	}
}

func TestLoadNamesTheInvalidSetting(t *testing.T) {
	for name, value := range map[string]string{
		"ORDER_TTL": "banana", "PUSH_FORMAT": "xml", "NATS_REPLICAS": "9", "LOG_LEVEL": "loud",
		"PUSH_STATUSES": "PAID_TWICE", "PUSH_API": "ftp://x", "YOUZAN_API_BASE": "nope",
	} {
		_, err := LoadServe(FromMap(map[string]string{name: value}), false)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: err = %v, want an ErrInvalid naming %s", name, value, err, name)
		}
	}
}

func TestServeSharesOneLoadAndKeepsTheSandboxSecretInDataDir(t *testing.T) {
	s, err := LoadServe(FromMap(map[string]string{"DATA_DIR": "/srv/d", "ORDER_TTL": "5m"}), true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Notifier.Secret != "" || s.SecretSource != "/srv/d/"+SandboxSecretFile || !s.SandboxSecret || !s.DemoMerchant {
		t.Errorf("sandbox defaults not applied: %+v", s)
	}
	if s.Gateway.Broker != s.Notifier.Broker || s.Tradefetcher.Broker != s.Gateway.Broker {
		t.Error("the three services got different brokers from one load")
	}
	if s.Tradefetcher.Sweep.OrderTTL.String() != "5m0s" {
		t.Errorf("ORDER_TTL = %s", s.Tradefetcher.Sweep.OrderTTL)
	}
}

func TestBannersShowNoSecret(t *testing.T) {
	env := FromMap(map[string]string{
		"GATEWAY_API_KEY": "apikey-123", "ADMIN_API_KEY": "adminkey-456", "YOUZANYUN_CLIENT_ID": "cid",
		"YOUZANYUN_CLIENT_SECRET": "ysecret-789", "YOUZAN_KDT_ID": "1", "NATS_URL": "nats://user:natspw@h:4222",
		"DATABASE_URL": "postgres://u:dbpw@h/db", "SELF_SECRET": "self-000", "PUSH_API": "https://m.example/cb?token=tok-111",
	})
	var b strings.Builder
	g, err := LoadGateway(env)
	if err != nil {
		t.Fatal(err)
	}
	g.Banner(&b)
	f, err := LoadTradefetcher(env)
	if err != nil {
		t.Fatal(err)
	}
	f.Banner(&b)
	n, err := LoadNotifier(env)
	if err != nil {
		t.Fatal(err)
	}
	n.Banner(&b)
	for _, s := range []string{"apikey-123", "adminkey-456", "ysecret-789", "natspw", "dbpw", "self-000", "tok-111"} {
		if strings.Contains(b.String(), s) {
			t.Errorf("banner shows secret %q:\n%s", s, b.String())
		}
	}
	if !strings.Contains(b.String(), "https://m.example/cb") {
		t.Errorf("banner should name the endpoint:\n%s", b.String())
	}
}

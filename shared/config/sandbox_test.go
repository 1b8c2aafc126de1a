package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// A production envrc next to `yzpay serve --sandbox`: what sandbox mode
// takes from it and what it refuses to.
func TestSandboxNeverUsesProductionSettings(t *testing.T) {
	prod := map[string]string{
		"DATABASE_URL": "postgres://u:pw@db.prod/yzpay", "NATS_URL": "nats://u:pw@nats.prod:4222",
		"SELF_SECRET": "prod-self-secret", "PUSH_API": "http://127.0.0.1:3000/notify", "DATA_DIR": "/tmp/sbx",
	}
	s, err := LoadServe(FromMap(prod), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []struct {
		name   string
		db     string
		broker Broker
	}{{"gateway", s.Gateway.DatabaseURL, s.Gateway.Broker}, {"tradefetcher", s.Tradefetcher.DatabaseURL, s.Tradefetcher.Broker},
		{"notifier", s.Notifier.DatabaseURL, s.Notifier.Broker}} {
		if svc.db != "" || svc.broker.NATSURL != "" {
			t.Errorf("%s uses production DATABASE_URL %q / NATS_URL %q in sandbox mode", svc.name, svc.db, svc.broker.NATSURL)
		}
	}
	if s.Notifier.Secret == "prod-self-secret" {
		t.Error("sandbox notifications would be signed with the production SELF_SECRET")
	}
	if !s.Notifier.Sandbox {
		t.Error("sandbox notifications are not marked X-Yzpay-Sandbox")
	}
	if s.Gateway.Addr != DefaultSandboxGatewayAddr {
		t.Errorf("sandbox listens on %s, want %s", s.Gateway.Addr, DefaultSandboxGatewayAddr)
	}
	if s.SandboxExposed {
		t.Error("default sandbox address reported as exposed")
	}
	for _, n := range []string{"DATABASE_URL", "NATS_URL", "SELF_SECRET"} {
		if !slices.Contains(s.SandboxIgnored, n) {
			t.Errorf("SandboxIgnored %v does not name %s (the start-up warning would not)", s.SandboxIgnored, n)
		}
	}
	if len(s.Notifier.Endpoints) != 1 || s.DemoMerchant {
		t.Errorf("PUSH_API at a local merchant must still be honoured: %v", s.Notifier.Endpoints)
	}

	// Explicit choices.
	s, err = LoadServe(FromMap(map[string]string{"SANDBOX_SECRET": "sbx", "SELF_SECRET": "prod", "GATEWAY_ADDR": ":8080"}), true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Notifier.Secret != "sbx" || s.SecretSource != "SANDBOX_SECRET" || !s.SandboxExposed || s.Gateway.Addr != ":8080" {
		t.Errorf("SANDBOX_SECRET / GATEWAY_ADDR not honoured: secret from %s, exposed %v, addr %s", s.SecretSource, s.SandboxExposed, s.Gateway.Addr)
	}
	s, err = LoadServe(FromMap(map[string]string{"SELF_SECRET": "prod", "SANDBOX_USE_SELF_SECRET": "1", "GATEWAY_ADDR": "127.0.0.1:0"}), true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Notifier.Secret != "prod" || s.SandboxExposed || slices.Contains(s.SandboxIgnored, "SELF_SECRET") {
		t.Errorf("SANDBOX_USE_SELF_SECRET=1 must sign with SELF_SECRET: %+v", s)
	}
	if _, err := LoadServe(FromMap(map[string]string{"SANDBOX_USE_SELF_SECRET": "1"}), true); !errors.Is(err, ErrInvalid) {
		t.Errorf("SANDBOX_USE_SELF_SECRET without SELF_SECRET: err = %v", err)
	}
}

func TestSandboxRefusesProductionYouzanCredentials(t *testing.T) {
	_, err := LoadServe(FromMap(map[string]string{
		"YOUZANYUN_CLIENT_ID": "cid", "YOUZANYUN_CLIENT_SECRET": "very-secret", "YOUZAN_KDT_ID": "1",
	}), true)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	msg := err.Error()
	for _, n := range []string{"YOUZANYUN_CLIENT_SECRET", "YOUZANYUN_CLIENT_ID", "YOUZAN_KDT_ID", "sandbox"} {
		if !strings.Contains(msg, n) {
			t.Errorf("error %q does not name %s", msg, n)
		}
	}
	if strings.Contains(msg, "very-secret") {
		t.Errorf("error shows the secret: %q", msg)
	}
	// The client id alone (no secret) is no production credential.
	if _, err := LoadServe(FromMap(map[string]string{"YOUZANYUN_CLIENT_ID": "cid"}), true); err != nil {
		t.Errorf("client id alone: %v", err)
	}
}

func TestOpsAddr(t *testing.T) {
	base := map[string]string{"YOUZANYUN_CLIENT_ID": "c", "YOUZANYUN_CLIENT_SECRET": "s", "YOUZAN_KDT_ID": "1",
		"GATEWAY_API_KEY": "k", "NATS_URL": "nats://h:4222", "DATABASE_URL": "postgres://h/db"}
	with := func(kv ...string) Env {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return FromMap(m)
	}
	for _, c := range []struct {
		env  Env
		want string
	}{
		{with(), DefaultOpsAddr},
		{with("OPS_ADDR", ":9100"), ":9100"},
		{with("OPS_ADDR", "same"), OpsSame},
		{with("OPS_ADDR", ":8080"), OpsSame}, // the gateway's own address
	} {
		g, err := LoadGateway(c.env)
		if err != nil {
			t.Fatal(err)
		}
		if g.OpsAddr != c.want {
			t.Errorf("OPS_ADDR: got %q, want %q", g.OpsAddr, c.want)
		}
	}
	if _, err := LoadGateway(with("OPS_ADDR", "nine-thousand")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "OPS_ADDR") {
		t.Errorf("bad OPS_ADDR: %v", err)
	}
	s, err := LoadServe(FromMap(nil), true)
	if err != nil || s.Gateway.OpsAddr != OpsSame {
		t.Errorf("sandbox serve: ops %q, err %v; want %q", s.Gateway.OpsAddr, err, OpsSame)
	}
}

func TestNATSCredentials(t *testing.T) {
	if _, err := LoadNotifier(FromMap(map[string]string{"SELF_SECRET": "s", "PUSH_API": "http://m/x",
		"NATS_URL": "nats://h:4222", "DATABASE_URL": "postgres://h/db", "NATS_CREDS": "/nonexistent/yz.creds"})); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "NATS_CREDS") {
		t.Errorf("missing creds file: %v", err)
	}
	n, err := LoadNotifier(FromMap(map[string]string{"SELF_SECRET": "s", "PUSH_API": "http://m/x",
		"NATS_URL": "nats://yzpay:natspw-123@h:4222", "DATABASE_URL": "postgres://h/db"}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	n.Banner(&b)
	if strings.Contains(b.String(), "natspw-123") || !strings.Contains(b.String(), "user and password (set)") {
		t.Errorf("banner:\n%s", b.String())
	}
}

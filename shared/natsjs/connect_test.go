package natsjs_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/natsjs/embedded"
)

// A broker that requires a user and password: without them Connect gives
// up at once with one line that says so (waiting would not help) and shows
// no password; with them in NATS_URL it connects and sets up the streams.
func TestConnectWithCredentials(t *testing.T) {
	srv, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), Listen: true, Port: -1,
		Username: "yzpay", Password: "natspw-s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	plain := srv.ClientURL()

	for name, u := range map[string]string{"none": plain, "wrong password": withUser(t, plain, "yzpay", "wrong-pw")} {
		start := time.Now()
		_, _, err := natsjs.ConnectBroker(ctx, config.Broker{NATSURL: u, Replicas: 1}, "test", 20*time.Second, log)
		if err == nil {
			t.Fatalf("%s: connected without the right credentials", name)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "refused the credentials") || strings.Contains(msg, "wrong-pw") {
			t.Errorf("%s: error %q: want one line saying the credentials were refused, without the password", name, msg)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: gave up after %s; a refusal should end the wait at once", name, d)
		}
	}

	nc, js, err := natsjs.ConnectBroker(ctx, config.Broker{NATSURL: withUser(t, plain, "yzpay", "natspw-s3cret"), Replicas: 1}, "test", 10*time.Second, log)
	if err != nil {
		t.Fatalf("with user and password: %v", err)
	}
	defer nc.Close()
	if _, err := js.Stream(ctx, natsjs.PaymentStream); err != nil {
		t.Errorf("streams not set up: %v", err)
	}
}

func withUser(t *testing.T, raw, user, pw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pw)
	return u.String()
}

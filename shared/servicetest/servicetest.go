// Package servicetest gives one service's unit tests the real parts it runs
// on, as the services' own tests need them: a migrated SQLite store and an
// embedded JetStream with yzpay's streams, both gone when the test ends.
// Only _test files import it (cmd/yzpay/deps_test.go keeps it out of the
// binaries).
package servicetest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/natsjs/embedded"
	"github.com/yzpay/yzpay/shared/store/sqlite"
)

// Backends are a test's store and broker.
type Backends struct {
	Store *sqlite.Store
	Conn  *nats.Conn
	JS    jetstream.JetStream
	// StopBroker shuts the embedded server down (tests of a broker outage);
	// calling it again, or the test's cleanup after it, does nothing.
	StopBroker func()
}

// Start opens a migrated SQLite store and an embedded JetStream with the
// streams set up, under t's temporary directories.
func Start(t testing.TB) Backends {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(ns.Shutdown) }
	t.Cleanup(stop)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.Open(ctx, nc, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return Backends{Store: st, Conn: nc, JS: js, StopBroker: stop}
}

// Eventually waits until cond holds, failing the test after 10 s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

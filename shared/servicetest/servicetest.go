// Package servicetest gives one service's unit tests the real parts it runs
// on, as the services' own tests need them: a migrated SQLite store and an
// embedded JetStream with yzpay's streams, both gone when the test ends;
// and a bare embedded JetStream for the tests of the broker plumbing.
// Only _test files import it (cmd/yzpay/deps_test.go keeps it out of the
// binaries).
package servicetest

import (
	"context"
	"errors"
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

// JetStream starts an embedded JetStream server without streams, under t's
// temporary directory, and connects to it; both stop when the test ends.
func JetStream(t testing.TB) (*embedded.Server, jetstream.JetStream) {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return srv, js
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

// Settled reports whether durable has handled every message stream held
// when it was asked: nothing pending, nothing waiting for an ack or a
// redelivery, and the ack floor at the stream's last message. The floor
// matters because the server counts a newly stored message as pending a
// moment after acknowledging its publish; pending counts alone can read 0
// while the last publish is still on its way to the consumer.
func Settled(t testing.TB, js jetstream.JetStream, stream, durable string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Consumer(ctx, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= si.State.LastSeq
}

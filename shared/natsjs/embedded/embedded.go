// Package embedded runs a JetStream server inside the process: the broker of
// `yzpay serve` when NATS_URL is unset, and of tests that need to stop and
// restart a real broker.
package embedded

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure the server.
type Options struct {
	StoreDir string // JetStream file store; required
	// Listen opens a TCP listener on Host:Port (Port -1 = random). Without it
	// the server is reachable only in-process, which is what `yzpay serve`
	// wants: no public listener nobody asked for.
	Listen bool
	Host   string
	Port   int
	// Username and Password, when set, are required of every client (tests
	// of NATS credentials; `yzpay serve` leaves them empty).
	Username string
	Password string
	// Name is the server's name, unique within a cluster; default
	// "yzpay-embedded".
	Name string
	// Cluster, when its Name is set, makes the server one node of a
	// JetStream cluster (tests start three on loopback ports).
	Cluster Cluster
}

// Cluster is a node's membership of a NATS cluster.
type Cluster struct {
	Name   string
	Port   int      // route listener on Host
	Routes []string // every node's route URL, nats://host:port (its own is ignored)
}

// Server is a running embedded server.
type Server struct {
	srv  *server.Server
	opts Options
}

// Start launches the server and waits until it accepts clients.
func Start(o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required")
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	name := o.Name
	if name == "" {
		name = "yzpay-embedded"
	}
	so := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		Host:       host,
		Port:       o.Port,
		NoSigs:     true,
		NoLog:      true,
		DontListen: !o.Listen,
		// Big enough for yzpay's payloads; the default is 1 MiB as well.
		MaxPayload: 1 << 20,
		Username:   o.Username,
		Password:   o.Password,
	}
	if o.Listen && o.Port == 0 {
		so.Port = server.RANDOM_PORT
	}
	if o.Cluster.Name != "" {
		so.Cluster = server.ClusterOpts{Name: o.Cluster.Name, Host: host, Port: o.Cluster.Port}
		for _, r := range o.Cluster.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embedded nats: route %q: %w", r, err)
			}
			so.Routes = append(so.Routes, u)
		}
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: new server: %w", err)
	}
	// The server reports why it cannot start (JetStream's store directory
	// not writable, the port taken) only to its logger, and then never
	// becomes ready: catch that, rather than wait 30 s to say nothing.
	fatal := &fatalLogger{ch: make(chan string, 1)}
	srv.SetLogger(fatal, false, false)
	go srv.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-fatal.ch:
			srv.Shutdown()
			return nil, fmt.Errorf("embedded nats (store %s): %s", o.StoreDir, msg)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return nil, errors.New("embedded nats: server not ready after 30s")
		}
	}
	return &Server{srv: srv, opts: o}, nil
}

// fatalLogger keeps the first fatal message and drops everything else, as
// NoLog did.
type fatalLogger struct{ ch chan string }

func (l *fatalLogger) Fatalf(format string, v ...any) {
	select {
	case l.ch <- fmt.Sprintf(format, v...):
	default:
	}
}
func (*fatalLogger) Noticef(string, ...any) {}
func (*fatalLogger) Warnf(string, ...any)   {}
func (*fatalLogger) Errorf(string, ...any)  {}
func (*fatalLogger) Debugf(string, ...any)  {}
func (*fatalLogger) Tracef(string, ...any)  {}

// ClientURL is the TCP URL, "" when not listening.
func (s *Server) ClientURL() string {
	if !s.opts.Listen {
		return ""
	}
	return s.srv.ClientURL()
}

// Connect opens a client connection (in-process when not listening).
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if s.opts.Listen {
		return nats.Connect(s.srv.ClientURL(), opts...)
	}
	return nats.Connect("", append(opts, nats.InProcessServer(s.srv))...)
}

// Name is the server's name, as JetStream reports stream leaders.
func (s *Server) Name() string { return s.srv.Name() }

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

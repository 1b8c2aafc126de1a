package gateway

import (
	"bufio"
	"net"
	"net/http"
	"time"
)

// eventStream is one open Server-Sent Events stream: send writes a frame
// and reports false once the client is gone; close ends the stream.
type eventStream struct {
	send  func(frame string) bool
	close func()
	// hijacked: the stream owns the connection, and may outlive the
	// handler (net/http no longer touches it).
	hijacked bool
}

// openEventStream answers w as a Server-Sent Events stream. On HTTP/1.x it
// takes the connection over from net/http (hijacks it): net/http otherwise
// keeps a second goroutine per connection reading in the background, and
// a page would cost two goroutines instead of the handler's one. Where
// that is not possible (HTTP/2, a writer that cannot hijack) it falls back
// to startEventStream on the ResponseWriter.
//
// A hijacked stream learns of a gone client only from a failed write, at
// the latest on the keep-alive after next; the request's context no longer
// ends when the client leaves, and the server's Shutdown no longer waits
// for (or closes) the stream.
func openEventStream(w http.ResponseWriter, r *http.Request) eventStream {
	if r.ProtoMajor == 1 {
		if es, ok := hijackEventStream(w); ok {
			return es
		}
	}
	return eventStream{send: startEventStream(w), close: func() {}}
}

func hijackEventStream(w http.ResponseWriter) (eventStream, bool) {
	// The controller finds the connection under middleware writers
	// (httpapi's statusWriter has Unwrap).
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return eventStream{}, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	// The body ends when the connection does: no chunking to write, and
	// no further request can follow on this connection.
	h.Set("Connection", "close")
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	// The status is never written through w, so the request's metrics
	// record the default 200, which is what the client gets.
	// Drop net/http's buffers (rw): frames go straight to the connection,
	// and whatever the client sends after its request is never read.
	_ = rw
	head := bufio.NewWriterSize(&deadlineWriter{conn}, 512)
	_, _ = head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(head)
	_, _ = head.WriteString("\r\n")
	if head.Flush() != nil {
		_ = conn.Close()
		return eventStream{send: func(string) bool { return false }, close: func() {}, hijacked: true}, true
	}
	dw := &deadlineWriter{conn}
	return eventStream{
		send: func(frame string) bool {
			_, err := dw.Write([]byte(frame))
			return err == nil
		},
		close:    func() { _ = conn.Close() },
		hijacked: true,
	}, true
}

// deadlineWriter gives every write to a hijacked connection its own
// deadline, so a client that stops reading cannot hold the stream.
type deadlineWriter struct{ c net.Conn }

func (d *deadlineWriter) Write(b []byte) (int, error) {
	_ = d.c.SetWriteDeadline(time.Now().Add(keepAlive + 10*time.Second))
	return d.c.Write(b)
}

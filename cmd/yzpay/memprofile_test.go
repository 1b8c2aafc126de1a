package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// --memprofile writes a heap profile at start and again once the live heap
// has grown, with the goroutines' stacks beside it.
func TestHeapSnapshotsFollowThePeak(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.prof")
	stop, err := startHeapSnapshots(path, 5*time.Millisecond, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stop() }()
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(first, []byte{0x1f, 0x8b}) {
		t.Fatalf("heap profile is not a gzipped pprof profile: % x", first[:min(len(first), 8)])
	}
	g, err := os.ReadFile(path + ".goroutines")
	if err != nil || !strings.HasPrefix(string(g), "goroutine profile:") {
		t.Fatalf("goroutines file: %v, %.40q", err, g)
	}

	// Grow the live heap well past anything seen so far; the next check
	// must write a new profile.
	keep := make([][]byte, 0, 64)
	for range 64 {
		keep = append(keep, make([]byte, 1<<20))
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		runtime.GC()
		b, err := os.ReadFile(path)
		if err == nil && !bytes.Equal(b, first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new heap profile after the live heap grew by 64 MiB")
		}
		<-tick.C
	}
	runtime.KeepAlive(keep)
	stop()
	stop = func() {}
	// Nothing but the profile and its goroutines file is left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 2 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		t.Fatalf("files left: %v", names)
	}
}

// A profile that cannot be written fails the start, not a minute later.
func TestHeapSnapshotsUnwritable(t *testing.T) {
	_, err := startHeapSnapshots(filepath.Join(t.TempDir(), "missing", "heap.prof"), time.Second, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "memprofile") {
		t.Fatalf("err = %v, want a memprofile error", err)
	}
}

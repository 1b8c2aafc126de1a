package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"

	"github.com/yzpay/yzpay/shared/process"
)

// liveHeapMetric is the heap marked live by the last GC: what the heap
// profile's in-use figures describe too.
const liveHeapMetric = "/gc/heap/live:bytes"

// startHeapSnapshots writes a heap profile to path whenever the live heap,
// read every interval, is larger than at any earlier reading, so that the
// file describes the process at its biggest rather than at exit, when a
// backlog has drained. Each profile replaces the last one whole (written
// beside it, then renamed), so a reader never sees half a profile. Reading
// one runtime metric a second costs nothing measurable; a profile is written
// only while the heap grows.
func startHeapSnapshots(path string, interval time.Duration, stderr io.Writer) (stop func(), err error) {
	path, err = filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("memprofile: %w", err)
	}
	// One sample per 64 KiB allocated instead of 512 KiB: a finer picture
	// of a heap of a few tens of MiB, for a little more CPU (opt-in only).
	runtime.MemProfileRate = 64 << 10
	// Fail at start, not a minute later, when the file cannot be written.
	if err := writeHeapProfile(path); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: liveHeapMetric}}
		var peak uint64
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				continue
			}
			if live := sample[0].Value.Uint64(); live > peak {
				peak = live
				if err := writeHeapProfile(path); err != nil {
					fmt.Fprintln(stderr, "yzpay serve:", process.Line(err))
					return
				}
			}
		}
	}()
	return func() { close(done); <-finished }, nil
}

// writeHeapProfile writes the heap profile to path and the goroutines'
// stacks beside it (path.goroutines, as text): under a backlog the stacks
// are a good part of the memory, and which goroutines hold them is in the
// latter only.
func writeHeapProfile(path string) error {
	if err := writeProfile("heap", 0, path); err != nil {
		return err
	}
	return writeProfile("goroutine", 1, path+".goroutines")
}

func writeProfile(name string, debug int, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("memprofile: %w", err)
	}
	werr := pprof.Lookup(name).WriteTo(f, debug)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("memprofile %s: %w", path, werr)
	}
	return nil
}

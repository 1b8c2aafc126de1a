//go:build unix

package cputime

import (
	"syscall"
	"time"
)

// Self is the CPU time of this whole process, all threads and the GC
// included, to the microsecond; ok is false where it cannot be read.
func Self() (d time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

//go:build unix

package qrimage

import "syscall"

// processCPU is the CPU time of the whole process, all threads and the GC
// included: go-qrcode scored its masks on several goroutines, so ns/op
// (wall time) understated what an image cost on a busy machine.
func processCPU() (ns int64, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}

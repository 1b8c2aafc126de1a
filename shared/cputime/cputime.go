// Package cputime reads how much CPU a process has used. The benchmarks
// report CPU per operation beside wall time because on a machine whose
// cores are shared, wall time hides what an operation costs
// (docs/performance.md).
package cputime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Of is the user+system CPU time process pid has used, from
// /proc/<pid>/stat: only on Linux, and only for a process on this machine.
// Its resolution is a clock tick (10 ms), fine for the seconds-long windows
// it is read over.
func Of(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of process %d: %w", pid, err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces and parentheses of its own.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("cpu time of process %d: no command name in /proc/%d/stat", pid, pid)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time of process %d: %d fields in /proc/%d/stat, want at least 15", pid, len(f)+2, pid)
	}
	user, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cpu time of process %d: utime: %w", pid, err)
	}
	sys, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cpu time of process %d: stime: %w", pid, err)
	}
	// USER_HZ, the unit of utime and stime, is 100 on Linux.
	return time.Duration(user+sys) * (time.Second / 100), nil
}

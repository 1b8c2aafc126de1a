//go:build !unix

package cputime

import "time"

// Self is not available here: ok is always false.
func Self() (d time.Duration, ok bool) { return 0, false }

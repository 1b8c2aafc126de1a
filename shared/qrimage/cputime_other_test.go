//go:build !unix

package qrimage

func processCPU() (ns int64, ok bool) { return 0, false }

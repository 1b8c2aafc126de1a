//go:build !unix

package storetest

func processCPU() (ns int64, ok bool) { return 0, false }

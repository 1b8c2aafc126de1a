package loopback_test

import (
	"testing"

	"github.com/yzpay/yzpay/shared/loopback"
)

func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"": false, "example.com": false, "localhost.example.com": false, "10.0.0.1": false, "0.0.0.0": false,
		"::": false, "[::1]": false, "127.0.0.1:80": false,
	} {
		if got := loopback.Host(host); got != want {
			t.Errorf("Host(%q) = %v, want %v", host, got, want)
		}
	}
}

package notifier

import (
	"net/netip"
	"testing"
)

// TestPublicAddr: the addresses a per-order notify_url may not reach unless
// its host is in NOTIFY_URL_PRIVATE_HOSTS.
func TestPublicAddr(t *testing.T) {
	for a, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true,
		"127.0.0.1": false, "::1": false, "10.0.0.1": false, "172.16.5.4": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "0.0.0.0": false, "::": false, "224.0.0.1": false,
		"ff02::1": false, "100.64.0.1": false, "100.127.255.254": false, "fd00::1": false, "fc00::1": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "255.255.255.255": false, "198.18.0.1": false,
		"2002:7f00:1::": false, "0.1.2.3": false,
	} {
		if got := publicAddr(netip.MustParseAddr(a)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", a, got, want)
		}
	}
}

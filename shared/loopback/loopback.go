// Package loopback tells whether a host name or address stays on this
// machine. The rules that allow plain http or an exposed listener only on
// loopback (the Youzan client, the sandbox's checkout URLs, `yzpay serve
// --sandbox`) all ask it, so they agree on what counts.
package loopback

import (
	"net"
	"strings"
)

// Host reports whether host (a name or an IP, without a port) is localhost,
// in any case, or a loopback address.
func Host(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

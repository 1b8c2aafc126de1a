package config

import "strings"

// RedactURL shows a URL without what may be a secret: user info, query and
// fragment (a PUSH_API endpoint may carry a merchant token, DATABASE_URL a
// password). A comma-separated list, as NATS_URL allows, is redacted
// element by element. Anything without a scheme shows as "(unparsable URL)".
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactOne(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return "(unparsable URL)"
	}
	rest := u[i+3:]
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		rest = rest[:q]
	}
	// Only the authority can hold user info; an "@" later in the path cannot.
	host, path := rest, ""
	if slash := strings.IndexByte(rest, '/'); slash >= 0 {
		host, path = rest[:slash], rest[slash:]
	}
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	return u[:i+3] + host + path
}

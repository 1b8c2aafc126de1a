package config

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"go.yaml.in/yaml/v3"
)

// Signing schemes of a merchant endpoint.
const (
	SigningMD5      = "md5"      // the original service's sign field
	SigningStandard = "standard" // Standard Webhooks headers over a JSON body
	SigningBoth     = "both"     // the original push, plus Standard Webhooks headers over its bytes
)

// Endpoint is one merchant endpoint and how it is pushed to. Without
// PUSH_ENDPOINTS_FILE every PUSH_API URL is one md5 Endpoint built from
// SELF_SECRET, PUSH_FORMAT, PUSH_STATUSES and PUSH_RETRY_SCHEDULE.
type Endpoint struct {
	URL     string // also the endpoint's identity in the store's deliveries
	Format  string // FormatForm or FormatJSON
	Signing string // SigningMD5, SigningStandard or SigningBoth
	// MD5Secret salts the sign field (md5, both).
	MD5Secret string
	// Secrets are whsec_ secrets (standard, both): one, or two during a
	// rotation, each making its own signature.
	Secrets []string
	// Statuses, if not nil, are the only statuses pushed to this endpoint.
	Statuses map[string]bool
	// RetrySchedule: delays between attempts to this endpoint.
	RetrySchedule []time.Duration
}

// The Standard Webhooks specification asks for 24 to 64 random bytes.
const (
	minStandardSecret = 24
	maxStandardSecret = 64
)

// LegacyEndpoints is the endpoint set PUSH_API, SELF_SECRET, PUSH_FORMAT,
// PUSH_STATUSES and PUSH_RETRY_SCHEDULE describe, as before the file existed.
func (n Notifier) LegacyEndpoints() []Endpoint {
	eps := make([]Endpoint, len(n.Endpoints))
	for i, u := range n.Endpoints {
		eps[i] = Endpoint{URL: u, Format: n.Format, Signing: SigningMD5, MD5Secret: n.Secret,
			Statuses: n.Statuses, RetrySchedule: n.RetrySchedule}
	}
	return eps
}

// LoadEndpoints reads and validates PUSH_ENDPOINTS_FILE again (SIGHUP),
// with the process's PUSH_FORMAT, SELF_SECRET and PUSH_RETRY_SCHEDULE as the
// defaults. Without a file it returns LegacyEndpoints.
func (n Notifier) LoadEndpoints() ([]Endpoint, error) {
	if n.EndpointsFile == "" {
		return n.LegacyEndpoints(), nil
	}
	data, err := os.ReadFile(n.EndpointsFile)
	if err != nil {
		return nil, fmt.Errorf("config: PUSH_ENDPOINTS_FILE: %w", err)
	}
	return ParseEndpoints(filepath.Base(n.EndpointsFile), data, n)
}

// fileError names the file, line and field, never a value that might be a
// secret.
func fileError(name string, node *yaml.Node, field, format string, args ...any) error {
	return fmt.Errorf("config: PUSH_ENDPOINTS_FILE %s line %d: %s: %s", name, node.Line, field, fmt.Sprintf(format, args...))
}

// ParseEndpoints reads an endpoints file (YAML, or JSON, which YAML reads
// too): {"endpoints": [{"url", "format", "signing", "md5_secret",
// "secrets", "statuses", "retry_schedule"}, ...]}. defaults supplies
// PUSH_FORMAT, SELF_SECRET and PUSH_RETRY_SCHEDULE for fields left out.
// Errors name the line and the field.
func ParseEndpoints(name string, data []byte, defaults Notifier) ([]Endpoint, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml's syntax errors carry "line N" and no values of ours.
		return nil, fmt.Errorf("config: PUSH_ENDPOINTS_FILE %s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("config: PUSH_ENDPOINTS_FILE %s: empty file; list at least one endpoint under endpoints", name)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fileError(name, root, "(top level)", "must be a mapping with the key endpoints")
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "endpoints" {
			return nil, fileError(name, k, k.Value, "unknown key (the only top-level key is endpoints)")
		}
		list = v
	}
	if list == nil {
		return nil, fileError(name, root, "endpoints", "missing")
	}
	if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return nil, fileError(name, list, "endpoints", "must be a list of at least one endpoint")
	}
	seen := map[string]int{}
	eps := make([]Endpoint, 0, len(list.Content))
	for i, node := range list.Content {
		ep, err := parseEndpoint(name, fmt.Sprintf("endpoints[%d]", i), node, defaults)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[ep.URL]; dup {
			return nil, fileError(name, node, fmt.Sprintf("endpoints[%d].url", i),
				"same URL as endpoints[%d]; deliveries are tracked per URL, so list each once", j)
		}
		seen[ep.URL] = i
		eps = append(eps, ep)
	}
	return eps, nil
}

func parseEndpoint(name, path string, node *yaml.Node, d Notifier) (Endpoint, error) {
	if node.Kind != yaml.MappingNode {
		return Endpoint{}, fileError(name, node, path, "must be a mapping with at least url")
	}
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		switch k.Value {
		case "url", "format", "signing", "md5_secret", "secrets", "statuses", "retry_schedule":
		default:
			return Endpoint{}, fileError(name, k, path+"."+k.Value,
				"unknown field (fields: url, format, signing, md5_secret, secrets, statuses, retry_schedule)")
		}
		if _, dup := fields[k.Value]; dup {
			return Endpoint{}, fileError(name, k, path+"."+k.Value, "given twice")
		}
		fields[k.Value] = v
	}
	str := func(f string) (string, *yaml.Node, error) {
		v, ok := fields[f]
		if !ok {
			return "", nil, nil
		}
		if v.Kind != yaml.ScalarNode {
			return "", v, fileError(name, v, path+"."+f, "must be a string")
		}
		return strings.TrimSpace(v.Value), v, nil
	}
	list := func(f string) ([]*yaml.Node, *yaml.Node, error) {
		v, ok := fields[f]
		if !ok {
			return nil, nil, nil
		}
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			return nil, v, fileError(name, v, path+"."+f, "must be a non-empty list")
		}
		for i, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return nil, v, fileError(name, it, fmt.Sprintf("%s.%s[%d]", path, f, i), "must be a string")
			}
		}
		return v.Content, v, nil
	}

	ep := Endpoint{Format: d.Format, Signing: SigningMD5, RetrySchedule: d.RetrySchedule}
	if ep.Format == "" {
		ep.Format = FormatForm
	}
	u, un, err := str("url")
	if err != nil {
		return ep, err
	}
	if un == nil {
		return ep, fileError(name, node, path+".url", "missing")
	}
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return ep, fileError(name, un, path+".url", "must be an http(s) URL; %q is not", RedactURL(u))
	}
	ep.URL = u

	sg, sn, err := str("signing")
	if err != nil {
		return ep, err
	}
	if sn != nil {
		switch strings.ToLower(sg) {
		case SigningMD5, SigningStandard, SigningBoth:
			ep.Signing = strings.ToLower(sg)
		default:
			return ep, fileError(name, sn, path+".signing", "must be md5, standard or both")
		}
	}

	f, fn, err := str("format")
	if err != nil {
		return ep, err
	}
	if fn != nil {
		switch strings.ToLower(f) {
		case FormatForm, FormatJSON:
			ep.Format = strings.ToLower(f)
		default:
			return ep, fileError(name, fn, path+".format", "must be form or json")
		}
	}
	if ep.Signing == SigningStandard {
		if fn != nil && ep.Format != FormatJSON {
			return ep, fileError(name, fn, path+".format", "signing standard always sends JSON; leave format out or say json")
		}
		ep.Format = FormatJSON
	}

	ms, mn, err := str("md5_secret")
	if err != nil {
		return ep, err
	}
	if ep.Signing == SigningStandard {
		if mn != nil {
			return ep, fileError(name, mn, path+".md5_secret", "only used with signing md5 or both")
		}
	} else {
		ep.MD5Secret = d.Secret
		if mn != nil {
			ep.MD5Secret = ms
		}
		if ep.MD5Secret == "" {
			return ep, fileError(name, node, path+".md5_secret", "signing %s needs md5_secret here or SELF_SECRET", ep.Signing)
		}
	}

	secrets, secn, err := list("secrets")
	if err != nil {
		return ep, err
	}
	switch {
	case ep.Signing == SigningMD5 && secn != nil:
		return ep, fileError(name, secn, path+".secrets", "whsec_ secrets are for signing standard or both; an MD5 salt goes in md5_secret")
	case ep.Signing != SigningMD5 && secn == nil:
		return ep, fileError(name, node, path+".secrets", "signing %s needs one whsec_ secret (two while rotating)", ep.Signing)
	case len(secrets) > 2:
		return ep, fileError(name, secn, path+".secrets", "at most two secrets (the new and the old one while rotating)")
	}
	for i, s := range secrets {
		v := strings.TrimSpace(s.Value)
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "whsec_"))
		if !strings.HasPrefix(v, "whsec_") || err != nil || len(key) < minStandardSecret || len(key) > maxStandardSecret {
			return ep, fileError(name, s, fmt.Sprintf("%s.secrets[%d]", path, i),
				"must be whsec_ followed by the base64 of %d to %d random bytes", minStandardSecret, maxStandardSecret)
		}
		ep.Secrets = append(ep.Secrets, v)
	}

	sts, _, err := list("statuses")
	if err != nil {
		return ep, err
	}
	if sts != nil {
		ep.Statuses = map[string]bool{}
		for i, s := range sts {
			st := strings.ToUpper(strings.TrimSpace(s.Value))
			if domain.Rank(st) == 0 {
				return ep, fileError(name, s, fmt.Sprintf("%s.statuses[%d]", path, i), "%q is not a Youzan trade status yzpay tracks", st)
			}
			ep.Statuses[st] = true
		}
	}

	rs, _, err := list("retry_schedule")
	if err != nil {
		return ep, err
	}
	if rs != nil {
		ep.RetrySchedule = nil
		for i, s := range rs {
			dur, err := time.ParseDuration(strings.TrimSpace(s.Value))
			if err != nil || dur <= 0 {
				return ep, fileError(name, s, fmt.Sprintf("%s.retry_schedule[%d]", path, i), "must be a positive Go duration such as 30s or 2m")
			}
			ep.RetrySchedule = append(ep.RetrySchedule, dur)
		}
	}
	return ep, nil
}

package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	whsecA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	whsecB = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

const goodFile = `# merchant endpoints
endpoints:
  - url: https://shop.example/yzpay/notify
  - url: https://new.example/hooks?token=abc
    signing: standard
    secrets: [` + whsecA + `, ` + whsecB + `]
    statuses: [TRADE_SUCCESS, trade_closed]
    retry_schedule: [1s, 1m]
  - url: http://both.example/n
    signing: both
    format: json
    md5_secret: salt-2
    secrets:
      - ` + whsecA + `
`

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "endpoints.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func notifierEnv(file string, extra map[string]string) Env {
	m := map[string]string{"PUSH_ENDPOINTS_FILE": file, "SELF_SECRET": "self", "NATS_URL": "nats://h:4222",
		"DATABASE_URL": "postgres://h/db", "PUSH_RETRY_SCHEDULE": "5s,10s"}
	for k, v := range extra {
		m[k] = v
	}
	return FromMap(m)
}

func TestEndpointsFileLoadsWithDefaults(t *testing.T) {
	n, err := LoadNotifier(notifierEnv(writeFile(t, goodFile), map[string]string{"PUSH_FORMAT": "json"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{
		{URL: "https://shop.example/yzpay/notify", Format: FormatJSON, Signing: SigningMD5, MD5Secret: "self",
			RetrySchedule: []time.Duration{5 * time.Second, 10 * time.Second}},
		{URL: "https://new.example/hooks?token=abc", Format: FormatJSON, Signing: SigningStandard,
			Secrets:  []string{whsecA, whsecB},
			Statuses: map[string]bool{"TRADE_SUCCESS": true, "TRADE_CLOSED": true}, RetrySchedule: []time.Duration{time.Second, time.Minute}},
		{URL: "http://both.example/n", Format: FormatJSON, Signing: SigningBoth, MD5Secret: "salt-2", Secrets: []string{whsecA},
			RetrySchedule: []time.Duration{5 * time.Second, 10 * time.Second}},
	}
	if !reflect.DeepEqual(n.EndpointSet, want) {
		t.Errorf("endpoints\n got %+v\nwant %+v", n.EndpointSet, want)
	}
	var b bytes.Buffer
	n.Banner(&b)
	for _, leak := range []string{"salt-2", "self", whsecA[6:], "token=abc"} {
		if strings.Contains(b.String(), leak) {
			t.Errorf("banner shows %q:\n%s", leak, b.String())
		}
	}
	if !strings.Contains(b.String(), "3 endpoints from") || !strings.Contains(b.String(), "2 whsec_ secrets") {
		t.Errorf("banner does not describe the endpoints:\n%s", b.String())
	}
}

// The same file as JSON works too (JSON is YAML).
func TestEndpointsFileJSON(t *testing.T) {
	eps, err := ParseEndpoints("e.json", []byte(`{"endpoints": [
  {"url": "https://a.example/n", "signing": "standard", "secrets": ["`+whsecA+`"]}
]}`), Notifier{Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].Signing != SigningStandard || eps[0].Format != FormatJSON || eps[0].Statuses != nil {
		t.Errorf("got %+v", eps)
	}
}

// Without the file, PUSH_API + SELF_SECRET + PUSH_FORMAT mean what they did.
func TestNoEndpointsFileKeepsPushAPI(t *testing.T) {
	n, err := LoadNotifier(FromMap(map[string]string{"PUSH_API": "http://a/n;http://b/n", "SELF_SECRET": "s",
		"PUSH_FORMAT": "json", "NATS_URL": "nats://h", "DATABASE_URL": "postgres://h/d"}))
	if err != nil {
		t.Fatal(err)
	}
	eps, err := n.LoadEndpoints()
	if err != nil {
		t.Fatal(err)
	}
	if n.EndpointSet != nil || len(eps) != 2 || !reflect.DeepEqual(eps[1], Endpoint{URL: "http://b/n", Format: FormatJSON,
		Signing: SigningMD5, MD5Secret: "s", RetrySchedule: DefaultPushRetrySchedule}) {
		t.Errorf("legacy endpoints %+v", eps)
	}
	if _, err := LoadNotifier(FromMap(map[string]string{"NATS_URL": "nats://h", "DATABASE_URL": "postgres://h/d"})); err == nil ||
		!strings.Contains(err.Error(), "PUSH_API") || !strings.Contains(err.Error(), "SELF_SECRET") {
		t.Errorf("neither PUSH_API nor a file: %v", err)
	}
}

func TestEndpointsFileErrorsNameLineAndField(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"bad signing", "endpoints:\n  - url: http://a/n\n    signing: sha1\n", "line 3: endpoints[0].signing: must be md5, standard or both"},
		{"bad url", "endpoints:\n  - url: http://a/n\n  - url: ftp://b/n\n", "line 3: endpoints[1].url"},
		{"missing url", "endpoints:\n  - url: http://a/n\n  - format: json\n", "line 3: endpoints[1].url: missing"},
		{"typo", "endpoints:\n  - url: http://a/n\n    secret: x\n", "line 3: endpoints[0].secret: unknown field"},
		{"bad format", "endpoints:\n  - url: http://a/n\n    format: xml\n", "line 3: endpoints[0].format: must be form or json"},
		{"standard as form", "endpoints:\n  - url: http://a/n\n    signing: standard\n    format: form\n    secrets: [" + whsecA + "]\n", "line 4: endpoints[0].format"},
		{"standard without secrets", "endpoints:\n  - url: http://a/n\n    signing: standard\n", "line 2: endpoints[0].secrets: signing standard needs"},
		{"three secrets", "endpoints:\n  - url: http://a/n\n    signing: both\n    secrets: [" + whsecA + ", " + whsecB + ", " + whsecA + "]\n", "line 4: endpoints[0].secrets: at most two"},
		{"not whsec", "endpoints:\n  - url: http://a/n\n    signing: standard\n    secrets:\n      - " + whsecA + "\n      - hunter2hunter2hunter2hunter2\n", "line 6: endpoints[0].secrets[1]: must be whsec_"},
		{"short whsec", "endpoints:\n  - url: http://a/n\n    signing: standard\n    secrets: [whsec_c2hvcnQ=]\n", "line 4: endpoints[0].secrets[0]"},
		{"md5 with whsec", "endpoints:\n  - url: http://a/n\n    secrets: [" + whsecA + "]\n", "line 3: endpoints[0].secrets: whsec_ secrets are for"},
		{"bad status", "endpoints:\n  - url: http://a/n\n    statuses: [TRADE_SUCCESS, PAID_TWICE]\n", "line 3: endpoints[0].statuses[1]"},
		{"bad retry", "endpoints:\n  - url: http://a/n\n    retry_schedule:\n      - 5s\n      - soon\n", "line 5: endpoints[0].retry_schedule[1]"},
		{"duplicate url", "endpoints:\n  - url: http://a/n\n  - url: http://a/n\n", "line 3: endpoints[1].url: same URL as endpoints[0]"},
		{"no endpoints", "endpoints: []\n", "line 1: endpoints: must be a list"},
		{"top-level typo", "endpoint:\n  - url: http://a/n\n", "line 1: endpoint: unknown key"},
		{"yaml syntax", "endpoints:\n  - url: http://a/n\n\tsigning: md5\n", "yaml: line 2: found a tab"},
		{"json field", "{\"endpoints\": [\n {\"url\": \"http://a/n\",\n  \"statuses\": \"TRADE_SUCCESS\"}]}", "line 3: endpoints[0].statuses: must be a non-empty list"},
	} {
		_, err := LoadNotifier(notifierEnv(writeFile(t, c.file), nil))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want an ErrInvalid containing %q", c.name, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), "PUSH_ENDPOINTS_FILE endpoints.yaml") {
			t.Errorf("%s: %v does not name the file", c.name, err)
		}
		for _, leak := range []string{whsecA[6:], "hunter2"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error shows a secret: %v", c.name, err)
			}
		}
	}
}

func TestEndpointsFileConflictsAndMissing(t *testing.T) {
	_, err := LoadNotifier(notifierEnv(writeFile(t, goodFile), map[string]string{"PUSH_API": "http://x/n"}))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "PUSH_API or PUSH_ENDPOINTS_FILE") {
		t.Errorf("both set: %v", err)
	}
	_, err = LoadNotifier(notifierEnv(filepath.Join(t.TempDir(), "nope.yaml"), nil))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "PUSH_ENDPOINTS_FILE") {
		t.Errorf("missing file: %v", err)
	}
	// An md5 endpoint needs a salt from somewhere.
	_, err = LoadNotifier(notifierEnv(writeFile(t, "endpoints:\n  - url: http://a/n\n"), map[string]string{"SELF_SECRET": ""}))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "line 2: endpoints[0].md5_secret") {
		t.Errorf("md5 without a salt: %v", err)
	}
}

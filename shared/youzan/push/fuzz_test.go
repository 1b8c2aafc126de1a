package push

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, add func(body []byte)) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzParse: no input panics, an accepted message satisfies the invariants
// the gateway relies on, and parsing is a pure function of the bytes.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if !validType(p.Type) || (p.Type == "" && !p.Test) {
			t.Fatalf("accepted invalid type %q", p.Type)
		}
		if p.SendCount < 0 || p.QRID < 0 {
			t.Fatalf("negative count or QR id: %+v", p)
		}
		_ = p.DedupID()
		q, err := Parse(body)
		if err != nil || !equalPush(p, q) {
			t.Fatalf("second parse differs: %+v / %+v, %v", p, q, err)
		}
	})
}

// FuzzVerify: no input panics; a correct Event-Sign accepts exactly what
// Parse accepts, with the same result; a wrong one is always rejected.
func FuzzVerify(f *testing.F) {
	addSeeds(f, func(b []byte) { f.Add(b, "") })
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		_, _ = Verify(body, http.Header{"Event-Sign": {sig}}, cid, secret)
		_, _ = Verify(body, nil, cid, secret)

		good := http.Header{"Event-Sign": {EventSign(cid, body, secret)}}
		p, err := Verify(body, good, cid, secret)
		q, perr := Parse(body)
		if (err == nil) != (perr == nil) {
			t.Fatalf("Verify err %v, Parse err %v", err, perr)
		}
		if err == nil && !equalPush(p, q) {
			t.Fatalf("Verify %+v != Parse %+v", p, q)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("correct Event-Sign gave %v", err)
		}
		bad := http.Header{"Event-Sign": {EventSign(cid, body, secret+"x")}}
		if _, err := Verify(body, bad, cid, secret); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("wrong Event-Sign gave %v", err)
		}
	})
}

// FuzzDecodeMsg: the msg decoder never panics; what it accepts is JSON, and
// the string it reports as signed is the msg text itself (for a JSON string
// msg), never something rebuilt from the decoded value.
func FuzzDecodeMsg(f *testing.F) {
	for _, s := range []string{`"%7B%22tid%22%3A%22E1%22%7D"`, `"%7B%22update_time%22:%222017-08-07%2018:19:05%22%7D"`,
		`{"tid":"E1"}`, `"{\"a\":\"1+1\"}"`, `null`, `""`, `"%zz"`, `7`, `"+"`, `"%7B"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		signedText, msg, err := decodeMsg(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if msg != nil && !json.Valid(msg) {
			t.Fatalf("accepted msg is not JSON: %q", msg)
		}
		var s string
		if json.Unmarshal(raw, &s) == nil && string(signedText) != s {
			t.Fatalf("signed text %q, want the msg string %q", signedText, s)
		}
	})
}

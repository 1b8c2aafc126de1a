package main

// The sign-verification snippets merchants paste (README.md and
// docs/snippets/) are checked here: the README carries each one verbatim,
// the Go one is compiled and run below, and the PHP, Python and Node ones are
// run by their interpreters, where installed, against pushes signed by
// yzpay's own signer.

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/merchant"
)

// verifyYzpayPush reports whether the fields of a yzpay push (r.PostForm
// after r.ParseForm) carry a valid sign under selfSecret (SELF_SECRET).
func verifyYzpayPush(form url.Values, selfSecret string) bool {
	raw := strings.Join([]string{form.Get("time"), form.Get("tradeNo"), form.Get("orderId"),
		form.Get("payment"), form.Get("status"), selfSecret}, "|")
	sum := md5.Sum([]byte(raw))
	want := hex.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(form.Get("sign"))) == 1
}

// verifyStandardWebhook reports whether a yzpay push signed the Standard
// Webhooks way (signing standard or both) is authentic and at most five
// minutes old or ahead. body is the raw request body, read before any
// parsing; secret is the endpoint's whsec_ secret.
func verifyStandardWebhook(body []byte, header http.Header, secret string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return false
	}
	id, ts := header.Get("webhook-id"), header.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return false
	}
	if age := time.Since(time.Unix(sec, 0)); age > 5*time.Minute || age < -5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	// During a secret rotation the header carries several signatures.
	for _, sig := range strings.Fields(header.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func Example_verifySnippet() {
	form := url.Values{
		"time":    {"1517457474"},
		"tradeNo": {"E20180201105656001353613-6377801"},
		"orderId": {"1515174485676262"},
		"payment": {"10"},
		"status":  {"TRADE_SUCCESS"},
		"uuid":    {"buyer-42"},
		"sign":    {"eb073182435cd0820b0d2f0627aa8777"},
	}
	fmt.Println(verifyYzpayPush(form, "example_self_secret"))
	form.Set("payment", "1000")
	fmt.Println(verifyYzpayPush(form, "example_self_secret"))
	// Output:
	// true
	// false
}

// harnessMarker starts the part of a snippet file that only the tests use.
const harnessMarker = "--- harness for cmd/yzpay/snippets_test.go"

// snippetPart is what a merchant pastes: the file up to the harness.
func snippetPart(t *testing.T, rel string) string {
	t.Helper()
	s := readRepoFile(t, rel)
	if i := strings.Index(s, harnessMarker); i >= 0 {
		s = s[:strings.LastIndex(s[:i], "\n")+1]
	}
	return strings.TrimRight(s, "\n")
}

// The README shows each snippet exactly as the file the tests run.
func TestSnippetsInReadmeVerbatim(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	for _, f := range []string{"verify.go.txt", "verify.php", "verify.py", "verify.js",
		"verify_standard.go.txt", "verify_standard.php", "verify_standard.py", "verify_standard.js"} {
		part := snippetPart(t, "docs/snippets/"+f)
		if strings.Count(part, "\n") < 5 {
			t.Errorf("docs/snippets/%s: the snippet part is suspiciously short:\n%s", f, part)
		}
		if !strings.Contains(readme, part+"\n```") {
			t.Errorf("README does not contain docs/snippets/%s verbatim (up to the harness), closing a code block", f)
		}
	}
}

// docs/snippets/verify.go.txt and verify_standard.go.txt are the functions
// compiled and tested here.
func TestSnippetGoIsTheTestedFunction(t *testing.T) {
	src, err := os.ReadFile("snippets_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "snippets_test.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{"verifyYzpayPush": "verify.go.txt", "verifyStandardWebhook": "verify_standard.go.txt"} {
		var fn *ast.FuncDecl
		for _, d := range f.Decls {
			if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == name {
				fn = d
			}
		}
		if fn == nil || fn.Doc == nil {
			t.Fatalf("%s (with its doc comment) not found in snippets_test.go", name)
		}
		tested := string(src[fset.Position(fn.Doc.Pos()).Offset:fset.Position(fn.End()).Offset])
		if doc := snippetPart(t, "docs/snippets/"+file); doc != tested {
			t.Errorf("docs/snippets/%s differs from %s in snippets_test.go;\nwant:\n%s\ngot:\n%s", file, name, tested, doc)
		}
	}
}

// vectors are pushes as yzpay signs them, with what a correct check says.
type vector struct {
	name   string
	form   url.Values
	secret string
	want   bool
}

func signedForm(f merchant.Fields, uuid, secret string) url.Values {
	return merchant.New(f, uuid, secret).Form()
}

func vectors() []vector {
	const secret = "example_self_secret"
	golden := merchant.Fields{
		Time: "1517457474", TradeNo: "E20180201105656001353613-6377801", OrderID: "1515174485676262",
		Payment: 10, Status: "TRADE_SUCCESS",
	}
	tamper := func(key, value string) url.Values {
		f := signedForm(golden, "buyer-42", secret)
		f.Set(key, value)
		return f
	}
	wait := merchant.Fields{Time: "1795661298", TradeNo: "E20261126104817023201920-8286058", OrderID: "shop:2026.11-A_7",
		Payment: 0, Status: "WAIT_BUYER_PAY"}
	noSign := signedForm(golden, "", secret)
	noSign.Del("sign")
	return []vector{
		{"golden vector", signedForm(golden, "buyer-42", secret), secret, true},
		{"another order", signedForm(wait, "", "s3cr€t with spaces|and pipes"), "s3cr€t with spaces|and pipes", true},
		{"uuid is not signed", tamper("uuid", "someone-else"), secret, true},
		{"tampered payment", tamper("payment", "1000"), secret, false},
		{"tampered status", tamper("status", "TRADE_CLOSED"), secret, false},
		{"tampered orderId", tamper("orderId", "1515174485676263"), secret, false},
		{"tampered time", tamper("time", "1517457475"), secret, false},
		{"wrong secret", signedForm(golden, "", secret), "another_secret", false},
		{"no sign", noSign, secret, false},
		{"non-ASCII sign", tamper("sign", "eb073182435cd0820b0d2f0627aa877€"), secret, false},
	}
}

func TestSnippetGoVerifies(t *testing.T) {
	if got := signedForm(merchant.Fields{Time: "1517457474", TradeNo: "E20180201105656001353613-6377801",
		OrderID: "1515174485676262", Payment: 10, Status: "TRADE_SUCCESS"}, "", "example_self_secret").Get("sign"); got != "eb073182435cd0820b0d2f0627aa8777" {
		t.Fatalf("yzpay signs the golden vector as %s", got)
	}
	for _, v := range vectors() {
		if got := verifyYzpayPush(v.form, v.secret); got != v.want {
			t.Errorf("%s: verifyYzpayPush = %v, want %v", v.name, got, v.want)
		}
	}
}

// Each script reads a form-encoded push on stdin and SELF_SECRET as its
// argument, and prints true or false.
func TestSnippetScripts(t *testing.T) {
	for _, s := range []struct{ interp, file string }{
		{"php", "verify.php"},
		{"python3", "verify.py"},
		{"node", "verify.js"},
	} {
		t.Run(s.interp, func(t *testing.T) {
			t.Parallel()
			bin := interpreter(t, s.interp, s.file)
			script := filepath.Join(repoRoot(t), "docs", "snippets", s.file)
			for _, v := range vectors() {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				cmd := exec.CommandContext(ctx, bin, script, v.secret)
				cmd.Stdin = strings.NewReader(v.form.Encode())
				out, err := cmd.Output()
				cancel()
				if err != nil {
					var stderr string
					if ee, ok := err.(*exec.ExitError); ok {
						stderr = string(ee.Stderr)
					}
					t.Errorf("%s: %s %s: %v\n%s", v.name, s.interp, s.file, err, stderr)
					continue
				}
				if got, want := strings.TrimSpace(string(out)), fmt.Sprint(v.want); got != want {
					t.Errorf("%s: %s says %s, want %s", v.name, s.file, got, want)
				}
			}
		})
	}
}

// interpreter finds a snippet's interpreter; without it the test skips,
// except under CI, where .ci/run installs it and a skip would hide a broken
// snippet.
func interpreter(t *testing.T, name, file string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not on PATH under CI; docs/snippets/%s cannot be checked (.ci/run installs it)", name, file)
		}
		t.Skipf("%s is not on PATH; docs/snippets/%s not run", name, file)
	}
	return bin
}

// standardVector is a push as yzpay signs it for a standard endpoint (with
// merchant.SignatureHeader, the notifier's signer), with what a correct
// check says.
type standardVector struct {
	name                string
	body                []byte
	id, timestamp, sigs string
	secret              string
	want                bool
}

const (
	snippetWhsecNew = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	snippetWhsecOld = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

func standardVectors(t *testing.T) []standardVector {
	t.Helper()
	keyOf := func(s string) []byte {
		k, err := merchant.ParseSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	newKey, oldKey := keyOf(snippetWhsecNew), keyOf(snippetWhsecOld)
	now := time.Now()
	push := func(at time.Time) []byte {
		return merchant.Push{TradeNo: "E20261126104817023201920-8286058", OrderID: "shop:2026.11-A_7", Payment: 100,
			Status: "TRADE_SUCCESS", UUID: "buyer-42", Time: strconv.FormatInt(at.Unix(), 10)}.StandardJSON()
	}
	const id = "E20261126104817023201920:TRADE_SUCCESS"
	signed := func(name string, at time.Time, keys [][]byte, secret string, want bool) standardVector {
		body := push(at)
		return standardVector{name, body, id, strconv.FormatInt(at.Unix(), 10), merchant.SignatureHeader(keys, id, at.Unix(), body), secret, want}
	}
	tampered := signed("tampered body", now, [][]byte{newKey}, snippetWhsecNew, false)
	tampered.body = []byte(strings.Replace(string(tampered.body), `"payment":100`, `"payment":10000`, 1))
	tamperedUUID := signed("tampered uuid (signed now)", now, [][]byte{newKey}, snippetWhsecNew, false)
	tamperedUUID.body = []byte(strings.Replace(string(tamperedUUID.body), "buyer-42", "buyer-43", 1))
	otherID := signed("another webhook-id", now, [][]byte{newKey}, snippetWhsecNew, false)
	otherID.id = "E1:TRADE_SUCCESS"
	noSig := signed("no signature", now, [][]byte{newKey}, snippetWhsecNew, false)
	noSig.sigs = ""
	otherVersions := signed("other versions before ours", now, [][]byte{newKey}, snippetWhsecNew, true)
	otherVersions.sigs = "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + otherVersions.sigs
	return []standardVector{
		{"specification vector (fresh clock)", []byte(`{"test": 2432232314}`), "msg_p5jXN8AQM9LWM0D4loKWxJek",
			strconv.FormatInt(now.Unix(), 10), merchant.SignStandard(newKey, "msg_p5jXN8AQM9LWM0D4loKWxJek", now.Unix(), []byte(`{"test": 2432232314}`)),
			snippetWhsecNew, true},
		signed("fresh push", now, [][]byte{newKey}, snippetWhsecNew, true),
		signed("rotation, new secret", now, [][]byte{newKey, oldKey}, snippetWhsecNew, true),
		signed("rotation, old secret", now, [][]byte{newKey, oldKey}, snippetWhsecOld, true),
		signed("wrong secret", now, [][]byte{newKey}, snippetWhsecOld, false),
		tampered,
		tamperedUUID,
		otherID,
		signed("stale timestamp (10 min old)", now.Add(-10*time.Minute), [][]byte{newKey}, snippetWhsecNew, false),
		signed("timestamp 10 min ahead", now.Add(10*time.Minute), [][]byte{newKey}, snippetWhsecNew, false),
		noSig,
		otherVersions,
	}
}

func TestSnippetStandardGoVerifies(t *testing.T) {
	for _, v := range standardVectors(t) {
		h := http.Header{}
		for k, val := range map[string]string{"webhook-id": v.id, "webhook-timestamp": v.timestamp, "webhook-signature": v.sigs} {
			if val != "" {
				h.Set(k, val)
			}
		}
		if got := verifyStandardWebhook(v.body, h, v.secret); got != v.want {
			t.Errorf("%s: verifyStandardWebhook = %v, want %v", v.name, got, v.want)
		}
	}
}

// Each script reads the raw body on stdin and takes the secret, webhook-id,
// webhook-timestamp and webhook-signature as arguments.
func TestSnippetStandardScripts(t *testing.T) {
	vs := standardVectors(t)
	for _, s := range []struct{ interp, file string }{
		{"php", "verify_standard.php"},
		{"python3", "verify_standard.py"},
		{"node", "verify_standard.js"},
	} {
		t.Run(s.interp, func(t *testing.T) {
			t.Parallel()
			bin := interpreter(t, s.interp, s.file)
			script := filepath.Join(repoRoot(t), "docs", "snippets", s.file)
			for _, v := range vs {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				cmd := exec.CommandContext(ctx, bin, script, v.secret, v.id, v.timestamp, v.sigs)
				cmd.Stdin = strings.NewReader(string(v.body))
				out, err := cmd.Output()
				cancel()
				if err != nil {
					var stderr string
					if ee, ok := err.(*exec.ExitError); ok {
						stderr = string(ee.Stderr)
					}
					t.Errorf("%s: %s %s: %v\n%s", v.name, s.interp, s.file, err, stderr)
					continue
				}
				if got, want := strings.TrimSpace(string(out)), fmt.Sprint(v.want); got != want {
					t.Errorf("%s: %s says %s, want %s", v.name, s.file, got, want)
				}
			}
		})
	}
}

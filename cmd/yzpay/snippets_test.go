package main

// The sign-verification snippets merchants paste (README.md and
// docs/snippets/) are checked here: the README carries each one verbatim,
// the Go one is compiled and run below, and the PHP, Python and Node ones are
// run by their interpreters, where installed, against pushes signed by
// yzpay's own signer.

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
	for _, f := range []string{"verify.go.txt", "verify.php", "verify.py", "verify.js"} {
		part := snippetPart(t, "docs/snippets/"+f)
		if strings.Count(part, "\n") < 5 {
			t.Errorf("docs/snippets/%s: the snippet part is suspiciously short:\n%s", f, part)
		}
		if !strings.Contains(readme, part+"\n```") {
			t.Errorf("README does not contain docs/snippets/%s verbatim (up to the harness), closing a code block", f)
		}
	}
}

// docs/snippets/verify.go.txt is the function compiled and tested here.
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
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == "verifyYzpayPush" {
			fn = d
		}
	}
	if fn == nil || fn.Doc == nil {
		t.Fatal("verifyYzpayPush (with its doc comment) not found in snippets_test.go")
	}
	tested := string(src[fset.Position(fn.Doc.Pos()).Offset:fset.Position(fn.End()).Offset])
	if doc := snippetPart(t, "docs/snippets/verify.go.txt"); doc != tested {
		t.Errorf("docs/snippets/verify.go.txt differs from verifyYzpayPush in snippets_test.go;\nwant:\n%s\ngot:\n%s", tested, doc)
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
			bin, err := exec.LookPath(s.interp)
			if err != nil {
				t.Skipf("%s is not on PATH; docs/snippets/%s not run", s.interp, s.file)
			}
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

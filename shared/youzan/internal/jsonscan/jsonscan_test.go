package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

var cases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `1E-7`, `-12.5e3`, `true`, `tru`, `nulls`,
	`{"a":1,}`, `[1,2,]`, `{"a" 1}`, `{"a":}`, `{,}`, `[,]`, `{"a":[{"b":null}]}`, "\"a\tb\"", `"\u00e9"`, `"\ud800"`,
	`"\x"`, `"\u12"`, "\"\xff\"", `"中文"`, " \r\n\t{} \n", "{}\u00a0", `{"a":1} x`, `"a\"b"`, `"`, `"a`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 100) + strings.Repeat("]", 99),
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if Valid([]byte(c)) != json.Valid([]byte(c)) {
			t.Errorf("Valid(%q) = %v", c, !json.Valid([]byte(c)))
		}
	}
}

// FuzzScanner: the scanner accepts nothing encoding/json refuses (what it
// refuses, encoding/json decides), and Unquote gives encoding/json's string.
func FuzzScanner(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(b)
		if s.Whole(nil) && !json.Valid(b) {
			t.Fatalf("scanner accepts %q, encoding/json does not", b)
		}
		got, err := Unquote(b)
		var want string
		werr := json.Unmarshal(b, &want)
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("Unquote(%q) = %q, %v; encoding/json %q, %v", b, got, err, want, werr)
		}
	})
}

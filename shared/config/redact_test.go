package config

import "testing"

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://yzpay:s3cret@db:5432/yzpay?sslmode=disable": "postgres://db:5432/yzpay",
		"https://shop.example/notify?token=s3cret#x":            "https://shop.example/notify",
		"https://u:p@shop.example/a@b":                          "https://shop.example/a@b",
		"nats://u:p@a:4222, nats://u:p@b:4222":                  "nats://a:4222,nats://b:4222",
		"http://127.0.0.1:8080/demo-merchant":                   "http://127.0.0.1:8080/demo-merchant",
		"s3cret-without-scheme":                                 "(unparsable URL)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The split binaries run against Postgres and a real NATS only, so they must
// not carry the SQLite driver, the embedded NATS server, the Youzan sandbox
// or any test helper: each is code an attacker could reach or an operator
// would have to patch for nothing. docs/architecture.md explains the layout
// that keeps them out.
func TestSplitBinariesLinkOnlyWhatTheyUse(t *testing.T) {
	if testing.Short() {
		t.Skip("go list of three binaries")
	}
	forbidden := []string{
		"modernc.org/sqlite",
		"github.com/nats-io/nats-server/v2",
		"github.com/yzpay/yzpay/shared/youzan/sandbox",
		"github.com/yzpay/yzpay/shared/store/sqlite",
		"github.com/yzpay/yzpay/shared/natsjs/embedded",
		"github.com/yzpay/yzpay/shared/store/storetest",
		"github.com/yzpay/yzpay/shared/store/postgres/postgrestest",
		"testing",
	}
	root := repoRoot(t)
	for _, bin := range []string{"gateway", "tradefetcher", "notifier"} {
		pkg := "./services/" + bin + "/cmd/" + bin
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		if !deps["github.com/yzpay/yzpay/shared/store/postgres"] {
			t.Fatalf("%s: go list shows no postgres store; the check below would prove nothing", bin)
		}
		for _, f := range forbidden {
			for d := range deps {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s links %s", bin, d)
				}
			}
		}
	}
}

package postgrestest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/yzpay/yzpay/shared/store/postgres/postgrestest"
)

func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return postgrestest.DefaultURL
}

func TestNewDatabase(t *testing.T) {
	var name string
	t.Run("create", func(t *testing.T) {
		url := postgrestest.NewDatabase(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatalf("connect to the new database: %v", err)
		}
		// Left open on purpose: the drop must force it closed.
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "yzt_") || !strings.Contains(name, "create") {
			t.Errorf("database name %q does not say where it came from", name)
		}
	})
	if name == "" {
		t.Skip("no database was created")
	}
	admin, err := pgx.Connect(t.Context(), adminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(t.Context())
	var exists bool
	if err := admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// TestUnreachable runs a test against a closed port in a child process: it
// must skip with one clear line, or fail when CI is set.
func TestUnreachable(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") != "" {
		postgrestest.NewDatabase(t)
		t.Fatal("NewDatabase returned for an unreachable server")
	}
	const url = "postgres://postgres:secret@127.0.0.1:1/postgres?sslmode=disable"
	run := func(ci string) (string, error) {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestUnreachable$", "-test.v")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "TEST_DATABASE_URL=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "PGTEST_CHILD=1", "TEST_DATABASE_URL="+url, "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run("")
	if err != nil || !strings.Contains(out, "--- SKIP") ||
		!strings.Contains(out, "postgres not reachable at postgres://postgres:xxxxx@127.0.0.1:1/postgres?sslmode=disable: set TEST_DATABASE_URL (skipping)") {
		t.Errorf("without CI: err %v, output:\n%s", err, out)
	}
	if strings.Contains(out, "secret") {
		t.Errorf("password printed:\n%s", out)
	}

	out, err = run("true")
	if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "postgres not reachable") {
		t.Errorf("with CI: err %v, output:\n%s", err, out)
	}
}

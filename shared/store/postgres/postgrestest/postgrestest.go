// Package postgrestest gives tests a fresh PostgreSQL database of their own, so
// that packages whose tests need Postgres can run in parallel without seeing
// each other's rows.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultURL is used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// NewDatabase creates a database with a unique name on the server named by
// TEST_DATABASE_URL (default DefaultURL) and returns its URL. The database is
// dropped, even with connections still open, when t ends.
//
// When the server does not answer within about two seconds the test is
// skipped, so `go test ./...` works on a machine without Postgres; with CI
// set in the environment it fails instead, so CI cannot pass by skipping.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = DefaultURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: TEST_DATABASE_URL must be a postgres:// URL")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		msg := fmt.Sprintf("postgres not reachable at %s: set TEST_DATABASE_URL (skipping)", u.Redacted())
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI is set, so this fails: %v", strings.TrimSuffix(msg, " (skipping)"), err)
		}
		t.Skip(msg)
	}
	defer admin.Close(context.Background())

	name := databaseName(t.Name())
	if err := createDatabase(admin, name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		// FORCE: a test that forgot to close its pool must not leak databases.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	dbURL := *u
	dbURL.Path = "/" + name
	dbURL.RawPath = ""
	return dbURL.String()
}

// createDatabase retries while template1 is busy: CREATE DATABASE copies it
// and refuses while another session (often a concurrent CREATE DATABASE from
// a test running in parallel) is connected to it.
func createDatabase(admin *pgx.Conn, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object_in_use
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// databaseName is unique and says which test made it, for whoever finds it
// left behind after a crash.
func databaseName(testName string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	slug := strings.Trim(nonWord.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	const maxSlug = 63 - len("yzt__") - 2*len(b) // Postgres truncates names at 63 bytes
	if len(slug) > maxSlug {
		slug = slug[:maxSlug]
	}
	return "yzt_" + hex.EncodeToString(b[:]) + "_" + slug
}

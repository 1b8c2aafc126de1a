// Package migrations embeds the versioned SQL schema of the order store, one
// folder per dialect, so that every binary carries the migrations it applies.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql (goose format).
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS

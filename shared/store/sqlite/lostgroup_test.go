package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// A real SQLITE_FULL (max_page_count) in one write of a group: every caller
// told success has its row, every caller told failure has not.
func TestGroupDiskFull(t *testing.T) {
	s, enq := groupStore(t)
	// Leave a few pages of room on the writer connection.
	if err := s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		var pages int
		if err := tx.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+3))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, bigAt := range []int{0, 1, 2} {
		t.Run(fmt.Sprint("big at ", bigAt), func(t *testing.T) {
			release := hold(t, s, enq)
			fns := make([]func(ctx context.Context, tx *sql.Tx) error, 3)
			for i := range fns {
				fns[i] = func(ctx context.Context, tx *sql.Tx) error {
					k := fmt.Sprintf("full-%d-%d", bigAt, i)
					if i == bigAt {
						_, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES (?, length(randomblob(1000000)))`, k)
						if err != nil {
							return err
						}
						_, err = tx.ExecContext(ctx, `CREATE TABLE big (b BLOB); INSERT INTO big VALUES (randomblob(1000000))`)
						return err
					}
					return bump(ctx, tx, k)
				}
			}
			errs := inOneGroup(t, s, enq, release, fns)
			for i, err := range errs {
				_, ok := kv(t, s, fmt.Sprintf("full-%d-%d", bigAt, i))
				t.Logf("write %d: err=%v kept=%v", i, err, ok)
				if (err == nil) != ok {
					t.Errorf("write %d: err %v but kept %v", i, err, ok)
				}
			}
		})
	}
}

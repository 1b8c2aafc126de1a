package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// By default SQLite checkpoints inside the commit that takes the WAL past
// 1,000 pages: that writer copies the pages into the database file and
// fsyncs it while every other write waits behind it, a stall of several
// milliseconds a few times a second at 1,000 payments/s, and a hot page
// (an index's last leaf) is copied again at every such checkpoint. A
// connection of its own checkpoints instead, off the writer, every
// checkpointEvery (docs/performance.md, "Hot path"). PASSIVE never waits
// for the writer or the readers, so it blocks nobody; what it cannot copy
// yet it copies next time.
const (
	checkpointEvery = 200 * time.Millisecond
	// backstopCheckpointPages is the writer's own automatic checkpoint, kept
	// for when the background one falls behind or fails: the WAL then stops
	// growing at about this many 4 KiB pages (32 MiB) as before at 1,000.
	backstopCheckpointPages = 8000
)

type checkpointer struct {
	db       *sql.DB
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func startCheckpointer(ctx context.Context, path string, every time.Duration) (*checkpointer, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop(every)
	return c, nil
}

func (c *checkpointer) loop(every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		// An error here loses nothing: the commits are in the WAL, and the
		// writer's backstop checkpoint still bounds it; the next tick tries
		// again.
		_, _ = c.db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// close stops the loop; the Store may be closed more than once.
func (c *checkpointer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}

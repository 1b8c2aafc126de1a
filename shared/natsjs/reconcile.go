package natsjs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// reconcileReceipt is the body of a reconciliation receipt: the fields of a
// Youzan push the tradefetcher reads, so both travel the same path.
type reconcileReceipt struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	KdtID  int64  `json:"kdt_id"`
	Status string `json:"status"`
	MsgID  string `json:"msg_id"`
}

// PublishReconcileReceipt feeds trade tid into the pipeline as if Youzan had
// pushed it: the tradefetcher reads the trade and records what it finds.
// One receipt per trade per hour (the JetStream message id): enough to
// repeat a check whose first reading lagged, not so many that several
// sweepers or operators flood the stream.
func PublishReconcileReceipt(ctx context.Context, js jetstream.JetStream, tid string, now time.Time) error {
	id := fmt.Sprintf("reconcile:%s:%d", tid, now.Unix()/3600)
	body, _ := json.Marshal(reconcileReceipt{Type: ReconcileType, ID: tid, MsgID: id})
	msg := nats.NewMsg(WebhookSubject(ReconcileType))
	msg.Data = body
	msg.Header.Set(HeaderReceivedAt, now.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(HeaderTID, tid)
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish reconcile receipt for %s: %w", tid, err)
	}
	return nil
}

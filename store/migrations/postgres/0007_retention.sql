-- Retention and size caps (store/retention.go, issue 15 finding 11): the ledger is
-- pruned by completion time and by size, oldest first, never touching a pending entry
-- or its event. These indexes keep each pruning batch an index range.
CREATE INDEX gateway_outbox_event ON gateway_outbox (event_id);
CREATE INDEX gateway_outbox_done ON gateway_outbox (done_at) WHERE state <> 'pending';
CREATE INDEX gateway_outbox_dest ON gateway_outbox (dest, id);
CREATE INDEX gateway_events_received ON gateway_events (received);

-- When an outbox worker handed a job to a channel that cannot deduplicate (Telegram's
-- sendMessage): set just before the call, cleared when the attempt is put back for a retry.
-- A job found with it set and not done was interrupted mid-send (the process died), so it
-- may have been delivered: it is dead-lettered for a human to check, never sent twice.
ALTER TABLE jobs ADD COLUMN send_started_at TIMESTAMPTZ;

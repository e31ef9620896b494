-- The LLM beside the rules (BOT_LLM_*): for an inbound message the model was asked about, what
-- came of it (`used`, or why the rules answered alone: `timeout`, `bad_json`, …). `bot report`
-- counts them; NULL for every message the rules read alone.
ALTER TABLE messages ADD COLUMN llm TEXT;

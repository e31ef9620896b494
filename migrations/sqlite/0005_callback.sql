-- A hand-off with no managers' channel set up: since when a manager is to call the client back
-- (the bot keeps answering, so `owner` stays 'bot'); cleared when the conversation is released.
ALTER TABLE conversations ADD COLUMN callback_since TEXT;

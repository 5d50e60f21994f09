-- Cost per turn and per session, priced by a named version of the price table
-- (parley_analytics.pricing; PARLEY_PRICES_FILE replaces it).
--
-- turn_id: the turn the usage belongs to, from the event's Parley-Turn header; NULL when the
-- publisher does not know it (the STT bills an utterance before the dialogue numbers its turn:
-- readers match the k-th such row of a session to its k-th spoken turn).
ALTER TABLE voice_usage ADD COLUMN turn_id integer CHECK (turn_id > 0);
-- The price table version that priced cost_usd.
ALTER TABLE voice_usage ADD COLUMN price_version text;
-- Ten decimal places: a few tokens of a cheap model cost less than a millionth of a dollar.
ALTER TABLE voice_usage ALTER COLUMN cost_usd TYPE numeric(20, 10);
ALTER TABLE voice_analytics ALTER COLUMN estimated_cost_usd TYPE numeric(20, 10);
-- The versions that priced a session's usage (comma separated when prices changed mid-session).
ALTER TABLE voice_analytics ADD COLUMN price_version text;

-- Baseline: one round trip that does nothing, the ceiling for any statement.
--
-- The \set is not decoration. pgbench 15 timestamps a transaction lazily: a
-- script made of one SQL command whose result is already there when pgbench
-- first looks (common when client and server share 2 cores) is logged with
-- latency 0 and the next one with both. A meta-command resets pgbench's clock,
-- as in the decision scripts, so the per-transaction log used for the
-- percentiles stays true, and both sides pay the same client-side step.
\set k random(1, 1000000)
SELECT 1;

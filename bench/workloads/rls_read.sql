-- rls: read all 100,000 rows of bench.docs as a random user. The runner runs
-- it as bench_reader (decide_user; the table's RLS policy calls
-- decide_row_allowed((SELECT current_setting('app.user')), 'read', 'doc:', id)
-- on every row) and, as the baseline, as bench_plain (BYPASSRLS: the same read with no
-- RLS). Both pay the same set_config round trip.
-- Variables from the runner: actors.
\set u random(0, :actors - 1)
SELECT set_config('app.user', 'user:' || :u, false);
SELECT count(*) FROM bench.docs;

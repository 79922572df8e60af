-- bench/setup.sql — objects the workloads need besides the data set of
-- bench/generate.sql. Run by bench/run.sh as a superuser, after generate.sql.
--
--   bench.docs   100,000 rows (id 0..99999; the decision resource is
--                'doc:' || id), read through a row-level security policy
--                that calls decide_row_allowed() for every row (the form
--                the README recommends: the actor read once per statement);
--   bench_reader a login role in decide_user: reads bench.docs under RLS;
--   bench_plain  a login role with BYPASSRLS: the same read with no RLS.
--
-- Roles are cluster-wide; the runner's cluster is thrown away afterwards.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

CREATE TABLE bench.docs (
    id    integer PRIMARY KEY,
    title text NOT NULL
);
INSERT INTO bench.docs (id, title)
SELECT i, 'document ' || i FROM generate_series(0, 99999) AS i;
VACUUM ANALYZE bench.docs;

ALTER TABLE bench.docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_read ON bench.docs FOR SELECT
    USING (decide_row_allowed((SELECT current_setting('app.user')), 'read', 'doc:', id));

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_reader') THEN
        CREATE ROLE bench_reader LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_plain') THEN
        CREATE ROLE bench_plain LOGIN BYPASSRLS;
    END IF;
END
$$;
GRANT decide_user TO bench_reader;
GRANT USAGE ON SCHEMA bench TO bench_reader, bench_plain;
GRANT SELECT ON bench.docs TO bench_reader, bench_plain;

-- The hash chains of the decision log and of the change history:
-- decide_verify_log() finds a logged decision altered, removed or inserted
-- by hand (in the chunks that hold them), links removed or altered, and
-- with a head kept from decide_log_head() the newest decisions cut with
-- their links; the same for the
-- change history; an untouched log and history verify clean.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
-- A log and a history of this test's own (the rows other tests wrote by
-- hand are not the worker's).
TRUNCATE decide.decision_chunks, decide.decision_keys, decide.log_chain;
TRUNCATE decide.changes, decide.changes_chain;
\i sql/include/try.sql
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;
CREATE ROLE regress_chain_auditor;
CREATE ROLE regress_chain_admin;
CREATE ROLE regress_chain_app;
GRANT decide_auditor TO regress_chain_auditor;
GRANT decide_admin TO regress_chain_admin;
GRANT decide_user TO regress_chain_app;
INSERT INTO decide.policies (name, effect, priority, actor, action, resource) VALUES
    ('chain-read', 'allow', 0, '*', 'read', 'doc:*'),
    ('chain-deny', 'deny', 5, 'user:eve', '*', '*');
SELECT decide_flush();
SELECT clock_timestamp() AS start \gset

-- Three flushed batches: plain, with contexts, and denials.
SET decide.log = 'all';
SELECT count(*) FROM generate_series(1, 40) g, decide('user:c' || g, 'read', 'doc:' || g);
SELECT decide_flush();
SET decide.log_context = on;
SELECT count(*) FROM generate_series(1, 40) g,
       decide('user:c' || g, 'read', 'doc:x', jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g)));
RESET decide.log_context;
SELECT decide_flush();
SELECT count(*) FROM generate_series(1, 40) g, decide('user:eve', 'write', 'doc:' || g);
SELECT decide_flush();
RESET decide.log;
SELECT decide_log_head() AS head \gset
SELECT count(*) AS rows_logged, count(DISTINCT c.link) >= 3 AS in_three_links_or_more,
       bool_and(c.link IS NOT NULL) AS every_row_in_a_link
  FROM decide.decisions d
  LEFT JOIN decide.log_chain c ON d.id BETWEEN c.first_id AND c.last_id
 WHERE d.decided_at >= :'start';
SELECT :'head' ~ '^[0-9]+:[0-9a-f]{64}/[0-9]+:[0-9a-f]{64}$' AS head_shape,
       split_part(:'head', ':', 1)::bigint = (SELECT max(link) FROM decide.log_chain) AS head_is_newest;
SELECT min(id) AS first_row, max(id) AS last_row FROM decide.decisions WHERE decided_at >= :'start' \gset
SELECT id AS context_row FROM decide.decisions
 WHERE decided_at >= :'start' AND context IS NOT NULL ORDER BY id LIMIT 1 \gset
SELECT link AS context_link FROM decide.log_chain WHERE :context_row BETWEEN first_id AND last_id \gset

-- Untouched: clean, whole, in a window, and against the kept head.
SELECT count(*) AS problems FROM decide_verify_log();
SELECT count(*) AS problems_from_start FROM decide_verify_log(:'start');
SELECT count(*) AS problems_with_head FROM decide_verify_log(:'start', NULL, :'head');

-- A superuser rewrites the chunk that holds one decision (as
-- decide.decision_chunk() encodes it), with that decision changed or
-- removed.
CREATE FUNCTION pg_temp.rewrite_chunk(of_row bigint, new_resource text, remove boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    SELECT ch.last_at, ch.first_id, ch.body INTO STRICT c FROM decide.decision_chunks ch
     WHERE EXISTS (SELECT FROM decide.decision_chunk_rows(ch.body) r WHERE r.id = of_row);
    UPDATE decide.decision_chunks ch
       SET body = (SELECT decide.decision_chunk(array_agg(r ORDER BY r.id))
                     FROM (SELECT r.id, r.decided_at, r.actor, r.action,
                                  CASE WHEN r.id = of_row THEN new_resource ELSE r.resource END AS resource,
                                  r.allowed, r.effect, r.policy, r.risk_level, r.reason, r.epoch,
                                  r.source, r.context, r.priority, r.condition_unknown
                             FROM decide.decision_chunk_rows(c.body) r
                            WHERE NOT (remove AND r.id = of_row)) r),
           rows = rows - CASE WHEN remove THEN 1 ELSE 0 END
     WHERE ch.last_at = c.last_at AND ch.first_id = c.first_id;
END
$$;
-- One decision altered: its link's decisions differ.
BEGIN;
SELECT pg_temp.rewrite_chunk(:context_row, 'doc:altered', false);
SELECT resource FROM decide.decisions WHERE id = :context_row;
SELECT problem, link = :context_link AS its_link, first_id <= :context_row AND last_id >= :context_row AS covers_it,
       regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail
  FROM decide_verify_log(:'start');
ROLLBACK;
-- One byte of a chunk changed: verification hashes chunks as stored, and
-- does not need to read them.
BEGIN;
UPDATE decide.decision_chunks SET body = set_byte(body, length(body) - 2, get_byte(body, length(body) - 2) # 1)
 WHERE EXISTS (SELECT FROM decide.decision_chunk_rows(body) r WHERE r.id = :context_row);
SELECT problem, link = :context_link AS its_link FROM decide_verify_log(:'start');
ROLLBACK;
-- One decision deleted.
BEGIN;
SELECT pg_temp.rewrite_chunk(:context_row, NULL, true);
SELECT count(*) AS gone FROM decide.decisions WHERE id = :context_row;
SELECT problem, link = :context_link AS its_link, regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail
  FROM decide_verify_log(:'start');
ROLLBACK;
-- A forged decision inserted as the worker would, with the next id.
BEGIN;
INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, policy, risk_level,
                              priority, condition_unknown, epoch, source)
VALUES (now(), 'user:forged', 'read', 'doc:1', true, 'allow', 'chain-read', 'low', 0, false, 1, 'miss');
SELECT problem, link IS NULL AS no_link, first_id > :last_row AS after_the_log,
       regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail
  FROM decide_verify_log(:'start');
-- ... or slipped into a batch's id range, at another time.
INSERT INTO decide.decisions (id, decided_at, actor, action, resource, allowed, effect, policy, risk_level,
                              priority, condition_unknown, epoch, source)
VALUES (:context_row, now() - interval '1 hour', 'user:forged', 'read', 'doc:1', true, 'allow',
        'chain-read', 'low', 0, false, 1, 'miss');
SELECT problem, link = :context_link AS its_link, first_id IS NOT NULL AS named FROM decide_verify_log() ORDER BY 1;
ROLLBACK;
-- The newest decisions cut with their links: the chain left is intact, and
-- only the kept head shows the cut.
BEGIN;
SELECT min(link) AS cut_link FROM decide.log_chain WHERE last_id >= :first_row + 80 \gset
DELETE FROM decide.decision_chunks WHERE first_id >= (SELECT first_id FROM decide.log_chain WHERE link = :cut_link);
DELETE FROM decide.log_chain WHERE link >= :cut_link;
SELECT count(*) AS problems_without_head FROM decide_verify_log(:'start');
SELECT problem, link = split_part(:'head', ':', 1)::bigint AS the_head_link,
       regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail
  FROM decide_verify_log(:'start', NULL, :'head');
ROLLBACK;
-- A link removed from the middle, its rows kept: the gap, and its rows.
BEGIN;
DELETE FROM decide.log_chain WHERE link = :context_link;
SELECT problem, link = :context_link AS that_link, first_id IS NOT NULL AS names_rows
  FROM decide_verify_log(:'start') ORDER BY 1;
ROLLBACK;
-- A link edited: its hash no longer agrees with it, nor its rows.
BEGIN;
UPDATE decide.log_chain SET rows = rows - 1 WHERE link = :context_link;
SELECT problem, link = :context_link AS that_link FROM decide_verify_log(:'start') ORDER BY 1, 2;
ROLLBACK;
-- A head that is not one; after all that rolled back, the log verifies
-- clean against the kept head again.
SELECT pg_temp.try($$SELECT * FROM decide_verify_log(NULL, NULL, 'not a head')$$);
SELECT count(*) AS problems_after FROM decide_verify_log(:'start', NULL, :'head');

-- The keys, an index of the log outside the chain, checked against its
-- decisions: clean untouched; a time removed from a key row, a key row
-- deleted, a time added, and key rows that no longer name their chunks are
-- each reported, naming the kind and key; a decision inserted by hand has
-- no keys until decide.build_decision_keys() writes them.
SELECT count(*) AS key_problems FROM decide_verify_log_keys();
SELECT count(*) AS key_problems_from_start FROM decide_verify_log_keys(:'start', now());
BEGIN;
UPDATE decide.decision_keys SET offsets = offsets[1:cardinality(offsets) - 1]
 WHERE kind = 'a' AND key = 'user:eve' AND last_at = (SELECT max(last_at) FROM decide.decision_keys
                                                       WHERE kind = 'a' AND key = 'user:eve');
SELECT problem, kind, key, decisions FROM decide_verify_log_keys();
ROLLBACK;
BEGIN;
DELETE FROM decide.decision_keys WHERE kind = 'p' AND key = 'chain-deny';
SELECT problem, kind, key, decisions FROM decide_verify_log_keys();
ROLLBACK;
BEGIN;
UPDATE decide.decision_keys SET offsets = offsets || 1 WHERE kind = 'a' AND key = 'user:c7'
   AND last_at = (SELECT min(last_at) FROM decide.decision_keys WHERE kind = 'a' AND key = 'user:c7');
SELECT problem, kind, key, decisions FROM decide_verify_log_keys();
ROLLBACK;
BEGIN;
UPDATE decide.decision_keys SET chunks = ARRAY[chunks[1] - 1] WHERE kind = 'd';
SELECT problem, kind, key, decisions FROM decide_verify_log_keys();
ROLLBACK;
BEGIN;
INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, epoch, source)
VALUES (now(), 'user:by-hand', 'read', 'doc:1', false, 'deny', 1, 'miss');
SELECT problem, kind, key, decisions FROM decide_verify_log_keys();
SELECT decide.build_decision_keys((now() AT TIME ZONE 'UTC')::date) > 0 AS keys_written;
SELECT count(*) AS key_problems_after_building FROM decide_verify_log_keys();
ROLLBACK;

-- The change history's chain: a link per statement that changed policies
-- or entities.
SELECT count(*) AS history_links, sum(rows) AS history_rows,
       sum(rows) = (SELECT count(*) FROM decide.changes) AS every_change_linked
  FROM decide.changes_chain;
BEGIN;
UPDATE decide.changes SET current_user_name = 'someone else'
 WHERE id = (SELECT max(id) FROM decide.changes WHERE table_name = 'policies');
SELECT problem, first_id IS NOT NULL AS named FROM decide_verify_log(:'start');
ROLLBACK;
BEGIN;
DELETE FROM decide.changes WHERE id = (SELECT min(id) FROM decide.changes);
SELECT problem, regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail FROM decide_verify_log(:'start');
ROLLBACK;
-- Changes made after the head was kept, then cut with their links: only
-- the kept head shows it.
SELECT decide_log_head() AS head_before_changes \gset
INSERT INTO decide.entities (uid) VALUES ('user:chain-1');
UPDATE decide.entities SET attrs = '{"a": 1}' WHERE uid = 'user:chain-1';
SELECT decide_log_head() AS head_after_changes \gset
SELECT count(*) AS problems_after_changes FROM decide_verify_log(:'start', NULL, :'head_after_changes');
BEGIN;
DELETE FROM decide.changes WHERE key = 'user:chain-1';
DELETE FROM decide.changes_chain WHERE link > split_part(split_part(:'head_before_changes', '/', 2), ':', 1)::bigint;
SELECT count(*) AS problems_without_head FROM decide_verify_log(:'start');
SELECT problem, regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail
  FROM decide_verify_log(:'start', NULL, :'head_after_changes');
ROLLBACK;

-- Who may verify, and nobody writes the chain.
SET ROLE regress_chain_auditor;
SELECT count(*) AS auditor_problems FROM decide_verify_log(:'start');
SELECT count(*) AS auditor_key_problems FROM decide_verify_log_keys(:'start');
SELECT decide_log_head() IS NOT NULL AS auditor_head;
RESET ROLE;
SET ROLE regress_chain_admin;
SELECT pg_temp.try($$DELETE FROM decide.log_chain$$);
SELECT pg_temp.try($$DELETE FROM decide.changes_chain$$);
SELECT pg_temp.try($$UPDATE decide.decision_chunks SET rows = 1$$);
SELECT pg_temp.try($$INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, epoch, source)
                     VALUES (now(), 'user:x', 'read', 'doc:1', false, 1, 'miss')$$);
RESET ROLE;
SET ROLE regress_chain_app;
SELECT pg_temp.try($$SELECT * FROM decide_verify_log()$$);
SELECT pg_temp.try($$SELECT decide_log_head()$$);
SELECT pg_temp.try($$SELECT * FROM decide_verify_log_keys()$$);
RESET ROLE;

TRUNCATE decide.policies, decide.entities;
DROP ROLE regress_chain_auditor, regress_chain_admin, regress_chain_app;

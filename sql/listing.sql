-- Authorized listing: decide_resources() and decide_actors() list exactly
-- the entities for which decide_allowed() is true, with the policy decide()
-- names, in uid order, in keyset pages; decide_row_allowed() answers as
-- decide_allowed() does, row by row; decide.entity_links follows every
-- change to decide.entities.
SET client_min_messages = warning;
SET decide.log = 'none';
TRUNCATE decide.policies, decide.entities;

-- A small case to read: a folder and a parent that has no row of its own.
INSERT INTO decide.entities (uid, parents, attrs) VALUES
  ('user:alice', '{role:eng}', '{"level": 5}'), ('user:bob', '{role:ops}', '{"level": 1}'),
  ('role:eng', '{}', '{}'),
  ('folder:a', '{}', '{}'),
  ('doc:1', '{folder:a}', '{"secret": false}'), ('doc:2', '{folder:a}', '{"secret": true}'),
  ('doc:3', '{folder:b}', '{}'), ('doc:4', '{}', '{}'), ('img:1', '{folder:a}', '{}');
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('eng-read-a', 'allow', 0, 'role:eng', 'read', 'folder:a', NULL),
  ('no-secrets', 'deny', 1, '*', '*', '*', '$.resource.attrs.secret == true'),
  ('bob-folders', 'allow', 0, 'user:bob', 'read', 'folder:*', NULL),
  ('anyone-doc4', 'allow', 0, 'user:*', 'read', 'doc:4', NULL);
SELECT * FROM decide.entity_links ORDER BY parent, child;
-- folder:a and what is under it, but not the secret doc:2; doc:4 by its uid.
SELECT * FROM decide_resources('user:alice', 'read');
-- A glob reaches folder:b through doc:3's parents, though it has no row.
SELECT * FROM decide_resources('user:bob', 'read');
SELECT * FROM decide_resources('user:bob', 'read', prefix => 'doc:');
SELECT * FROM decide_resources('user:bob', 'read', after => 'doc:1', page_size => 2);
SELECT * FROM decide_resources('user:bob', 'read', page_size => 0);
SELECT * FROM decide_actors('read', 'doc:1');
SELECT * FROM decide_actors('read', 'doc:4', prefix => 'user:');
-- Nothing for an action no policy names.
SELECT count(*) FROM decide_resources('user:alice', 'delete');

-- An unconditional deny of everything outranks the allows: nothing listed.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource)
VALUES ('freeze', 'deny', 9, '*', 'read', '*');
SELECT count(*) FROM decide_resources('user:alice', 'read');
DELETE FROM decide.policies WHERE name = 'freeze';

-- entity_links follows updates (parents changed, renames), deletes and
-- truncation; a rollback leaves it as it was.
UPDATE decide.entities SET parents = '{folder:b}' WHERE uid = 'doc:1';
UPDATE decide.entities SET uid = 'img:9' WHERE uid = 'img:1';
UPDATE decide.entities SET attrs = '{"secret": false}' WHERE uid = 'doc:2';
DELETE FROM decide.entities WHERE uid = 'doc:3';
SELECT * FROM decide.entity_links ORDER BY parent, child;
SELECT * FROM decide_resources('user:alice', 'read');
BEGIN;
UPDATE decide.entities SET parents = '{}' WHERE uid = 'doc:2';
SELECT * FROM decide_resources('user:alice', 'read');
ROLLBACK;
SELECT * FROM decide_resources('user:alice', 'read');
SELECT count(*) = (SELECT count(*) FROM decide.entities e, unnest(e.parents))
       AS links_match_parents FROM decide.entity_links;

-- A decide_user may list, as it may decide, and learns the policies' names
-- only; it cannot read the links (nor the entities) themselves.
CREATE ROLE regress_lister LOGIN;
GRANT decide_user TO regress_lister;
SET ROLE regress_lister;
SELECT * FROM decide_resources('user:alice', 'read', prefix => 'doc:');
SELECT * FROM decide_actors('read', 'doc:4');
\set VERBOSITY sqlstate
SELECT count(*) FROM decide.entity_links;
\set VERBOSITY default
RESET ROLE;
DROP ROLE regress_lister;

-- Row-level security: decide_row_allowed() with the actor read once per
-- statement (an InitPlan), the answers decide_allowed() gives row by row;
-- and the listing form, a hashed subplan, with the same rows.
CREATE TABLE docs_rls (id integer PRIMARY KEY, title text NOT NULL);
INSERT INTO docs_rls SELECT i, 'document ' || i FROM generate_series(1, 5) i;
ALTER TABLE docs_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_read ON docs_rls FOR SELECT
    USING (public.decide_row_allowed((SELECT current_setting('app.user')), 'read', 'doc:', id));
CREATE TABLE docs_listed (id integer PRIMARY KEY, title text NOT NULL);
INSERT INTO docs_listed SELECT * FROM docs_rls;
ALTER TABLE docs_listed ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_read ON docs_listed FOR SELECT
    USING (('doc:' || id) IN (SELECT resource FROM public.decide_resources(
               current_setting('app.user'), 'read', prefix => 'doc:')));
CREATE ROLE regress_rls_reader;
GRANT decide_user TO regress_rls_reader;
GRANT SELECT ON docs_rls, docs_listed TO regress_rls_reader;
SET ROLE regress_rls_reader;
SET "app.user" = 'user:alice';
EXPLAIN (COSTS OFF) SELECT * FROM docs_rls;
EXPLAIN (COSTS OFF) SELECT * FROM docs_listed;
SELECT * FROM docs_rls ORDER BY id;
SELECT id FROM docs_listed EXCEPT SELECT id FROM docs_rls;
SELECT id FROM docs_rls WHERE NOT decide_allowed('user:alice', 'read', 'doc:' || id);
SET "app.user" = 'user:bob';
SELECT * FROM docs_rls ORDER BY id;
SELECT id FROM docs_listed EXCEPT SELECT id FROM docs_rls;
RESET "app.user";
RESET ROLE;
DROP TABLE docs_rls, docs_listed;
DROP ROLE regress_rls_reader;

-- Bad input: a clear error with an SQLSTATE.
\set VERBOSITY sqlstate
SELECT * FROM decide_resources(NULL, 'read');
SELECT * FROM decide_resources('user:alice', NULL);
SELECT * FROM decide_actors('read', NULL);
SELECT * FROM decide_resources('user:alice', 'read', NULL);
SELECT * FROM decide_resources('user:alice', 'read', '[1]');
SELECT * FROM decide_resources('user:alice', 'read', prefix => NULL);
SELECT * FROM decide_resources('user:alice', 'read', prefix => repeat('x', 513));
SELECT * FROM decide_resources('user:alice', 'read', after => '');
SELECT * FROM decide_resources('user:alice', 'read', after => 'a*b');
SELECT * FROM decide_resources('user:alice', 'read', page_size => -1);
SELECT * FROM decide_resources('user:ali*', 'read');
SELECT decide_row_allowed(NULL, 'read', 'doc:', 1);
SELECT decide_row_allowed('user:alice', NULL, 'doc:', 1);
SELECT decide_row_allowed('user:alice', 'read', NULL, 1);
SELECT decide_row_allowed('user:alice', 'read', 'doc:', NULL::bigint);
SELECT decide_row_allowed('user:alice', 'read', 'doc:', NULL::text);
SELECT decide_row_allowed('user:alice', 'read', 'doc:', 1, NULL);
SELECT decide_row_allowed('user:alice', 'read', 'doc:', 1, '[1]');
SELECT decide_row_allowed('user:ali*', 'read', 'doc:', 1);
SELECT decide_row_allowed('user:alice', 'read', 'doc*', 1);
SELECT decide_row_allowed('user:alice', 'read', 'doc:', 'a?b');
SELECT decide_row_allowed('user:alice', 'read', repeat('x', 510), 12345);
SELECT decide_row_allowed('user:alice', 'read', 'doc:', repeat('x', 600));
SELECT decide_row_allowed('user:alice', 'read', '', '');
\set VERBOSITY default
SELECT * FROM decide_resources('user:alice', 'read', page_size => -1);
SELECT decide_row_allowed('user:alice', 'read', 'doc:', NULL::bigint);
-- Only decide_user and decide_admin may call it, as decide_allowed().
CREATE ROLE regress_no_decide;
SET ROLE regress_no_decide;
\set VERBOSITY sqlstate
SELECT decide_row_allowed('user:alice', 'read', 'doc:', 1);
\set VERBOSITY default
RESET ROLE;
DROP ROLE regress_no_decide;

-- The differential check: random hierarchies (areas, folders with one to
-- three parents, some of them parents without rows, documents, users in
-- groups in roles) and random policies (uids, globs, stars; allows and
-- denies; priorities; conditions on the actor, the resource and the
-- context: on attribute keys, on uids, on the attributes whole).  For many
-- actors, actions, contexts and prefixes, the listing equals the entities
-- decide_allowed() allows, with decide()'s policy.
TRUNCATE decide.policies, decide.entities;
SELECT setseed(0.42);
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'area:' || a, '{}', jsonb_build_object('level', a % 4) FROM generate_series(0, 5) a;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'folder:' || f,
       ARRAY(SELECT DISTINCT (ARRAY['area:' || (f % 6), 'area:' || ((f * 7) % 6), 'ghost:' || (f % 3)])[1 + (f * k) % 3]
               FROM generate_series(1, 1 + f % 3) k),
       jsonb_build_object('level', f % 5)
  FROM generate_series(0, 39) f;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'folder:' || f || '/sub', ARRAY['folder:' || f], '{}' FROM generate_series(0, 39, 4) f;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'doc:' || d,
       ARRAY(SELECT DISTINCT CASE WHEN (d + k) % 5 = 0 THEN 'folder:' || ((d + k) % 40) || '/sub'
                                  ELSE 'folder:' || ((d * k + 3) % 40) END
               FROM generate_series(1, 1 + d % 3) k),
       jsonb_build_object('level', d % 7, 'secret', d % 11 = 0)
  FROM generate_series(0, 899) d;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'role:' || r, '{}', '{}' FROM generate_series(0, 4) r;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'group:' || g, ARRAY['role:' || (g % 5)], '{}' FROM generate_series(0, 9) g;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'user:' || u, ARRAY['group:' || (u % 10)] || CASE WHEN u % 4 = 0 THEN ARRAY['role:' || (u % 3)] ELSE '{}' END,
       jsonb_build_object('level', u % 6)
  FROM generate_series(0, 59) u;
INSERT INTO decide.entities (uid, parents) VALUES
  ('read', '{action:view}'), ('list', '{action:view}'), ('write', '{action:modify}');

INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition)
SELECT 'r' || i,
       CASE WHEN random() < 0.3 THEN 'deny' ELSE 'allow' END::decide.effect,
       floor(random() * 4)::int,
       (ARRAY['user:' || floor(random() * 60)::int, 'group:' || floor(random() * 10)::int,
              'role:' || floor(random() * 5)::int, 'user:1*', 'user:?', '*'])[1 + floor(random() * 6)::int],
       (ARRAY['read', 'list', 'write', 'action:view', 'action:modify', '*'])[1 + floor(random() * 6)::int],
       (ARRAY['doc:' || floor(random() * 900)::int, 'folder:' || floor(random() * 40)::int,
              'folder:' || floor(random() * 40)::int || '/sub', 'area:' || floor(random() * 6)::int,
              'ghost:' || floor(random() * 3)::int, 'doc:1*', 'folder:?', 'folder:*/sub', 'doc:*',
              '*'])[1 + floor(random() * 10)::int],
       CASE floor(random() * 11)::int
            WHEN 0 THEN '$.resource.attrs.level > 3'
            WHEN 1 THEN '$.context.ip starts with "10."'
            WHEN 2 THEN '$.actor.attrs.level >= 2'
            WHEN 3 THEN '$.resource.attrs.secret == true'
            WHEN 4 THEN '$.resource.uid starts with "doc:1"'
            WHEN 5 THEN 'exists($.resource.attrs ? (@.level > 4))'
            WHEN 6 THEN '$.actor.uid starts with "user:1" || $.resource.attrs.level == $.actor.attrs.level'
       END::jsonpath
  FROM generate_series(1, 300) i;
-- The broad policies (stars) are rare enough that most listings walk.
DELETE FROM decide.policies WHERE resource = '*' AND effect = 'allow' AND name > 'r3';
SELECT count(*) AS policies FROM decide.policies;
SELECT count(*) AS entities FROM decide.entities;

CREATE TEMP TABLE requests AS
SELECT 'user:' || u AS actor, act AS action, ctx::jsonb AS context, pre AS prefix
  FROM generate_series(0, 59, 5) u,
       unnest(ARRAY['read', 'write']) act,
       unnest(ARRAY['{}', '{"ip": "10.0.0.1"}']) ctx,
       unnest(ARRAY['', 'doc:1']) pre;
SELECT count(*) AS requests FROM requests;

-- Rows that one side has and the other has not (a view: decided when read,
-- also under the transaction's own change below): none.
CREATE TEMP VIEW resource_mismatches AS
    (SELECT q.actor, q.action, q.context, q.prefix, l.resource, l.policy
       FROM requests q, decide_resources(q.actor, q.action, q.context, q.prefix) l
     EXCEPT
     SELECT q.actor, q.action, q.context, q.prefix, e.uid, d.policy
       FROM requests q JOIN decide.entities e ON starts_with(e.uid, q.prefix),
            decide(q.actor, q.action, e.uid, q.context) d
      WHERE d.allowed)
    UNION ALL
    (SELECT q.actor, q.action, q.context, q.prefix, e.uid, d.policy
       FROM requests q JOIN decide.entities e ON starts_with(e.uid, q.prefix),
            decide(q.actor, q.action, e.uid, q.context) d
      WHERE d.allowed
     EXCEPT
     SELECT q.actor, q.action, q.context, q.prefix, l.resource, l.policy
       FROM requests q, decide_resources(q.actor, q.action, q.context, q.prefix) l);
SELECT count(*) AS resource_mismatches FROM resource_mismatches;
-- Listings are not empty everywhere (the check above would pass trivially).
SELECT count(*) > 1000 AS many_listed, count(DISTINCT q.actor) AS actors_with_rows
  FROM requests q, decide_resources(q.actor, q.action, q.context, q.prefix) l;
-- In uid order.
SELECT bool_and(ordered) AS in_uid_order FROM (
    SELECT resource >= lag(resource, 1, '') OVER (PARTITION BY actor, action, context, prefix ORDER BY n) AS ordered
      FROM (SELECT q.*, l.resource, row_number() OVER () AS n
              FROM requests q, decide_resources(q.actor, q.action, q.context, q.prefix) l) s) o;

-- The same comparison under the transaction's own change: listings then read
-- decide.entities itself, not the shared image of its committed rows.
BEGIN;
INSERT INTO decide.entities (uid, parents) VALUES ('doc:own-change', '{folder:3}');
SELECT count(*) AS resource_mismatches_read_from_the_table FROM resource_mismatches;
ROLLBACK;

-- decide_row_allowed() answers as decide_allowed(), row by row: by number
-- (doc:900 and above have no entity row) and by text key (every entity,
-- with an empty prefix), with the request changing from row to row; and
-- two prefixes in one query.
CREATE TEMP TABLE row_requests AS SELECT DISTINCT actor, action, context FROM requests;
CREATE TEMP VIEW rows_by_number AS
SELECT decide_row_allowed(q.actor, q.action, 'doc:', n, q.context) AS by_number,
       decide_allowed(q.actor, q.action, 'doc:' || n, q.context) AS expected
  FROM row_requests q, generate_series(0, 919) n;
SELECT count(*) FILTER (WHERE by_number IS DISTINCT FROM expected) AS row_number_mismatches,
       count(*) FILTER (WHERE expected) > 5000 AS many_allowed,
       count(*) FILTER (WHERE NOT expected) > 5000 AS many_denied
  FROM rows_by_number;
SELECT count(*) FILTER (WHERE by_text IS DISTINCT FROM expected) AS row_text_mismatches,
       count(*) FILTER (WHERE expected) > 5000 AS many_allowed
  FROM (SELECT decide_row_allowed(q.actor, q.action, '', e.uid, q.context) AS by_text,
               decide_allowed(q.actor, q.action, e.uid, q.context) AS expected
          FROM decide.entities e, row_requests q) r;
-- (Those documents were found in the entities' shared image.)
SELECT entity_image_builds > 0 AS image_built FROM decide_stats;
SELECT count(*) AS two_prefix_mismatches
  FROM generate_series(0, 919) n
 WHERE decide_row_allowed('user:5', 'read', 'doc:', n) IS DISTINCT FROM decide_allowed('user:5', 'read', 'doc:' || n)
    OR decide_row_allowed('user:5', 'read', 'folder:', n % 45) IS DISTINCT FROM decide_allowed('user:5', 'read', 'folder:' || (n % 45));
-- Under the transaction's own change, from the table: a new document, and
-- one moved to another folder.
BEGIN;
INSERT INTO decide.entities (uid, parents) VALUES ('doc:905', '{folder:3}');
UPDATE decide.entities SET parents = '{folder:7}' WHERE uid = 'doc:17';
SELECT count(*) AS row_mismatches_read_from_the_table
  FROM rows_by_number WHERE by_number IS DISTINCT FROM expected;
ROLLBACK;

CREATE TEMP TABLE actor_requests AS
SELECT act AS action, 'doc:' || d AS resource
  FROM generate_series(0, 899, 45) d, unnest(ARRAY['read', 'list', 'write']) act;
SELECT count(*) AS actor_mismatches FROM (
    (SELECT q.action, q.resource, l.actor, l.policy
       FROM actor_requests q, decide_actors(q.action, q.resource) l
     EXCEPT
     SELECT q.action, q.resource, e.uid, d.policy
       FROM actor_requests q CROSS JOIN decide.entities e,
            decide(e.uid, q.action, q.resource) d
      WHERE d.allowed)
    UNION ALL
    (SELECT q.action, q.resource, e.uid, d.policy
       FROM actor_requests q CROSS JOIN decide.entities e,
            decide(e.uid, q.action, q.resource) d
      WHERE d.allowed
     EXCEPT
     SELECT q.action, q.resource, l.actor, l.policy
       FROM actor_requests q, decide_actors(q.action, q.resource) l)) m;
SELECT count(*) > 100 AS many_actors_listed
  FROM actor_requests q, decide_actors(q.action, q.resource) l;

-- Keyset pages: the pages of 7, each after the last uid of the one before,
-- concatenated, are the whole listing.
CREATE FUNCTION pages_of(p_actor text, p_action text, p_size integer)
RETURNS TABLE (resource text, policy text) LANGUAGE plpgsql AS $$
DECLARE
    cursor_uid text := NULL;
    got integer;
BEGIN
    LOOP
        got := 0;
        FOR resource, policy IN
            SELECT l.resource, l.policy
              FROM decide_resources(p_actor, p_action, after => cursor_uid, page_size => p_size) l
        LOOP
            got := got + 1;
            cursor_uid := resource;
            RETURN NEXT;
        END LOOP;
        EXIT WHEN got < p_size;
    END LOOP;
END
$$;
SELECT count(*) AS page_mismatches FROM (
    (SELECT u, p.* FROM generate_series(0, 59, 7) u, pages_of('user:' || u, 'read', 7) p
     EXCEPT ALL
     SELECT u, l.* FROM generate_series(0, 59, 7) u, decide_resources('user:' || u, 'read') l)
    UNION ALL
    (SELECT u, l.* FROM generate_series(0, 59, 7) u, decide_resources('user:' || u, 'read') l
     EXCEPT ALL
     SELECT u, p.* FROM generate_series(0, 59, 7) u, pages_of('user:' || u, 'read', 7) p)) m;

-- Entities added between pages: the next page is the listing after the
-- cursor as it is now, so the concatenation misses nothing that was there
-- throughout and repeats nothing.
INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('pages', 'allow', 'user:page-reader', 'read', 'page:*');
INSERT INTO decide.entities (uid) SELECT 'page:' || lpad(i::text, 3, '0') FROM generate_series(0, 98, 2) i;
CREATE TEMP TABLE first_page AS
SELECT resource FROM decide_resources('user:page-reader', 'read', prefix => 'page:', page_size => 20);
INSERT INTO decide.entities (uid) SELECT 'page:' || lpad(i::text, 3, '0') FROM generate_series(1, 99, 2) i;
CREATE TEMP TABLE second_page AS
SELECT resource FROM decide_resources('user:page-reader', 'read', prefix => 'page:',
                                      after => (SELECT max(resource) FROM first_page), page_size => 1000);
SELECT (SELECT count(*) FROM first_page) AS first, (SELECT count(*) FROM second_page) AS second,
       (SELECT min(resource) FROM second_page) > (SELECT max(resource) FROM first_page) AS no_overlap,
       ARRAY(SELECT resource FROM second_page ORDER BY 1) =
       ARRAY(SELECT uid::text FROM decide.entities
              WHERE uid LIKE 'page:%' AND uid > (SELECT max(resource) FROM first_page)
                AND decide_allowed('user:page-reader', 'read', uid) ORDER BY 1) AS second_is_the_rest;

SELECT listings > 0 AS listings_counted, listing_candidates > 0 AS candidates_counted FROM decide_stats;
DROP FUNCTION pages_of(text, text, integer);
TRUNCATE decide.policies, decide.entities;
SELECT count(*) AS links_after_truncate FROM decide.entity_links;

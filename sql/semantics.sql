-- Decision semantics (docs/reference.md): hierarchy, patterns, combining rules,
-- conditions and their fail-closed treatment, explanations, batches.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;

-- A three-level actor hierarchy, a three-level resource hierarchy and an
-- action hierarchy.
INSERT INTO decide.entities (uid, parents, attrs) VALUES
  ('role:staff',      '{}',                  '{}'),
  ('role:editor',     '{role:staff}',        '{}'),
  ('team:legal',      '{role:editor}',       '{"region":"eu"}'),
  ('user:alice',      '{team:legal}',        '{"dept":"legal","level":5,"mfa":true}'),
  ('user:bob',        '{role:staff}',        '{"dept":"sales","level":2}'),
  ('folder:root',     '{}',                  '{}'),
  ('folder:contracts','{folder:root}',       '{}'),
  ('doc:42',          '{folder:contracts}',  '{"classification":"secret","owner":"user:bob"}'),
  ('doc:43',          '{folder:contracts}',  '{"classification":"public","owner":"user:alice"}'),
  ('action:modify',   '{}',                  '{}'),
  ('write',           '{action:modify}',     '{}'),
  ('delete',          '{action:modify}',     '{}');

-- Default deny: nothing matches.
SELECT allowed, effect, policy, risk_level, reason, source FROM decide('user:alice', 'read', 'doc:42');

-- Hierarchy through every level: role:staff is three levels above alice,
-- folder:root two above doc:42, action:modify one above write.
INSERT INTO decide.policies (name, effect, actor, action, resource, risk_level)
VALUES ('staff-modify-root', 'allow', 'role:staff', 'action:modify', 'folder:root', 'medium');
SELECT allowed, policy, risk_level FROM decide('user:alice', 'write', 'doc:42');
SELECT allowed, policy FROM decide('user:alice', 'delete', 'doc:43');
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:42');      -- read is not in action:modify
SELECT allowed, policy FROM decide('user:carol', 'write', 'doc:42');     -- no entity row: no parents
SELECT allowed, policy FROM decide('role:editor', 'write', 'folder:root'); -- entities match themselves

-- Globs and '*'.
TRUNCATE decide.policies;
INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES
  ('any-user-reads-docs', 'allow', 'user:*', 'read', 'doc:*'),
  ('one-char',            'allow', 'user:?ob', 'write', 'doc:4?');
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:42');
SELECT allowed, policy FROM decide('user:bob', 'write', 'doc:43');
SELECT allowed, policy FROM decide('user:alice', 'write', 'doc:43');     -- ?ob needs exactly one char
SELECT allowed, policy FROM decide('user:bob', 'write', 'doc:420');      -- doc:4? is exactly one more
SELECT allowed, policy FROM decide('team:legal', 'read', 'doc:42');      -- user:* does not match team:
-- A glob matches ancestors too: team:legal is an ancestor of alice.
INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('teams-delete', 'allow', 'team:*', 'delete', '*');
SELECT allowed, policy FROM decide('user:alice', 'delete', 'anything:at-all');
-- '?' is one character, not one byte.
INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('multibyte', 'allow', 'user:j?rgen', 'read', 'file:*');
SELECT allowed, policy FROM decide('user:jürgen', 'read', 'file:x');
SELECT allowed, policy FROM decide('user:juergen', 'read', 'file:x');

-- Priorities: the highest matching priority wins whatever the effect.
TRUNCATE decide.policies;
INSERT INTO decide.policies (name, effect, priority, actor, action, resource) VALUES
  ('deny-all-low',      'deny',  0,  '*', '*', '*'),
  ('allow-editors-mid', 'allow', 10, 'role:editor', '*', 'folder:contracts'),
  ('deny-doc42-high',   'deny',  20, '*', 'delete', 'doc:42');
SELECT allowed, policy FROM decide('user:alice', 'write', 'doc:42');     -- 10 beats 0
SELECT allowed, policy FROM decide('user:alice', 'delete', 'doc:42');    -- 20 beats 10
SELECT allowed, policy FROM decide('user:bob', 'write', 'doc:42');       -- only 0 matches

-- Deny overrides allow at equal priority, whatever the ids.
TRUNCATE decide.policies;
INSERT INTO decide.policies (id, name, effect, priority, actor, action, resource) VALUES
  (1, 'allow-first', 'allow', 5, 'user:alice', 'read', 'doc:42'),
  (2, 'deny-second', 'deny',  5, 'role:staff', 'read', 'folder:root');
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:42');

-- Ties within one effect go to the lowest id.
TRUNCATE decide.policies;
INSERT INTO decide.policies (id, name, effect, priority, actor, action, resource, risk_level) VALUES
  (7, 'allow-seven', 'allow', 1, 'user:alice', 'read', '*', 'high'),
  (3, 'allow-three', 'allow', 1, 'role:staff', 'read', '*', 'low'),
  (9, 'deny-nine',   'deny',  1, 'user:bob',   'read', '*', 'high'),
  (4, 'deny-four',   'deny',  1, 'user:*',     'read', '*', 'critical');
SELECT allowed, policy, risk_level FROM decide('user:alice', 'read', 'doc:1');
SELECT allowed, policy, risk_level FROM decide('user:bob', 'read', 'doc:1');
SELECT allowed, policy, risk_level FROM decide('role:staff', 'read', 'doc:1');

-- Inactive policies are ignored.
UPDATE decide.policies SET active = false WHERE name = 'deny-four';
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');

-- Conditions over actor attrs, resource attrs and context.
TRUNCATE decide.policies;
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('senior-reads',      'allow', 0, '*', 'read', '*', '$.actor.attrs.level >= 5'),
  ('owner-writes',      'allow', 0, '*', 'write', '*', '$.resource.attrs.owner == $.actor.uid'),
  ('secret-needs-vpn',  'deny',  0, '*', '*', '*',
     '$.resource.attrs.classification == "secret" && !($.context.ip starts with "10.")'),
  ('mfa-for-eu-delete', 'allow', 0, 'team:legal', 'delete', '*', 'exists($.context.mfa ? (@ == true))');
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:43');                       -- level 5
SELECT allowed, policy FROM decide('user:bob', 'read', 'doc:43');                         -- level 2
SELECT allowed, policy FROM decide('user:alice', 'write', 'doc:43');                      -- owner
SELECT allowed, policy FROM decide('user:bob', 'write', 'doc:43');                        -- not owner
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:42', '{"ip":"10.0.0.7"}');  -- on network
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:42', '{"ip":"8.8.8.8"}');   -- off network
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:42');                       -- no ip: deny
SELECT allowed, policy FROM decide('user:alice', 'delete', 'doc:43', '{"mfa":true}');
SELECT allowed, policy FROM decide('user:alice', 'delete', 'doc:43', '{"mfa":"yes"}');

-- Fail closed: a condition that errors (strict-mode missing key, division
-- by zero, type mismatch) counts as true for a deny and false for an allow.
TRUNCATE decide.policies;
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('allow-if-broken', 'allow', 10, '*', 'read', '*', 'strict $.context.missing.deeper == 1'),
  ('allow-if-divide', 'allow', 10, '*', 'list', '*', '$.context.n / 0 > 1'),
  ('deny-if-broken',  'deny',  5,  '*', 'write', '*', 'strict $.context.missing == 1'),
  ('deny-if-unknown', 'deny',  5,  '*', 'delete', '*', '($.context.n > "text") is unknown || $.context.n > "text"'),
  ('fallback-allow',  'allow', 0,  '*', '*', '*', NULL);
SELECT allowed, policy, reason FROM decide('user:alice', 'read', 'doc:1');   -- allow skipped
SELECT allowed, policy, reason FROM decide('user:alice', 'list', 'doc:1', '{"n":5}');
SELECT allowed, policy, reason FROM decide('user:alice', 'write', 'doc:1');  -- deny taken
SELECT allowed, policy, reason FROM decide('user:alice', 'delete', 'doc:1', '{"n":5}');
SELECT allowed, policy, reason FROM decide('user:alice', 'write', 'doc:1', '{"missing":1}');

-- .datetime() comparisons that need a time zone raise an error even in
-- jsonpath's silent mode; decide still fails closed instead of erroring.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('deny-expired', 'deny', 8, '*', 'open', '*', '$.context.expires.datetime() < $now.datetime()'),
  ('allow-fresh', 'allow', 9, '*', 'close', '*', '$.context.expires.datetime() > $now.datetime()');
SELECT allowed, policy, reason FROM decide('user:alice', 'open', 'doc:1', '{"expires":"2020-01-01"}');
SELECT allowed, policy FROM decide('user:alice', 'open', 'doc:1', '{"expires":"2020-01-01T00:00:00+00:00"}');
SELECT allowed, policy FROM decide('user:alice', 'open', 'doc:1', '{"expires":"2999-01-01T00:00:00+00:00"}');
SELECT allowed, policy FROM decide('user:alice', 'close', 'doc:1', '{"expires":"2999-01-01"}');
SELECT allowed, policy FROM decide('user:alice', 'close', 'doc:1', '{"expires":"2999-01-01T00:00:00+00:00"}');

-- $now: the statement time, ISO 8601 in UTC.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('after-2000', 'allow', 20, '*', 'archive', '*', '$now > "2000-01-01T00:00:00+00:00"'),
  ('before-2000', 'deny', 30, '*', 'archive', '*', '$now < "2000-01-01T00:00:00+00:00"');
SELECT allowed, policy FROM decide('user:alice', 'archive', 'doc:1');

-- decide_allowed() and decide_many() agree with decide().
SELECT decide_allowed('user:alice', 'archive', 'doc:1'),
       decide_allowed('user:alice', 'read', 'doc:1'),
       decide_allowed('user:alice', 'write', 'doc:1', '{"missing":1}');
SELECT ord, allowed, policy FROM decide_many(
  ARRAY['user:alice', 'user:alice', 'user:bob'],
  ARRAY['archive', 'write', 'write'],
  ARRAY['doc:1', 'doc:1', 'doc:2'],
  ARRAY['{}', '{}', '{"missing":1}']::jsonb[]);
SELECT count(*) FROM decide_many('{}', '{}', '{}');

-- decide_explain() lists candidates in rank order and agrees with decide().
TRUNCATE decide.policies;
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition, risk_level) VALUES
  ('editors-write-contracts', 'allow', 0, 'role:editor', 'write', 'folder:contracts', NULL, 'medium'),
  ('no-secret-off-network',   'deny',  0, '*', '*', '*',
   '$.resource.attrs.classification == "secret" && !($.context.ip starts with "10.")', 'high'),
  ('sales-only',              'allow', 0, 'role:sales', 'write', '*', NULL, 'low'),
  ('unrelated',               'allow', 0, 'user:zed', 'read', 'doc:9', NULL, 'low');
SELECT rank, policy, effect, actor_matched, action_matched, resource_matched, condition, decisive, note
  FROM decide_explain('user:alice', 'write', 'doc:42', '{"ip":"8.8.8.8"}');
SELECT rank, policy, condition, decisive, note
  FROM decide_explain('user:alice', 'write', 'doc:42', '{"ip":"10.1.1.1"}');

TRUNCATE decide.policies, decide.entities;

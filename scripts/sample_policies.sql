-- A sample governance policy set for decide: a small company's document
-- store. Used by scripts/demo.sh; load it into any database with the
-- extension (as a superuser or a member of decide_admin):
--
--   psql -X -v ON_ERROR_STOP=1 -f scripts/sample_policies.sql
--
-- Re-running it updates the sample rows in place (upsert on uid and on policy
-- name); it deletes nothing else.
--
-- The model
--   actors     users in teams, teams in roles, roles in roles
--              (user:alice -> team:legal -> role:legal-counsel -> role:employee);
--              service accounts svc:*; attrs: dept, clearance (1-5),
--              employment, contract_end, status
--   actions    read, write, delete, approve, in action groups
--              (delete -> action-group:edit and action-group:destructive)
--   resources  documents doc:<id> in folders, folders in folders
--              (doc:3 -> folder:contracts -> folder:legal -> folder:company);
--              attrs: classification (public, internal, restricted, confidential,
--              secret), department, owner, min_clearance, legal_hold, embargo_until
--   context    what the application knows about the request: ip, mfa,
--              risk_score (from the identity provider)
--   $now       the statement time, an ISO 8601 UTC string
--
-- How the policies combine: the highest priority among matching policies
-- wins; within a priority a deny beats any allow; nothing matches: deny.
--   100  guardrails that nothing overrides (suspended or expired accounts,
--        legal hold)
--    50  security rules (network, MFA, clearance, risk, separation of duties)
--    20  administrators, with MFA
--    10  everyday business access
-- A condition that cannot be evaluated (a missing field in strict mode, a
-- string where a number is expected) makes a deny apply and an allow not:
-- decisions fail closed.

BEGIN;

INSERT INTO decide.entities (uid, parents, attrs) VALUES
    -- roles
    ('role:employee',          '{}',                         '{"description":"every member of staff"}'),
    ('role:engineer',          '{role:employee}',            '{}'),
    ('role:manager',           '{role:employee}',            '{}'),
    ('role:legal-counsel',     '{role:employee}',            '{}'),
    ('role:finance-analyst',   '{role:employee}',            '{}'),
    ('role:admin',             '{role:employee}',            '{}'),
    ('role:auditor',           '{}',                         '{"description":"external auditors: not staff"}'),
    -- teams
    ('team:platform',          '{role:engineer}',            '{"cost_center":"CC-410"}'),
    ('team:payments',          '{role:engineer}',            '{"cost_center":"CC-420"}'),
    ('team:legal',             '{role:legal-counsel}',       '{"cost_center":"CC-200"}'),
    ('team:finance',           '{role:finance-analyst}',     '{"cost_center":"CC-300"}'),
    -- people
    ('user:alice',   '{team:legal}',
     '{"name":"Alice Martin","dept":"legal","clearance":3,"employment":"staff"}'),
    ('user:bob',     '{team:platform,role:manager}',
     '{"name":"Bob Chen","dept":"engineering","clearance":2,"employment":"staff"}'),
    ('user:carol',   '{team:finance}',
     '{"name":"Carol Diaz","dept":"finance","clearance":4,"employment":"staff"}'),
    ('user:dave',    '{role:auditor}',
     '{"name":"Dave Okafor","dept":"external-audit","clearance":3,"employment":"contractor","contract_end":"2099-12-31T23:59:59+00:00"}'),
    ('user:erin',    '{role:admin,team:platform}',
     '{"name":"Erin Walsh","dept":"it","clearance":5,"employment":"staff"}'),
    ('user:frank',   '{team:payments}',
     '{"name":"Frank Novak","dept":"engineering","clearance":2,"employment":"contractor","contract_end":"2024-06-30T00:00:00+00:00"}'),
    ('user:mallory', '{team:payments}',
     '{"name":"Mallory Reed","dept":"engineering","clearance":2,"employment":"staff","status":"suspended"}'),
    -- service accounts
    ('svc:backup-agent',       '{role:engineer}',            '{"kind":"service"}'),
    ('svc:search-indexer',     '{}',                         '{"kind":"service"}'),
    -- actions and action groups
    ('action-group:view',        '{}', '{}'),
    ('action-group:collaborate', '{}', '{"description":"read and write, no delete"}'),
    ('action-group:edit',        '{}', '{}'),
    ('action-group:destructive', '{}', '{}'),
    ('action-group:workflow',    '{}', '{}'),
    ('read',    '{action-group:view,action-group:collaborate}', '{}'),
    ('write',   '{action-group:edit,action-group:collaborate}', '{}'),
    ('delete',  '{action-group:edit,action-group:destructive}', '{}'),
    ('approve', '{action-group:workflow}',                      '{}'),
    -- folders
    ('folder:company',         '{}',                         '{}'),
    ('folder:public',          '{folder:company}',           '{}'),
    ('folder:engineering',     '{folder:company}',           '{"owner_team":"team:platform"}'),
    ('folder:legal',           '{folder:company}',           '{"owner_team":"team:legal"}'),
    ('folder:contracts',       '{folder:legal}',             '{}'),
    ('folder:finance',         '{folder:company}',           '{"owner_team":"team:finance"}'),
    ('folder:records',         '{folder:company}',           '{"retention":"7y"}'),
    -- documents
    ('doc:1', '{folder:public}',
     '{"title":"Employee handbook","classification":"public","owner":"user:erin"}'),
    ('doc:2', '{folder:engineering}',
     '{"title":"Platform on-call runbook","classification":"internal","owner":"user:bob"}'),
    ('doc:3', '{folder:contracts}',
     '{"title":"Acme master services agreement","classification":"confidential","owner":"user:henry"}'),
    ('doc:4', '{folder:contracts}',
     '{"title":"Project Falcon term sheet","classification":"secret","owner":"user:alice","min_clearance":3}'),
    ('doc:5', '{folder:finance}',
     '{"title":"Q3 revenue forecast","classification":"confidential","owner":"user:grace"}'),
    ('doc:6', '{folder:finance}',
     '{"title":"Payroll 2025","classification":"secret","owner":"user:carol","min_clearance":4}'),
    ('doc:7', '{folder:records}',
     '{"title":"Foo v. Bar correspondence","classification":"confidential","owner":"user:alice","legal_hold":true}'),
    ('doc:8', '{folder:public}',
     '{"title":"Press release: Falcon launch","classification":"public","owner":"user:erin","embargo_until":"2099-01-01T09:00:00+00:00"}'),
    ('doc:9', '{folder:public}',
     '{"title":"Press release: 2019 results","classification":"public","owner":"user:erin","embargo_until":"2020-01-15T09:00:00+00:00"}'),
    ('doc:10', '{folder:records}',
     '{"title":"Board minutes 2023","classification":"internal","owner":"user:alice"}'),
    ('doc:11', '{folder:company}',
     '{"title":"Legal team style guide","classification":"restricted","department":"legal","owner":"user:henry"}')
ON CONFLICT (uid) DO UPDATE SET parents = EXCLUDED.parents, attrs = EXCLUDED.attrs;

INSERT INTO decide.policies
    (name, priority, effect, actor, action, resource, condition, risk_level, active, description)
VALUES
    -- 100: guardrails
    ('suspended-accounts-blocked', 100, 'deny', '*', '*', '*',
     '$.actor.attrs.status == "suspended"',
     'critical', true, 'A suspended account can do nothing, whatever else it is granted.'),
    ('expired-contractors-blocked', 100, 'deny', '*', '*', '*',
     '$.actor.attrs.employment == "contractor" && !($.actor.attrs.contract_end.datetime() > $now.datetime())',
     'high', true,
     'Contractors lose access when their contract ends; a contractor without a valid end date has none.'),
    ('legal-hold-freezes-documents', 100, 'deny', '*', 'action-group:edit', '*',
     '$.resource.attrs.legal_hold == true',
     'critical', true, 'Documents under legal hold may not be changed or deleted, not even by admins.'),

    -- 50: security rules
    ('secret-needs-corporate-network', 50, 'deny', '*', '*', '*',
     '$.resource.attrs.classification == "secret" && !($.context.ip starts with "10.")',
     'high', true, 'Secret documents only from the corporate network (10.0.0.0/8).'),
    ('confidential-needs-mfa', 50, 'deny', '*', '*', '*',
     '($.resource.attrs.classification == "confidential" || $.resource.attrs.classification == "secret") && !($.context.mfa == true)',
     'high', true, 'Confidential and secret documents need a session with MFA.'),
    ('clearance-below-document-minimum', 50, 'deny', '*', '*', '*',
     'exists($.resource.attrs.min_clearance) && !($.actor.attrs.clearance >= $.resource.attrs.min_clearance)',
     'high', true, 'Actors below a document''s minimum clearance (or without one) are refused.'),
    ('finance-needs-low-risk-session', 50, 'deny', '*', '*', 'folder:finance',
     'strict $.context.risk_score >= 70',
     'high', true,
     'Finance data needs a risk score below 70 from the identity provider; a missing or malformed score denies (fail closed).'),
    ('embargoed-until-release', 50, 'deny', '*', 'read', '*',
     '$.resource.attrs.embargo_until.datetime() > $now.datetime()',
     'medium', true, 'Embargoed documents are unreadable until their release time.'),
    ('no-self-approval', 50, 'deny', '*', 'approve', '*',
     '$.resource.attrs.owner == $.actor.uid',
     'high', true, 'Separation of duties: nobody approves their own document.'),
    ('service-accounts-never-destroy', 50, 'deny', 'svc:*', 'action-group:destructive', '*',
     NULL,
     'high', true, 'Service accounts (svc:*) never delete anything.'),

    -- 20: administrators
    ('admins-full-access-with-mfa', 20, 'allow', 'role:admin', '*', '*',
     '$.context.mfa == true',
     'critical', true, 'Administrators may do anything the guardrails and security rules allow, with MFA.'),

    -- 10: everyday access
    ('everyone-reads-public', 10, 'allow', 'role:employee', 'read', 'folder:public',
     NULL,
     'low', true, 'Staff read the public folder.'),
    ('employees-read-internal', 10, 'allow', 'role:employee', 'read', '*',
     '$.resource.attrs.classification == "internal" || ($.resource.attrs.classification == "restricted" && $.resource.attrs.department == $.actor.attrs.dept)',
     'low', true, 'Staff read internal documents anywhere, and restricted ones of their own department.'),
    ('owners-manage-their-documents', 10, 'allow', '*', '*', 'doc:*',
     '$.resource.attrs.owner == $.actor.uid',
     'medium', true, 'The owner of a document may read, change, delete and submit it.'),
    ('legal-collaborates-on-legal-folder', 10, 'allow', 'role:legal-counsel', 'action-group:collaborate', 'folder:legal',
     NULL,
     'medium', true, 'Legal counsel read and edit (but do not delete) everything under folder:legal.'),
    ('finance-reads-finance', 10, 'allow', 'role:finance-analyst', 'read', 'folder:finance',
     NULL,
     'medium', true, 'Finance analysts read the finance folder.'),
    ('managers-approve-on-corporate-network', 10, 'allow', 'role:manager', 'approve', '*',
     '$.context.ip starts with "10." && $.context.mfa == true',
     'high', true, 'Managers approve documents from the corporate network with MFA.'),
    ('auditors-read-in-business-hours', 10, 'allow', 'role:auditor', 'read', '*',
     '$now like_regex "T(0[89]|1[0-7]):"',
     'medium', true, 'External auditors read everything, 08:00-17:59 UTC only.'),
    ('records-are-never-deleted', 10, 'deny', '*', 'delete', 'folder:records',
     NULL,
     'medium', true, 'Records are kept for their retention period: within priority 10 this deny beats the owner''s allow.'),
    ('legacy-open-read', 0, 'allow', '*', 'read', '*',
     NULL,
     'high', false, 'Replaced by the rules above; kept inactive for the audit trail.')
ON CONFLICT (name) DO UPDATE SET
    priority = EXCLUDED.priority, effect = EXCLUDED.effect, actor = EXCLUDED.actor,
    action = EXCLUDED.action, resource = EXCLUDED.resource, condition = EXCLUDED.condition,
    risk_level = EXCLUDED.risk_level, active = EXCLUDED.active, description = EXCLUDED.description;

COMMIT;

-- decide 0.4.0 -> 0.5.0: decide() returns the named composite type
-- decide.decision instead of a record described by OUT parameters.
--
-- Why: a function called in FROM gets its result descriptor at every
-- execution.  For OUT parameters the server rebuilds it from pg_proc each
-- time; for a named type it copies it from the type cache.  On a cached
-- decision that rebuild was about a fifth of the whole statement.  The
-- columns, their names and their order are unchanged, so SELECT * FROM
-- decide(...) and (decide(...)).allowed read the same as before.
--
-- The function is dropped and created again (a return type cannot be
-- changed in place): a view or function of yours that uses decide() makes
-- this update fail, with nothing changed; drop it, update, create it again.

\echo Use "ALTER EXTENSION decide UPDATE TO '0.5.0'" to load this file. \quit

CREATE TYPE decide.decision AS (
    allowed     boolean,
    effect      text,
    policy      text,
    risk_level  text,
    reason      text,
    epoch       bigint,
    source      text
);
COMMENT ON TYPE decide.decision IS 'the answer of decide(): one decision';

DROP FUNCTION decide(text, text, text, jsonb);
CREATE FUNCTION decide(actor text, action text, resource text, context jsonb DEFAULT '{}')
    RETURNS decide.decision
    AS 'MODULE_PATHNAME', 'decide_decide'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION decide(text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide(text, text, text, jsonb) TO decide_user, decide_admin;

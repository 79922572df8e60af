-- pg_temp.try(statement): runs a statement and returns 'ok' or its error as
-- 'SQLSTATE: message | detail: ... | hint: ...' (detail and hint only when
-- the error has them; a cancel or a statement timeout too, which OTHERS
-- does not catch), so that a test can show an error and go on.  Included
-- by the regression tests (\i sql/include/try.sql).
-- Not echoed: pg_regress runs psql with ECHO all, restored at the end.
\set ECHO none
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
    hint text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION
  WHEN query_canceled THEN    -- OTHERS does not catch a cancel or a timeout
    RETURN SQLSTATE || ': ' || SQLERRM;
  WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    -- "Failing row contains (...)" holds ids and timestamps: not stable.
    IF detail LIKE 'Failing row contains%' THEN
        detail := '';
    END IF;
    RETURN SQLSTATE || ': ' || SQLERRM
        || coalesce(nullif(' | detail: ' || detail, ' | detail: '), '')
        || coalesce(nullif(' | hint: ' || hint, ' | hint: '), '');
END
$$;
\set ECHO all

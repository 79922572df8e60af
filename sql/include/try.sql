-- pg_temp.try(statement): runs a statement and returns 'ok' or its error
-- as 'SQLSTATE: message', so that a test can show an error and go on.
-- Included by the regression tests (\i sql/include/try.sql).
-- Not echoed: pg_regress runs psql with ECHO all, restored at the end.
\set ECHO none
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
\set ECHO all

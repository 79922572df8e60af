-- cold: every request new. Actor, action, resource and context drawn
-- independently and uniformly (actors x 10 x resources x 2 combinations:
-- 2e11 at the default scale), so no request repeats in a run.
-- Each request is answered by the plain-SQL reference (sql/include/reference.sql), the SQL baseline.
-- Variables from the runner: actors, resources.
\set u random(0, :actors - 1)
\set r random(0, :resources - 1)
\set a random(1, 10)
\set ip random(1, 2)
SELECT * FROM decide_reference.decide('user:' || :u,
    (ARRAY['read','list','export','comment','audit','write','delete','share','approve','archive'])[:a],
    'doc:' || :r,
    (ARRAY['{"ip":"10.1.2.3"}', '{"ip":"203.0.113.9"}']::jsonb[])[:ip]);

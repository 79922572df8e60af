-- batch: one decide_many() call answers 100 requests (one round trip).
-- The batch is 100 consecutive request keys from a random start among 1e9,
-- mapped to requests as in the *_zipf scripts, so batches are cold. The
-- runner reports decisions/s = 100 x TPS.
-- Variables from the runner: actors, resources.
\set b random(0, 9999999)
SELECT count(*) FILTER (WHERE d.allowed) AS allowed
  FROM (SELECT array_agg('user:' || ((k % :actors) * 7919) % :actors ORDER BY k) AS actors,
               array_agg((ARRAY['read','list','export','comment','audit','write','delete','share','approve','archive'])
                         [1 + (k / :actors) % 10] ORDER BY k) AS actions,
               array_agg('doc:' || (((k / :actors) / 20) * 104729 + k * 31) % :resources ORDER BY k) AS resources,
               array_agg((ARRAY['{"ip":"10.1.2.3"}', '{"ip":"203.0.113.9"}']::jsonb[])
                         [1 + (k / :actors / 10) % 2] ORDER BY k) AS contexts
          FROM (SELECT :b::bigint * 100 + i AS k FROM generate_series(0, 99) AS i) AS keys) AS req,
       LATERAL decide_many(req.actors, req.actions, req.resources, req.contexts) AS d;

-- zipf: 1,000,000 distinct requests (keys 1..1,000,000) drawn with Zipf skew 1.1; key 1 most often.
-- Each request is answered by the plain-SQL reference (sql/include/reference.sql): the SQL baseline.
--
-- Request of key k (the same in every *_hot, *_zipf and batch script, so
-- decide and its baseline see the same mix): actor user:u with u a
-- permutation of k mod actors, one of 10 actions, resource doc:r, an on- or
-- off-network context. Distinct keys up to 1,000,000 are distinct requests
-- at every scale of bench/run.sh. Variables from the runner: actors, resources.
\set k random_zipfian(1, 1000000, 1.1)
\set u ((:k % :actors) * 7919) % :actors
\set q :k / :actors
\set a 1 + :q % 10
\set ip 1 + (:q / 10) % 2
\set r ((:q / 20) * 104729 + :k * 31) % :resources
SELECT * FROM decide_reference.decide('user:' || :u,
    (ARRAY['read','list','export','comment','audit','write','delete','share','approve','archive'])[:a],
    'doc:' || :r,
    (ARRAY['{"ip":"10.1.2.3"}', '{"ip":"203.0.113.9"}']::jsonb[])[:ip]);

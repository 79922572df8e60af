# Policies, entities and the decision log are user data: pg_dump and
# pg_restore of a database that uses decide carry them over, the restored
# database decides the same way, and the restore reports no error, also in
# one transaction (the log's partitions carry their own indexes, 0.6.0).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'decide'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE source');
$node->safe_psql('source', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.entities (uid, parents, attrs) VALUES
      ('role:editor', '{}', '{}'),
      ('user:alice', '{role:editor}', '{"dept":"legal"}'),
      ('doc:42', '{folder:contracts}', '{"classification":"secret"}');
    INSERT INTO decide.policies (name, description, effect, priority, actor, action, resource, condition, risk_level)
    VALUES ('editors-write-contracts', 'editors may edit contracts', 'allow', 0,
            'role:editor', 'write', 'folder:contracts', NULL, 'medium'),
           ('no-secret-off-network', '', 'deny', 0, '*', '*', '*',
            '$.resource.attrs.classification == "secret" && !($.context.ip starts with "10.")', 'high'),
           ('inactive', '', 'allow', 9, '*', '*', '*', NULL, 'low');
    UPDATE decide.policies SET active = false WHERE name = 'inactive';
});

my $requests = q{
    SELECT string_agg(format('%s %s %s', allowed, policy, risk_level), E'\n' ORDER BY n)
      FROM (VALUES (1, 'user:alice', 'write', 'doc:42', '{"ip":"10.1.2.3"}'::jsonb),
                   (2, 'user:alice', 'write', 'doc:42', '{"ip":"8.8.8.8"}'),
                   (3, 'user:bob', 'write', 'doc:42', '{"ip":"10.1.2.3"}'),
                   (4, 'user:alice', 'read', 'doc:42', '{"ip":"10.1.2.3"}')) AS r(n, a, b, c, ctx),
           LATERAL decide(a, b, c, ctx) d
};
my $tables = q{
    SELECT (SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', id, name, description, effect,
                                     priority, actor, action, resource, condition, risk_level, active),
                              ';' ORDER BY id) FROM decide.policies)
        || ' / ' ||
           (SELECT string_agg(format('%s|%s|%s', uid, parents, attrs), ';' ORDER BY uid)
              FROM decide.entities)
};
# The history of those changes (decide.changes) is user data too.
my $history = q{
    SELECT count(*) || ' ' || string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', id, epoch, changed_at,
                                                current_user_name, operation, key, before, after),
                                         ';' ORDER BY id)
      FROM decide.changes
};
my $history_before = $node->safe_psql('source', $history);
like($history_before, qr/^\d+ /, 'the source database recorded its changes');
my ($history_count) = $history_before =~ /^(\d+) /;
my $before = $node->safe_psql('source', $requests);
my $tables_before = $node->safe_psql('source', $tables);
is($before, "t editors-write-contracts medium\nf no-secret-off-network high\nf  \nf  ",
   'source database decides as expected');

# The decisions above are in the log (today's partition, made by the
# worker); one more partition, for a past day, holds a row of its own.
$node->safe_psql('source', q{
    SELECT decide_flush();
    SELECT decide.create_log_partition(current_date - 3);
    INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, reason,
                                  epoch, source)
    VALUES ((current_date - 3)::timestamp AT TIME ZONE 'UTC' + interval '1 hour', 'user:carol',
            'read', 'doc:1', false, 'deny', 'no policy matched: denied by default', 1, 'miss');
    SELECT decide.build_decision_keys(current_date - 3);
});
my $log = q{
    SELECT count(*) || ' ' || string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', id, decided_at, actor,
                                                action, resource, allowed, policy, reason),
                                         ';' ORDER BY decided_at, id)
      FROM decide.decisions
};
my $log_indexes = q{
    SELECT string_agg(c.relname || ':' || (SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid),
                      ' ' ORDER BY c.relname)
      FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
     WHERE (h.inhparent = 'decide.decision_chunks'::regclass AND h.inhrelid IN
            (SELECT DISTINCT tableoid FROM decide.decision_chunks))
        OR (h.inhparent = 'decide.decision_keys'::regclass AND h.inhrelid IN
            (SELECT DISTINCT tableoid FROM decide.decision_keys))
};
my $keys = q{
    SELECT count(*) || ' ' || string_agg(format('%s|%s|%s|%s|%s', kind, key, first_at, last_at, offsets),
                                         ';' ORDER BY kind, key, last_at, first_at, offsets::text)
      FROM decide.decision_keys
};
my $log_before = $node->safe_psql('source', $log);
# The hash chain: the worker's rows verify; the row written by hand above
# is the one the verification names, before and after the restore.
my $verify = q{
    SELECT string_agg(problem || ' ' || coalesce(first_id::text, '') || '-' || coalesce(last_id::text, ''),
                      '; ' ORDER BY problem, first_id)
      FROM decide_verify_log()
};
my $verify_before = $node->safe_psql('source', $verify);
is($verify_before, $node->safe_psql('source', q{
    SELECT 'rows not in the chain ' || id || '-' || id FROM decide.decisions WHERE actor = 'user:carol'}),
   'the source log verifies, but for the row written by hand');
like($log_before, qr/^5 /, 'the source database logged its decisions');
my $log_indexes_before = $node->safe_psql('source', $log_indexes);
like($log_indexes_before,
     qr/^decision_chunks_\d{8}:1 decision_chunks_\d{8}:1 decision_keys_\d{8}:1 decision_keys_\d{8}:1$/,
     'two days of the log and of its keys, each partition with its index');
my $keys_before = $node->safe_psql('source', $keys);

my $dump = $node->basedir . '/source.dump';
$node->command_ok(['pg_dump', '-Fc', '-d', $node->connstr('source'), '-f', $dump],
                  'pg_dump of a database using decide');
$node->safe_psql('postgres', 'CREATE DATABASE target');
$node->command_ok(['pg_restore', '--exit-on-error', '--single-transaction', '-d',
                   $node->connstr('target'), $dump],
                  'pg_restore into a new database, in one transaction, without an error');
is($node->safe_psql('target', $log), $log_before, 'the decision log survives dump and restore');
is($node->safe_psql('target', $verify), $verify_before, 'and verifies against its chain as before');
is($node->safe_psql('target', $log_indexes), $log_indexes_before,
   'each restored log partition has its indexes, once');
is($node->safe_psql('target', $keys), $keys_before, 'the log\'s keys survive dump and restore');
my $pages = q{
    SELECT string_agg(actor, ',' ORDER BY decided_at DESC, id DESC)
      FROM decide_decisions_page(NULL, 10, by_allowed => false)
    UNION ALL
    SELECT string_agg(actor, ',' ORDER BY decided_at DESC, id DESC)
      FROM decide_decisions_page(NULL, 10, by_actor => 'user:carol')
};
like($node->safe_psql('source', $pages), qr/user:carol\nuser:carol$/,
     'the source pages its denials and an actor\'s decisions, the row of a past day included');
is($node->safe_psql('target', $pages), $node->safe_psql('source', $pages),
   'the restored log pages as the source does');

is($node->safe_psql('target', qq{SELECT count(*) FROM decide.changes c
                                   WHERE c.id <= $history_count}), $history_count,
   'the history survives dump and restore');
is($node->safe_psql('target', qq{
    SELECT count(*) || ' ' || string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', id, epoch, changed_at,
                                                current_user_name, operation, key, before, after),
                                         ';' ORDER BY id)
      FROM decide.changes WHERE id <= $history_count}), $history_before,
   'each row of the history, as it was');
is($node->safe_psql('target', $history), $history_before,
   'the restore inserts the rows the history holds: nothing more is recorded');
my $states = q{
    SELECT string_agg(format('%s: %s / %s', e,
                             (SELECT string_agg(format('%s|%s|%s', p.id, p.name, p.active), ',' ORDER BY p.id)
                                FROM decide_policies_at(e) p),
                             (SELECT string_agg(format('%s|%s', x.uid, x.attrs), ',' ORDER BY x.uid)
                                FROM decide_entities_at(e) x)), '; ' ORDER BY e)
      FROM generate_series((SELECT min(epoch) - 1 FROM decide.changes),
                           (SELECT max(epoch) FROM decide.changes)) AS e
};
is($node->safe_psql('target', $states), $node->safe_psql('source', $states),
   'the policies and entities at every epoch of the history are those of the source');
is($node->safe_psql('target', q{
    SELECT epoch > (SELECT max(epoch) FROM decide.changes) FROM decide.epoch}), 't',
   'the restored database\'s epochs go on past the history\'s');
is($node->safe_psql('target', $tables), $tables_before,
   'policies (ids, conditions, flags) and entities survive dump and restore');
is($node->safe_psql('target', $requests), $before, 'restored database decides the same way');

# The identity sequence was dumped too: new policies do not collide.
$node->safe_psql('target', q{
    INSERT INTO decide.policies (name, effect, actor, action, resource)
    VALUES ('after-restore', 'allow', 'user:bob', 'write', '*')});
is($node->safe_psql('target', q{SELECT allowed FROM decide('user:bob', 'write', 'doc:1')}), 't',
   'a policy added after restore takes effect');
isnt($node->safe_psql('target', 'SELECT store_id FROM decide.epoch'),
     $node->safe_psql('source', 'SELECT store_id FROM decide.epoch'),
     'a restored database is a new policy store (its cache identity is not copied)');

$node->stop;
done_testing();

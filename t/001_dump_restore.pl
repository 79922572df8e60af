# Policies and entities are user data: pg_dump and pg_restore of a database
# that uses decide carry them over, and the restored database decides the
# same way.
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
my $before = $node->safe_psql('source', $requests);
my $tables_before = $node->safe_psql('source', $tables);
is($before, "t editors-write-contracts medium\nf no-secret-off-network high\nf  \nf  ",
   'source database decides as expected');

my $dump = $node->basedir . '/source.dump';
$node->command_ok(['pg_dump', '-Fc', '-d', $node->connstr('source'), '-f', $dump],
                  'pg_dump of a database using decide');
$node->safe_psql('postgres', 'CREATE DATABASE target');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('target'), $dump],
                  'pg_restore into a new database');

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

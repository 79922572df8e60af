# Without shared_preload_libraries decide still answers, with L1 only, and
# its statistics say they cover this backend and that L2 is off.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('plain');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.policies (name, effect, actor, action, resource)
    VALUES ('readers', 'allow', '*', 'read', '*');
});

is($node->safe_psql('postgres', q{
    SELECT allowed::text || ':' || source FROM decide('user:a', 'read', 'doc:1');
    SELECT allowed::text || ':' || source FROM decide('user:a', 'read', 'doc:1');}),
   "true:miss\ntrue:l1", 'decisions work, cached in L1');
is($node->safe_psql('postgres', q{
    SELECT decide('user:a', 'read', 'doc:1') IS NOT NULL;
    SELECT format('%s %s %s %s', shared_memory, shared_cache, l2_capacity, worker_pid IS NULL)
      FROM decide_stats}),
   "t\nf f 0 t", 'stats: this backend only, no L2, no worker');
like($node->safe_psql('postgres', 'SELECT decide_metrics()'), qr/^decide_shared_memory 0$/m,
     'metrics say so too');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT decide_flush()');
like($err, qr/needs decide in shared_preload_libraries/, 'decide_flush() explains what is missing');
($ret, $out, $err) = $node->psql('postgres', 'SHOW decide.shared_cache_size');
like($err, qr/unrecognized configuration parameter/, 'settings that need preloading do not exist');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide worker'}),
   '0', 'no worker');

$node->stop;
done_testing();

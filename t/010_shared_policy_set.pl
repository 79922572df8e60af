# One compiled policy set per server: the first backend that needs an epoch
# compiles it into shared memory and the others read that copy.  Checked
# here: one build per epoch however many backends decide; a new backend's
# private memory stays small with 100,000 policies; a transaction's own
# uncommitted change stays private; a builder terminated mid-way leaves the
# others deciding; a set larger than decide.shared_policy_memory is
# compiled privately by each backend and still decides right.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'decide'
decide.log = 'none'
});
$node->start;

sub stat_of { return $node->safe_psql('postgres', "SELECT $_[0] FROM decide_stats"); }

# 100,000 policies: one per resource folder, plus a few that decide.
$node->safe_psql('postgres', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition)
    SELECT 'folder-' || g, 'allow', 0, 'role:staff', 'read', 'folder:' || g || ':*', NULL
      FROM generate_series(1, 99997) g;
    INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
      ('mfa-for-secrets', 'deny', 10, '*', '*', 'folder:7:secret*', 'exists($.context.mfa ? (@ != true))'),
      ('owners-write', 'allow', 5, '*', 'write', 'folder:*', '$.resource.attrs.owner == $.actor.uid'),
      ('nobody-deletes', 'deny', 0, '*', 'delete', '*', NULL);
    INSERT INTO decide.entities (uid, parents) VALUES ('user:ann', '{role:staff}');
    INSERT INTO decide.entities (uid, attrs) VALUES ('folder:9:doc', '{"owner": "user:ann"}');
});
my $requests = q{FROM (VALUES (1, 'user:ann', 'read', 'folder:42:doc', '{}'),
                               (2, 'user:ann', 'read', 'folder:7:secret-plan', '{"mfa": false}'),
                               (3, 'user:ann', 'read', 'folder:7:secret-plan', '{"mfa": true}'),
                               (4, 'user:ann', 'write', 'folder:9:doc', '{}'),
                               (5, 'user:bob', 'read', 'folder:42:doc', '{}'),
                               (6, 'user:ann', 'delete', 'folder:42:doc', '{}')) r(n, a, b, c, ctx)};
my $answers_sql = qq{SELECT string_agg(allowed::text || ':' || coalesce(policy, '-'), ',' ORDER BY n)
                     $requests, LATERAL decide(a, b, c, ctx::jsonb)};
my $expected = 'true:folder-42,false:mfa-for-secrets,true:folder-7,true:owners-write,false:-,false:nobody-deletes';

# Builds counted so far, then a change (a statement that changes no row
# moves the epoch too): the next epoch is built by whichever process needs
# it first, a backend or the worker warming, which adds its count a moment
# later: wait for it.
sub builds_after
{
    my ($before) = @_;
    foreach (1 .. 100)
    {
        last if stat_of('shared_set_builds') > $before;
        usleep(100_000);
    }
    usleep(500_000);    # and leave time for a second one to show, were there one
    return stat_of('shared_set_builds') - $before;
}

# The builds so far, once the count has stood still for a second (the
# worker counts its own a moment after it builds).
sub settled_builds
{
    my $count = stat_of('shared_set_builds');
    foreach (1 .. 30)
    {
        usleep(1_000_000);
        my $now = stat_of('shared_set_builds');
        return $now if $now == $count;
        $count = $now;
    }
    return $count;
}

# Ten backends decide under the same epoch: one build, every answer right.
$node->safe_psql('postgres', "SET decide.cache = off; $answers_sql");
my $builds_before = settled_builds();
$node->safe_psql('postgres', q{DELETE FROM decide.policies WHERE false});
foreach my $i (1 .. 10)
{
    is($node->safe_psql('postgres', "SET decide.cache = off; $answers_sql"), $expected,
       "backend $i decides from the shared set") if $i == 1 || $i == 10;
    $node->safe_psql('postgres', "SET decide.cache = off; $answers_sql") if $i != 1 && $i != 10;
}
is(builds_after($builds_before), 1, 'ten backends, one build');
is(stat_of('shared_set_epoch'), $node->safe_psql('postgres', 'SELECT decide_epoch()'),
   'decide_stats shows the shared set of the current epoch');
cmp_ok(stat_of('shared_set_bytes'), '>', 1_000_000, 'and its size');
is(stat_of('shared_set_fallbacks'), '0', 'no backend compiled privately');
cmp_ok(stat_of('shared_sets_bytes'), '<', 3 * stat_of('shared_set_bytes'),
       'ten backends did not make ten copies in shared memory');

# A new backend's own memory after its first decision (one that evaluates a
# condition): the set is not copied, nor anything sized by it.
my $own_memory = $node->safe_psql('postgres', q{SELECT decide_allowed('user:ann', 'read', 'folder:7:secret-x', '{"mfa": true}');
    SELECT sum(total_bytes) FROM pg_backend_memory_contexts});
$own_memory = (split /\n/, $own_memory)[-1];
diag("private memory of a backend after its first decision, 100,000 policies: $own_memory bytes");
cmp_ok($own_memory, '<', 8 * 1024 * 1024, 'a backend\'s private memory stays under 8 MB');

# A policy change: the next epoch is built once, and the old set is freed
# once nobody uses it.
$builds_before = settled_builds();
$node->safe_psql('postgres', q{UPDATE decide.policies SET effect = 'deny' WHERE name = 'folder-42'});
foreach my $i (1 .. 5)
{
    $node->safe_psql('postgres', "SET decide.cache = off; $answers_sql");
}
is($node->safe_psql('postgres', "SET decide.cache = off; $answers_sql"),
   'false:folder-42,false:mfa-for-secrets,true:folder-7,true:owners-write,false:-,false:nobody-deletes',
   'after a change, backends decide under the new epoch');
is(builds_after($builds_before), 1, 'which was built once');
cmp_ok(stat_of('shared_sets_bytes'), '<', 2 * stat_of('shared_set_bytes'),
       'the superseded set was freed');

# A transaction's own uncommitted change is decided under a private set;
# other sessions keep the committed shared one.
$builds_before = settled_builds();
my $own = $node->safe_psql('postgres', q{BEGIN;
    UPDATE decide.policies SET effect = 'allow' WHERE name = 'folder-42';
    SELECT allowed FROM decide('user:ann', 'read', 'folder:42:doc');
    ROLLBACK;});
is($own, 't', 'a transaction sees its own change');
is($node->safe_psql('postgres', q{SELECT allowed FROM decide('user:ann', 'read', 'folder:42:doc')}), 'f',
   'others do not');
is(stat_of('shared_set_builds') - $builds_before, 0, 'and the private set was not shared');

# A builder terminated while it compiles: the others still decide.
$node->safe_psql('postgres', q{UPDATE decide.policies SET priority = 1 WHERE name = 'folder-1'});
my ($victim_out, $victim_err) = ('', '');
my $victim = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
                              q{SELECT decide_allowed('user:ann', 'read', 'folder:1:x')}],
                             '>', \$victim_out, '2>', \$victim_err);
my $victim_pid = '';
foreach (1 .. 500)
{
    $victim_pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity
        WHERE query LIKE '%folder:1:x%' AND state = 'active' AND pid <> pg_backend_pid()});
    last if $victim_pid ne '';
    usleep(2_000);
}
$node->safe_psql('postgres', "SELECT pg_terminate_backend($victim_pid)") if $victim_pid ne '';
$victim->finish;
is($node->safe_psql('postgres', q{SET statement_timeout = '30s';
    SELECT decide_allowed('user:ann', 'read', 'folder:1:x')}), 't',
   'after a builder was terminated, another backend decides');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
                                    WHERE wait_event_type = 'Extension' AND backend_type = 'client backend'}),
   '0', 'and nobody is left waiting');

# A set larger than decide.shared_policy_memory: each backend compiles its
# own, and decides right.
$node->append_conf('postgresql.conf', q{decide.shared_policy_memory = '1MB'});
$node->restart;
is($node->safe_psql('postgres', "SET decide.cache = off; $answers_sql"),
   'false:folder-42,false:mfa-for-secrets,true:folder-7,true:owners-write,false:-,false:nobody-deletes',
   'a set too large to share still decides');
is($node->safe_psql('postgres', "SET decide.cache = off; $answers_sql"),
   'false:folder-42,false:mfa-for-secrets,true:folder-7,true:owners-write,false:-,false:nobody-deletes',
   'in every backend');
cmp_ok(stat_of('shared_set_fallbacks'), '>=', 2, 'each counted as a private fallback');
is(stat_of('shared_set_builds'), '0', 'nothing was published');

$node->stop;
done_testing();

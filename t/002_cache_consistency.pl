# Several backends hammer cached decisions while another flips the policy
# they depend on.  Every answer must be the policy set's answer at the epoch
# it reports, and a transaction that starts after a change committed must
# never get an answer from before it, whichever cache layer answers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('hammer');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'decide'
max_connections = 20
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.entities (uid, parents) VALUES ('user0', '{readers}'), ('user1', '{readers}');
    INSERT INTO decide.policies (name, effect, actor, action, resource)
    VALUES ('flip', 'allow', 'readers', 'read', 'doc*'), ('other', 'allow', 'writers', 'write', 'img*');
    CREATE TABLE answers (epoch bigint, allowed boolean, source text, started timestamptz);
    CREATE TABLE commits (epoch bigint, effect text, committed timestamptz);
    INSERT INTO commits SELECT epoch, 'allow', clock_timestamp() FROM decide.epoch;
});

my $dir = $node->basedir;
# Each transaction flips the policy the deciders meet, or changes one they
# do not meet (whose commits let cached answers be carried forward), then
# records when its commit was done.
open my $fh, '>', "$dir/flip.sql" or die;
print $fh q{\set which random(0, 1)
BEGIN;
UPDATE decide.policies SET effect = CASE effect WHEN 'allow' THEN 'deny' ELSE 'allow' END::decide.effect
 WHERE name = 'flip' AND :which = 0;
UPDATE decide.policies SET priority = 1 - priority WHERE name = 'other' AND :which = 1;
COMMIT;
INSERT INTO commits SELECT e.epoch, p.effect, clock_timestamp()
  FROM decide.epoch e, decide.policies p WHERE p.name = 'flip';
\sleep 20 ms
};
close $fh;
# Deciders: a few keys, so answers come from L1, L2 and misses.  (No
# colons in the uids: pgbench would take ":x" for a variable.)
open $fh, '>', "$dir/decide.sql" or die;
print $fh q{\set u random(0, 1)
\set d random(1, 3)
INSERT INTO answers SELECT epoch, allowed, source, now()
  FROM decide('user' || :u, 'read', 'doc' || :d);
};
close $fh;

my @connect = ('-h', $node->host, '-p', $node->port, 'postgres');
my ($out, $err) = ('', '');
my $flipper = IPC::Run::start(
    [ 'pgbench', '-n', '-c', '1', '-T', '6', '-f', "$dir/flip.sql", @connect ],
    '>', \$out, '2>', \$err);
$node->command_ok(
    [ 'pgbench', '-n', '-M', 'prepared', '-c', '4', '-j', '2', '-T', '5', '-f', "$dir/decide.sql", @connect ],
    'deciders ran');
$flipper->finish or die "flipper failed: $err";

my $flips = $node->safe_psql('postgres', 'SELECT count(*) - 1 FROM commits');
my $answers = $node->safe_psql('postgres', 'SELECT count(*) FROM answers');
cmp_ok($flips, '>', 20, "the policy flipped many times ($flips)");
cmp_ok($answers, '>', 1000, "many decisions were made ($answers)");
my $sources = $node->safe_psql('postgres',
    q{SELECT string_agg(DISTINCT source, ',' ORDER BY source) FROM answers});
is($sources, 'l1,l2,miss', 'answers came from every layer');

# Each answer agrees with the effect committed at its epoch.
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM answers a JOIN commits c USING (epoch)
     WHERE a.allowed <> (c.effect = 'allow')}), '0',
   'every answer is the policy set\'s answer at the epoch it reports');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM answers a WHERE NOT EXISTS (SELECT FROM commits c WHERE c.epoch = a.epoch)}),
   '0', 'every reported epoch is a committed one');
# No transaction that started after a commit got an older epoch.
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM answers a JOIN commits c ON c.committed < a.started AND a.epoch < c.epoch}),
   '0', 'no stale answer after a commit, from any layer');

my $stats = $node->safe_psql('postgres',
    'SELECT l1_hits > 0 AND l2_hits > 0 AND policy_reloads > 0 FROM decide_stats');
is($stats, 't', 'stats counted hits in both layers and reloads');
my $carried = $node->safe_psql('postgres', 'SELECT carried_forward FROM decide_stats');
cmp_ok($carried, '>', 0, "answers were carried across the unrelated changes ($carried)");

$node->stop;
done_testing();

# Redis as the shared third cache layer: hits across backends and servers,
# and no effect on answers when Redis is down, paused, protected by a
# password we do not have, or full of junk under decide's keys.  A primary
# and a streaming standby share it; a policy change on the primary flips
# the standby's answer once replayed.
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use FindBin;
use lib $FindBin::RealBin;
use DecideRedis;

my $redis = DecideRedis->new;
my $redis_port = $redis->port;
my $redis_dir = $redis->dir;
END { $redis->stop if $redis; }
sub redis_cli { return $redis->cli(@_); }

$redis->start;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'decide'
decide.redis_url = 'redis://127.0.0.1:$redis_port'
decide.redis_connect_timeout = '100ms'
decide.redis_command_timeout = '100ms'
decide.redis_breaker_failures = 3
decide.redis_breaker_cooldown = '1s'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.entities (uid, parents) VALUES ('user:alice', '{role:r}');
    INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES
      ('readers', 'allow', 'role:r', 'read', 'doc:*', NULL),
      ('no-secret', 'deny', '*', '*', 'doc:secret*', NULL);
});

# The truth, computed with every cache bypassed, for a set of requests.
my $requests = q{FROM (VALUES (1, 'user:alice', 'read', 'doc:1'), (2, 'user:alice', 'read', 'doc:secret'),
                              (3, 'user:bob', 'read', 'doc:1'), (4, 'user:alice', 'write', 'doc:2')) r(n, a, b, c)};
my $truth = $node->safe_psql('postgres',
    qq{SET decide.cache = off; SELECT string_agg(allowed::text || coalesce(policy, '-'), ',' ORDER BY n) $requests, LATERAL decide(a, b, c)});
# The last line of a query's output (a setup statement may print before it).
sub last_line { my @lines = split /\n/, shift; return @lines ? $lines[-1] : ''; }
sub answers
{
    my ($n, $setup) = @_;
    $setup //= '';
    return last_line($n->safe_psql('postgres',
        qq{$setup SELECT string_agg(allowed::text || coalesce(policy, '-'), ',' ORDER BY n) $requests, LATERAL decide(a, b, c)}));
}
sub sources
{
    my ($n, $setup) = @_;
    $setup //= '';
    return last_line($n->safe_psql('postgres',
        qq{$setup SELECT string_agg(source, ',' ORDER BY n) $requests, LATERAL decide(a, b, c)}));
}
sub dstat { my ($n, $col) = @_; return $n->safe_psql('postgres', "SELECT $col FROM decide_stats"); }

# Redis up: a decision made by one backend is found in Redis by another
# once L1 and L2 are emptied.
is(sources($node), 'miss,miss,miss,miss', 'first decisions are misses');
is(sources($node, 'SELECT decide_cache_reset();'), 'redis,redis,redis,redis',
   'a fresh backend with empty L1 and L2 gets them from Redis');
is(answers($node), $truth, 'and the answers are right');
my @stored = split /\n/, redis_cli('--scan', '--pattern', "'decide:*'");
is(scalar(@stored), 4, 'one key per request is in Redis');
like($stored[0], qr/^decide:v1/, 'keys carry the prefix and the format version');
cmp_ok(redis_cli('TTL', "'$stored[0]'"), '>', 0, 'every key has a TTL');

# Junk values under decide's keys: ignored and counted, answers unchanged.
my @keys = split /\n/, redis_cli('--scan', '--pattern', "'decide:*'");
foreach my $k (@keys) { system('redis-cli', '-p', $redis_port, 'SET', $k, 'junk') == 0 or die; }
is(answers($node, 'SELECT decide_cache_reset();'), $truth, 'junk values do not change answers');
cmp_ok(dstat($node, 'redis_garbage'), '>=', scalar(@keys), 'junk values are counted as garbage');
# A valid value moved to another key is rejected too (values are bound to keys).
answers($node, 'SELECT decide_cache_reset();');    # rewrites valid values
@keys = split /\n/, redis_cli('--scan', '--pattern', "'decide:*'");
system('sh', '-c', "redis-cli -p $redis_port --raw GET '$keys[0]' | head -c 40 > $redis_dir/value") == 0 or die;
foreach my $k (@keys[1 .. $#keys]) { system('sh', '-c', "redis-cli -p $redis_port -x SET '$k' < $redis_dir/value >/dev/null") == 0 or die; }
my $garbage_before = dstat($node, 'redis_garbage');
is(answers($node, 'SELECT decide_cache_reset();'), $truth, 'a value copied under another key does not change answers');
cmp_ok(dstat($node, 'redis_garbage'), '>', $garbage_before, 'and is counted');

# Redis killed: errors are counted, the breaker opens, answers stay right.
$redis->stop;
my $errors_before = dstat($node, 'redis_errors');
is(answers($node, 'SELECT decide_cache_reset();'), $truth, 'Redis down: answers unchanged, no error');
cmp_ok(dstat($node, 'redis_errors'), '>', $errors_before, 'Redis down: failures counted');
cmp_ok(dstat($node, 'redis_breaker_opens'), '>=', 1, 'Redis down: the breaker opened');

# Redis paused (SIGSTOP): every wait ends at the command timeout, then the
# breaker skips Redis; nothing hangs.
$redis->start;
usleep(1_100_000);    # let the breaker's cooldown pass
answers($node, 'SELECT decide_cache_reset();');
kill 'STOP', $redis->pid;
my $skipped_before = dstat($node, 'redis_skipped');
my $t0 = time;
is(last_line($node->safe_psql('postgres', qq{SELECT decide_cache_reset();
    SELECT count(*) FILTER (WHERE allowed) FROM generate_series(1, 200) g, decide('user:alice', 'read', 'doc:' || g)})),
   '200', 'Redis paused: 200 decisions answered');
my $paused_seconds = time - $t0;
diag(sprintf('200 decisions with Redis paused took %.2f s (command timeout 100 ms, breaker after 3 failures)',
             $paused_seconds));
cmp_ok(dstat($node, 'redis_skipped'), '>', $skipped_before + 100, 'Redis paused: the breaker skipped it');
kill 'CONT', $redis->pid;
usleep(1_100_000);
is(answers($node), $truth, 'Redis resumed: answers right');

# Wrong password: Redis requires one we do not give.
$redis->stop;
$redis->start('--requirepass', 'sesame');
$errors_before = dstat($node, 'redis_errors');
is(answers($node, 'SELECT decide_cache_reset();'), $truth, 'Redis with an unknown password: answers unchanged');
cmp_ok(dstat($node, 'redis_errors'), '>', $errors_before, 'the refusals are counted');
# With the password it works again.
$node->append_conf('postgresql.conf', qq{decide.redis_url = 'redis://:sesame\@127.0.0.1:$redis_port'});
$node->reload;
usleep(1_100_000);
answers($node, 'SELECT decide_cache_reset();');
is(sources($node, 'SELECT decide_cache_reset();'), 'redis,redis,redis,redis', 'with the password, Redis serves again');
# Redis full: writes are refused (OOM); counted, answers unchanged.
redis_cli('-a', 'sesame', '--no-auth-warning', 'CONFIG', 'SET', 'maxmemory', '1');
redis_cli('-a', 'sesame', '--no-auth-warning', 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
$errors_before = dstat($node, 'redis_errors');
is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE allowed) FROM generate_series(1, 20) g,
                                         decide('user:alice', 'read', 'doc:full' || g)}), '20',
   'Redis full: decisions answered');
cmp_ok(dstat($node, 'redis_errors'), '>', $errors_before, 'Redis full: refused writes are counted');
redis_cli('-a', 'sesame', '--no-auth-warning', 'CONFIG', 'SET', 'maxmemory', '0');
usleep(1_100_000);

# Settings that point at a server are superuser-only and hidden.
$node->safe_psql('postgres', 'CREATE ROLE regress_app LOGIN; GRANT decide_user TO regress_app;');
my ($ret, $out, $err) = $node->psql('postgres', q{SET decide.redis_url = 'redis://evil:6379'}, extra_params => ['-U', 'regress_app']);
like($err, qr/permission denied to set parameter/, 'decide_user cannot point decide at a Redis');
($ret, $out, $err) = $node->psql('postgres', q{SHOW decide.redis_url}, extra_params => ['-U', 'regress_app']);
like($err, qr/must be superuser|permission denied|pg_read_all_settings/, 'nor read the Redis URL (it may hold a password)');

# Copies of a database (CREATE DATABASE ... TEMPLATE) share the store id
# and count epochs alike, but once their policies differ they never read
# each other's decisions: keys name the policy-set version, drawn at random
# with every epoch.
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'allow', '*', 'read', '*')});
$node->safe_psql('postgres', 'CREATE DATABASE app_copy TEMPLATE app');
$node->safe_psql('app', q{UPDATE decide.policies SET effect = 'deny'});
$node->safe_psql('app_copy', q{UPDATE decide.policies SET priority = 5});
is($node->safe_psql('app', 'SELECT decide_epoch()'), $node->safe_psql('app_copy', 'SELECT decide_epoch()'),
   'the copies are at the same epoch number');
is(last_line($node->safe_psql('app', q{SELECT decide_cache_reset(); SELECT allowed::text || source FROM decide('user:x', 'read', 'doc:1')})),
   'falsemiss', 'the original decides (and stores in Redis)');
is(last_line($node->safe_psql('app_copy', q{SELECT decide_cache_reset(); SELECT allowed::text || source FROM decide('user:x', 'read', 'doc:1')})),
   'truemiss', 'the copy decides for itself, not from the original\'s entry');

# A streaming standby sharing Redis.
$node->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'backup', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', q{UPDATE decide.policies SET priority = 1 WHERE name = 'readers'});
$node->wait_for_catchup($standby);
is(sources($node), 'miss,miss,miss,miss', 'primary decides under the new epoch');
is(sources($standby), 'redis,redis,redis,redis', 'the standby gets the primary\'s decisions from Redis');
is($standby->safe_psql('postgres', 'SELECT decide_epoch()'), $node->safe_psql('postgres', 'SELECT decide_epoch()'),
   'same epoch on both after replay');
$node->safe_psql('postgres', q{UPDATE decide.policies SET effect = 'deny' WHERE name = 'readers'});
$node->wait_for_catchup($standby);
# (The answer may come computed, or warmed into L2 by the standby's worker.)
is($standby->safe_psql('postgres', q{SELECT allowed::text || ' ' || (epoch = decide_epoch())::text
                                        FROM decide('user:alice', 'read', 'doc:1')}),
   'false true', 'a policy change on the primary flips the standby\'s answer once replayed');

# A time-dependent answer is shared only while it holds: decided by a
# statement that ran past its deadline, it is not written to Redis, and
# the standby decides for itself instead of reading a stale allow.
# The deadline leaves the policy's replay time to spare on a loaded
# machine; the statement then sleeps until half a second past it.
my $deadline = $node->safe_psql('postgres', q{SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC'
    + interval '5 seconds', 'YYYY-MM-DD"T"HH24:MI:SS.US')});
$node->safe_psql('postgres', qq{INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition)
    VALUES ('until-deadline', 'allow', 9, 'user:temp', 'read', 'doc:t', '\$now < "$deadline"')});
$node->wait_for_catchup($standby);
is($node->safe_psql('postgres', qq{SELECT (r).allowed FROM (SELECT decide('user:temp', 'read', 'doc:t') AS r
                                     FROM (SELECT pg_sleep(0.5 + greatest(0, extract(epoch FROM
                                               '${deadline}Z'::timestamptz - clock_timestamp())))) slept
                                    OFFSET 0) decided}),
   't', 'a statement that started before the deadline is allowed');
is($standby->safe_psql('postgres', q{SELECT allowed::text || ' ' || source FROM decide('user:temp', 'read', 'doc:t')}),
   'false miss', 'right after it, the standby does not get that allow from Redis');

# Decisions made on the standby reach the primary's log through Redis,
# each exactly once.
$standby->safe_psql('postgres',
    q{SELECT count(*) FROM generate_series(1, 50) g, decide('user:standby' || g, 'read', 'doc:1')});
my $arrived = 0;
foreach (1 .. 300)
{
    $arrived = $node->safe_psql('postgres',
        q{SELECT count(*) FROM decide.decisions WHERE actor LIKE 'user:standby%'});
    last if $arrived >= 50;
    usleep(100_000);
}
is($arrived, '50', 'the standby\'s decisions reached the primary\'s log');
is($node->safe_psql('postgres',
    q{SELECT count(DISTINCT actor) FROM decide.decisions WHERE actor LIKE 'user:standby%'}), '50',
   'each exactly once');
is($standby->safe_psql('postgres', 'SELECT log_forwarded >= 50 FROM decide_stats'), 't',
   'the standby counts them as forwarded');
is($node->safe_psql('postgres', 'SELECT log_received >= 50 FROM decide_stats'), 't',
   'the primary counts them as received');
# Contexts travel as JSON text and arrive as the same jsonb.
$standby->safe_psql('postgres', q{SET decide.log_context = on;
    SELECT decide('user:ctx', 'read', 'doc:1', '{"ip": "10.0.0.7", "n": [1, 2.50, -0.5], "s": "\u00e9\n\"", "o": {"x": null}}')});
my $context = '';
foreach (1 .. 300)
{
    $context = $node->safe_psql('postgres', q{SELECT context = '{"ip": "10.0.0.7", "n": [1, 2.50, -0.5], "s": "\u00e9\n\"", "o": {"x": null}}'::jsonb
                                                FROM decide.decisions WHERE actor = 'user:ctx'});
    last if $context ne '';
    usleep(100_000);
}
is($context, 't', 'a context logged on the standby reaches the primary\'s log unchanged');
# A worker restart on the primary does not write them again.
$node->safe_psql('postgres',
    q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'});
usleep(6_000_000);
is($node->safe_psql('postgres', q{SELECT count(*) FROM decide.decisions WHERE actor LIKE 'user:standby%'}),
   '50', 'a restarted worker does not write them twice');

$standby->stop;
$node->stop;
$redis->stop;
done_testing();

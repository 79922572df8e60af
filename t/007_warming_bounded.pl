# Warming can never hold the decision log back.  A caller plants requests
# that become slow after a change (a condition whose like_regex backtracks
# for half a second on the new attributes); when the epoch moves, the
# worker's warming gives up on each at its time limit, the log keeps
# flushing under steady traffic and drops nothing, and the slow requests
# are not warmed again at the next change.  On 0.6.0 the same run stalled
# the flush for the whole warming and dropped decisions.
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
decide.flush_interval = '50ms'
decide.log_buffer_size = '1MB'
});
$node->start;

my $slow_requests = 40;
# (.*)(.*)\2\1b on 'a' x n || 'b': the regex engine tries every split of
# the string between its two groups: fast for a few bytes, ~0.5 s for 1500.
$node->safe_psql('postgres', qq{
    CREATE EXTENSION decide;
    INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES
      ('pattern-docs', 'allow', '*', 'read', 'doc:*', '\$.resource.attrs.s like_regex "(.*)(.*)\\\\2\\\\1b"'),
      ('others', 'allow', '*', 'read', 'other:*', NULL);
    INSERT INTO decide.entities (uid, attrs)
    SELECT 'doc:' || g, '{"s": "ab"}' FROM generate_series(1, $slow_requests) g;
    INSERT INTO decide.entities (uid, attrs) VALUES ('doc:fast', '{"s": "ab"}');
});

sub stat_of { return $node->safe_psql('postgres', "SELECT $_[0] FROM decide_stats"); }

sub wait_for_warming_after
{
    my ($before) = @_;
    foreach (1 .. 600)
    {
        my $now = stat_of('last_warm_ms');
        return 1 if $now ne $before;
        usleep(100_000);
    }
    return 0;
}

# Plant: each request is fast now, and lands in the shared cache.
is($node->safe_psql('postgres', qq{SELECT count(*) FILTER (WHERE allowed)
    FROM generate_series(1, $slow_requests) g, decide('user:u', 'read', 'doc:' || g)}),
   $slow_requests, 'the planted requests are allowed, and fast while the strings are short');
$node->safe_psql('postgres', q{SELECT decide('user:u', 'read', 'doc:fast')});
$node->safe_psql('postgres', 'SELECT decide_flush()');

# The change that makes them slow: the worker warms them under the new epoch.
my $warm_before = stat_of('last_warm_ms');
my $dropped_before = stat_of('log_dropped');
$node->safe_psql('postgres', q{UPDATE decide.entities SET attrs = jsonb_build_object('s', repeat('a', 1500) || 'b')
                                WHERE uid LIKE 'doc:%' AND uid <> 'doc:fast'});

# Steady traffic meanwhile: 20,000 decisions over about two seconds, more
# than the 1 MB ring holds, so the flush must run during the warming.
$node->safe_psql('postgres', q{
    SET decide.cache = off;
    DO $$
    BEGIN
        FOR i IN 1 .. 10 LOOP
            PERFORM count(*) FROM generate_series(1, 2000) g, decide('user:t' || i || '-' || g, 'read', 'other:1');
            PERFORM pg_sleep(0.1);
        END LOOP;
    END
    $$;
});
$node->safe_psql('postgres', 'SELECT decide_flush()');
is($node->safe_psql('postgres', q{SELECT count(*) FROM decide.decisions WHERE actor LIKE 'user:t%'}),
   '20000', 'every decision made during the warming is in the log');
is(stat_of('log_dropped'), $dropped_before, 'none was dropped');

ok(wait_for_warming_after($warm_before), 'the warming after the change finishes');
my $timeouts = stat_of('warm_timeouts');
cmp_ok($timeouts, '>=', 1, 'slow requests hit the warming time limit');
cmp_ok($timeouts, '<=', $slow_requests, 'each at most once');
is($node->safe_psql('postgres', q{SELECT source FROM decide('user:u', 'read', 'doc:fast')}), 'l2',
   'the fast request was warmed all the same');

# The next change: the slow requests are skipped, not tried again.
$warm_before = stat_of('last_warm_ms');
$node->safe_psql('postgres', q{INSERT INTO decide.entities (uid) VALUES ('user:new')});
ok(wait_for_warming_after($warm_before), 'the warming after the next change finishes');
is(stat_of('warm_timeouts'), $timeouts, 'the slow requests were not warmed again');
is($node->safe_psql('postgres', q{SELECT source FROM decide('user:u', 'read', 'doc:fast')}), 'l2',
   'while the fast one was');

my $log = slurp_file($node->logfile);
unlike($log, qr/canceling statement/, 'the time limits leave no error in the server log');

$node->stop;
done_testing();

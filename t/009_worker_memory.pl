# The worker's memory stays flat: everything a turn of its loop allocates
# is freed by the next turn.  A hot standby's worker forwards its decision
# log through Redis for three minutes under steady traffic; its memory, as
# pg_log_backend_memory_contexts() reports it, is the same at the end as
# after the first half minute.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use FindBin;
use lib $FindBin::RealBin;
use DecideRedis;

my $redis = DecideRedis->new;
$redis->start;
END { $redis->stop if $redis; }
my $redis_port = $redis->port;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'decide'
decide.redis_url = 'redis://127.0.0.1:$redis_port'
decide.flush_interval = '50ms'
});
$primary->start;
$primary->safe_psql('postgres', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('readers', 'allow', '*', 'read', '*');
});
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

$standby->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'});
my $worker = $standby->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'});
ok($worker > 0, 'the standby\'s worker runs');

# Decisions on the standby, with their contexts logged, until the deadline.
my $round = 0;
sub traffic_until
{
    my $until = shift;
    while (time < $until)
    {
        $round++;
        $standby->safe_psql('postgres', qq{SET decide.log_context = on;
            SELECT count(*) FROM generate_series(1, 500) g,
                   decide('user:' || g, 'read', 'doc:$round', jsonb_build_object('n', g, 'round', $round))});
        usleep(50_000);
    }
}

# The worker's memory, from the server log: the grand total of its
# contexts, and what each context holds, to name the one that grew.
sub worker_memory
{
    my $offset = -s $standby->logfile;
    $standby->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($worker)");
    foreach (1 .. 100)
    {
        my $log = substr(slurp_file($standby->logfile), $offset);
        if ($log =~ /Grand total: (\d+) bytes/)
        {
            my $total = $1;
            my %contexts;
            $contexts{$1} += $2 while $log =~ /level: \d+; ([^:]+): (\d+) total/g;
            return ($total, \%contexts);
        }
        usleep(100_000);
    }
    die 'the worker did not log its memory contexts';
}

# A dump is taken wherever the worker next checks for interrupts, at times
# in the middle of a turn, with that turn's memory still in use: the
# smallest of three dumps is the worker between turns.
sub worker_memory_between_turns
{
    my ($total, $contexts) = worker_memory();
    foreach (1 .. 2)
    {
        usleep(300_000);
        my ($t, $c) = worker_memory();
        ($total, $contexts) = ($t, $c) if $t < $total;
    }
    return ($total, $contexts);
}

traffic_until(time + 30);
my ($after_warmup, $contexts_before) = worker_memory_between_turns();
my $forwarded_before = $standby->safe_psql('postgres', 'SELECT log_forwarded FROM decide_stats');
traffic_until(time + 150);
my ($at_end, $contexts_after) = worker_memory_between_turns();
my $forwarded = $standby->safe_psql('postgres', 'SELECT log_forwarded FROM decide_stats') - $forwarded_before;
diag("standby worker memory: $after_warmup bytes after 30 s, $at_end bytes after 180 s; "
     . "$forwarded decisions forwarded in between");

foreach my $name (sort keys %$contexts_after)
{
    my $grown = $contexts_after->{$name} - ($contexts_before->{$name} // 0);
    diag("  $name grew by $grown bytes") if $grown != 0;
}

cmp_ok($forwarded, '>', 20_000, 'the worker forwarded decisions all along');
cmp_ok($at_end - $after_warmup, '<=', 16 * 1024, 'and its memory stayed flat (within 16 kB)');
is($standby->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'}),
   $worker, 'the same worker throughout');

$standby->stop;
$primary->stop;
done_testing();

# Entries in standbys' decision log streams are untrusted: whoever can write
# to the Redis can put anything there.  Malformed entries — among them the
# record that crashed 0.6.0's primary in a loop (a context whose jsonb
# header claims 1 GB) — are skipped, counted in redis_garbage and reported
# once a minute at most; the worker does not crash, the primary's own log
# keeps flowing, and the well-formed entries around them are written.
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
my $redis_dir = $redis->dir;

sub redis_cli { return $redis->cli(@_); }

# Adds an entry with arbitrary bytes as its value.
my $n_entry = 0;
sub xadd
{
    my ($stream, $bytes, $field) = @_;
    $field //= 'r';
    my $file = "$redis_dir/entry";
    open my $fh, '>:raw', $file or die;
    print $fh $bytes;
    close $fh;
    $n_entry++;
    my $out = `redis-cli -p $redis_port -x XADD '$stream' 1-$n_entry $field < $file 2>&1`;
    die "XADD failed: $out" unless $out =~ /^1-$n_entry/;
}

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'decide'
decide.redis_url = 'redis://127.0.0.1:$redis_port'
decide.flush_interval = '50ms'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.policies (name, effect, actor, action, resource, risk_level)
    VALUES ('readers', 'allow', '*', 'read', '*', 'low');
});

my $store = $node->safe_psql('postgres', q{SELECT replace(store_id::text, '-', '') FROM decide.epoch});
my $stream = "decide:log:$store:1.1";
redis_cli('SADD', "decide:logstreams:$store", $stream);

# A record as src/core/log_record.c lays it out (little-endian), tagged or not.
sub record
{
    my (%r) = @_;
    my @parts = map { $r{$_} // '' } qw(actor action resource policy risk context);
    my $body = 40 + length(join '', @parts);
    my $padded = ($body + 7) & ~7;
    my $header = pack('V l< q< q< v v v v V C C C C',
        $r{size} // $padded, 0, $r{decided_at} // int((time() - 946684800) * 1e6), 1,
        length($parts[0]), length($parts[1]), length($parts[2]), length($parts[3]),
        length($parts[5]), length($parts[4]), $r{flags} // 0, 0, $r{format} // 1);
    my $record = $header . join('', @parts) . (defined $r{size} ? '' : "\0" x ($padded - $body));
    return (($r{tagged} // 1) ? "dlog2\0\0\0" : '') . $record;
}

# The launcher starts the worker once CREATE EXTENSION has committed.
$node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'});
my $worker_pid = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'});
ok($worker_pid > 0, 'the worker runs');

# The 0.6.0 crash: a plain 51-byte record whose 8 context bytes are a jsonb
# varlena header claiming ~1 GB, and one claiming 100 MB.
xadd($stream, record(actor => 'a', action => 'b', resource => 'c', tagged => 0, format => 0,
                     size => 51, context => "\xfc\xff\xff\xff\0\0\0\0"));
xadd($stream, record(actor => 'a', action => 'b', resource => 'c', tagged => 0, format => 0,
                     context => pack('V', (100 * 1024 * 1024) << 2) . "\0\0\0\0"));
# Tagged entries that lie in each way the checks know of.
xadd($stream, record(actor => 'user:x', action => 'read', resource => 'doc:1', context => '{"a": 1e999999}'));
xadd($stream, record(actor => 'user:x', action => 'read', resource => 'doc:1', context => '{"a": "\u0000"}'));
xadd($stream, record(actor => 'user:x', action => 'read', resource => 'doc:1', policy => 'p',
                     risk => 'apocalyptic', flags => 3));
xadd($stream, record(actor => "user:\xff\xfe", action => 'read', resource => 'doc:1'));
xadd($stream, record(actor => 'user:*', action => 'read', resource => 'doc:1'));
xadd($stream, record(actor => 'user:x', action => 'read', resource => 'doc:1', flags => 1));
xadd($stream, record(actor => 'user:x', action => 'read', resource => 'doc:1',
                     decided_at => int((time() - 946684800 + 400 * 86400 * 365) * 1e6)));
xadd($stream, 'junk');
xadd($stream, 'junk', 'other-field');
# And well-formed entries among them, one with a context.
xadd($stream, record(actor => 'user:forwarded1', action => 'read', resource => 'doc:1',
                     policy => 'readers', risk => 'low', flags => 3, context => '{"ip": "10.0.0.7", "n": [1, 2.50]}'));
xadd($stream, record(actor => 'user:forwarded2', action => 'read', resource => 'doc:2'));
my $garbage_sent = 11;
# A stream registered under a name decide never gives.
redis_cli('SADD', "decide:logstreams:$store", "'not-ours'");

# Meanwhile the primary decides and logs as usual.
$node->safe_psql('postgres',
    q{SELECT count(*) FROM generate_series(1, 300) g, decide('user:local' || g, 'read', 'doc:1')});
$node->safe_psql('postgres', 'SELECT decide_flush()');
is($node->safe_psql('postgres', q{SELECT count(*) FROM decide.decisions WHERE actor LIKE 'user:local%'}),
   '300', 'the primary\'s own log keeps flowing');

my $arrived = 0;
foreach (1 .. 200)
{
    $arrived = $node->safe_psql('postgres',
        q{SELECT count(*) FROM decide.decisions WHERE actor LIKE 'user:forwarded%'});
    last if $arrived == 2;
    usleep(100_000);
}
is($arrived, '2', 'the well-formed entries are written');
is($node->safe_psql('postgres',
    q{SELECT context::text || ' ' || allowed || ' ' || policy || ' ' || risk_level
        FROM decide.decisions WHERE actor = 'user:forwarded1'}),
   '{"n": [1, 2.50], "ip": "10.0.0.7"} true readers low', 'with their context');
is($node->safe_psql('postgres', q{SELECT count(*) FROM decide.decisions WHERE actor NOT LIKE 'user:local%'
                                    AND actor NOT LIKE 'user:forwarded%'}),
   '0', 'nothing malformed is written');
cmp_ok($node->safe_psql('postgres', 'SELECT redis_garbage FROM decide_stats'), '>=', $garbage_sent + 1,
       'every malformed entry and the foreign stream are counted in redis_garbage');
is($node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'}),
   $worker_pid, 'the worker did not crash or restart');
is($node->safe_psql('postgres', "SELECT last_id FROM decide.log_stream_positions WHERE stream = '$stream'"),
   "1-$n_entry", 'the stream is read to its last entry');

my $log = slurp_file($node->logfile);
my @warnings = $log =~ /decide skipped \d+ malformed entries/g;
is(scalar(@warnings), 1, 'the skipped entries are reported once');
like($log, qr/decide skipped \d+ malformed entries of standbys' decision log streams in Redis/,
     'with what was skipped');
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no process crashed');

# More junk within the minute: counted, not reported again yet.
my $garbage_before = $node->safe_psql('postgres', 'SELECT redis_garbage FROM decide_stats');
xadd($stream, record(actor => 'a', action => 'b', resource => 'c', tagged => 0, format => 0,
                     size => 51, context => "\xfc\xff\xff\xff\0\0\0\0"));
foreach (1 .. 100)
{
    last if $node->safe_psql('postgres', 'SELECT redis_garbage FROM decide_stats') > $garbage_before;
    usleep(100_000);
}
cmp_ok($node->safe_psql('postgres', 'SELECT redis_garbage FROM decide_stats'), '>', $garbage_before,
       'a later malformed entry is counted');
$log = slurp_file($node->logfile);
@warnings = $log =~ /decide skipped \d+ malformed entries/g;
is(scalar(@warnings), 1, 'and not reported again within the minute');

$node->stop;
done_testing();

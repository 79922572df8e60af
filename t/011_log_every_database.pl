# Every database where decide is installed has its own decision log, with
# no setting: the launcher starts a worker per database.  Decisions made in
# three databases at once land in their own database's log, each exactly
# once, also across a worker's termination and a fast shutdown; DROP
# DATABASE and DROP EXTENSION in one database do not disturb the others;
# CREATE EXTENSION again brings the worker back.  With no background worker
# slot left, a database's decisions are counted as not logged and a WARNING
# says why.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('databases');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'decide'
decide.flush_interval = '50ms'
max_worker_processes = 16
});
$node->start;

my @dbs = ('app_a', 'app_b', 'app_c');

sub install
{
    my $db = shift;
    $node->safe_psql($db, q{
        SET client_min_messages = warning;
        CREATE EXTENSION decide;
        INSERT INTO decide.policies (name, effect, actor, action, resource)
        VALUES ('readers', 'allow', '*', 'read', '*');
    });
}

sub wait_for
{
    my ($db, $query, $expected, $what) = @_;
    my $got = '';
    foreach (1 .. 300)
    {
        my ($ret, $out) = $node->psql($db, $query);
        $got = $out // '';
        return 1 if $ret == 0 && $got eq $expected;
        usleep(100_000);
    }
    diag("$what: last got '$got', expected '$expected'");
    return 0;
}

sub worker_of
{
    my $db = shift;
    return $node->safe_psql('postgres',
        qq{SELECT coalesce((SELECT pid FROM pg_stat_activity
                             WHERE backend_type = 'decide worker' AND datname = '$db'), 0)});
}

# Decisions by actors named after the database and a batch, run in one
# psql per database at the same time.
sub decide_everywhere
{
    my ($batch, $n, @in) = @_;
    my @runs;
    foreach my $db (@in)
    {
        my $sql = qq{SELECT count(*) FROM generate_series(1, $n) g,
                     decide('user:$db-$batch-' || g, 'read', 'doc:1')};
        push @runs, IPC::Run::start(
            [ 'psql', '-X', '-q', '-A', '-t', '-d', $node->connstr($db), '-c', $sql ],
            '>', \my $out, '2>', \my $err);
    }
    $_->finish foreach @runs;
}

# Each database's log holds exactly its own decisions of a batch, once each.
sub logged
{
    my ($db, $batch) = @_;
    return $node->safe_psql($db, qq{
        SELECT count(*) || ' ' || count(DISTINCT actor) || ' ' ||
               count(*) FILTER (WHERE actor NOT LIKE 'user:$db-%')
          FROM decide.decisions WHERE actor LIKE 'user:%-$batch-%'});
}

$node->safe_psql('postgres', "CREATE DATABASE $_") foreach @dbs;
install($_) foreach @dbs;
foreach my $db (@dbs)
{
    ok(wait_for($db, qq{SELECT count(*) FROM pg_stat_activity
                         WHERE backend_type = 'decide worker' AND datname = '$db'}, '1',
                "worker of $db"), "a worker runs for $db without any setting");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
                                    WHERE backend_type = 'decide launcher'}), '1', 'one launcher');
ok(wait_for('postgres', q{SELECT count(*) FROM pg_stat_activity
                           WHERE backend_type = 'decide worker' AND datname = 'postgres'}, '0',
            'no worker in postgres'), 'no worker stays in a database without decide');

# Three databases at once.
decide_everywhere('one', 3000, @dbs);
foreach my $db (@dbs)
{
    $node->safe_psql($db, 'SELECT decide_flush()');
    is(logged($db, 'one'), '3000 3000 0', "$db logged its 3,000 decisions once, and no other's");
}

# A worker terminated while decisions go on: the launcher starts it again;
# nothing is lost or written twice.
{
    my $pid = worker_of('app_b');
    my @runs;
    my $sql = q{SELECT count(*) FROM generate_series(1, 5000) g, decide('user:app_b-two-' || g, 'read', 'doc:1')};
    push @runs, IPC::Run::start(
        [ 'psql', '-X', '-q', '-A', '-t', '-d', $node->connstr('app_b'), '-c', $sql ],
        '>', \my $out, '2>', \my $err);
    usleep(50_000);
    kill 'TERM', $pid;
    $_->finish foreach @runs;
    ok(wait_for('app_b', qq{SELECT count(*) FROM pg_stat_activity
                            WHERE backend_type = 'decide worker' AND datname = 'app_b' AND pid <> $pid},
                '1', 'app_b worker back'), 'the launcher started app_b\'s worker again');
    $node->safe_psql('app_b', 'SELECT decide_flush()');
    is(logged('app_b', 'two'), '5000 5000 0', 'a terminated worker lost nothing and wrote nothing twice');
}

# A fast shutdown right after deciding in every database loses nothing.
decide_everywhere('three', 2000, @dbs);
$node->restart(mode => 'fast');
foreach my $db (@dbs)
{
    is(logged($db, 'three'), '2000 2000 0', "$db lost nothing in a fast shutdown");
}

# DROP DATABASE of one: its worker makes way; the others go on.
ok(wait_for('app_c', q{SELECT worker_pid IS NOT NULL FROM decide_stats}, 't', 'app_c worker'),
   'app_c has its worker');
$node->safe_psql('postgres', 'DROP DATABASE app_c');
pass('DROP DATABASE of a database with a worker succeeds');
decide_everywhere('four', 1000, 'app_a', 'app_b');
foreach my $db ('app_a', 'app_b')
{
    $node->safe_psql($db, 'SELECT decide_flush()');
    is(logged($db, 'four'), '1000 1000 0', "$db logs on after another database was dropped");
}

# DROP EXTENSION in one: its worker leaves; the other goes on; CREATE
# EXTENSION brings a worker back.
$node->safe_psql('app_b', 'DROP EXTENSION decide');
ok(wait_for('app_b', q{SELECT count(*) FROM pg_stat_activity
                       WHERE backend_type = 'decide worker' AND datname = 'app_b'}, '0',
            'app_b worker gone'), 'the worker leaves a database whose extension was dropped');
decide_everywhere('five', 1000, 'app_a');
$node->safe_psql('app_a', 'SELECT decide_flush()');
is(logged('app_a', 'five'), '1000 1000 0', 'app_a logs on after DROP EXTENSION elsewhere');
install('app_b');
ok(wait_for('app_b', q{SELECT count(*) FROM pg_stat_activity
                       WHERE backend_type = 'decide worker' AND datname = 'app_b'}, '1',
            'app_b worker again'), 'CREATE EXTENSION brings the worker back');
decide_everywhere('six', 1000, 'app_b');
$node->safe_psql('app_b', 'SELECT decide_flush()');
is(logged('app_b', 'six'), '1000 1000 0', 'app_b logs again');

# Databases dropped with their workers leave no entry behind: after three
# more come and go, a new one still gets a worker (decide.max_databases is 4,
# and app_a and app_b hold two).
foreach my $db ('gone_1', 'gone_2', 'gone_3')
{
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    install($db);
    ok(wait_for($db, qq{SELECT count(*) FROM pg_stat_activity
                         WHERE backend_type = 'decide worker' AND datname = '$db'}, '1',
                "worker of $db"), "$db gets a worker");
    $node->safe_psql('postgres', "DROP DATABASE $db");
}
$node->safe_psql('postgres', 'CREATE DATABASE app_d');
install('app_d');
ok(wait_for('app_d', q{SELECT count(*) FROM pg_stat_activity
                       WHERE backend_type = 'decide worker' AND datname = 'app_d'}, '1',
            'worker of app_d'), 'a new database gets a worker after others were dropped');

# A schema named decide that another role made, in a database without the
# extension, is not decide to the worker, which runs its SQL as a
# superuser: the owner of a database makes decide.decisions and a
# decide.create_log_partition() that records who calls it, and after the
# launcher's next scan (every 10 s) nobody has.
$node->safe_psql('postgres', q{
    CREATE ROLE mallory LOGIN;
    CREATE DATABASE mallorydb OWNER mallory;
});
$node->safe_psql('mallorydb', q{
    SET ROLE mallory;
    CREATE SCHEMA decide;
    CREATE TABLE decide.decisions (id bigint);
    CREATE TABLE decide.calls (caller text);
    GRANT INSERT ON decide.calls TO PUBLIC;
    CREATE FUNCTION decide.create_log_partition(day date) RETURNS regclass
        LANGUAGE sql AS $$ INSERT INTO decide.calls VALUES (current_user) RETURNING NULL::regclass $$;
});
sleep 15;
is($node->safe_psql('mallorydb', q{
    SELECT (SELECT count(*) FROM decide.calls)
         + (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'mallorydb')}),
   '0', 'no worker acts on a schema decide that the extension did not create');
$node->safe_psql('postgres', 'DROP DATABASE mallorydb');

my $log = slurp_file($node->logfile);
unlike($log, qr/decide.*(ERROR|FATAL|PANIC)|(ERROR|FATAL|PANIC).*decide/, 'no decide errors in the server log');
$node->stop;

# No background worker slot left: counted as not logged, and a WARNING.
my $small = PostgreSQL::Test::Cluster->new('few_workers');
$small->init;
$small->append_conf('postgresql.conf', q{
shared_preload_libraries = 'decide'
decide.flush_interval = '50ms'
max_worker_processes = 2
max_parallel_workers = 0
});
$small->start;
foreach my $db ('one_db', 'two_db')
{
    $small->safe_psql('postgres', "CREATE DATABASE $db");
    $small->safe_psql($db, q{
        SET client_min_messages = warning;
        CREATE EXTENSION decide;
        INSERT INTO decide.policies (name, effect, actor, action, resource)
        VALUES ('readers', 'allow', '*', 'read', '*');
    });
}
# The launcher and one worker take both slots: one database has no worker.
my ($unserved, $stderr_of_unserved);
foreach (1 .. 100)
{
    foreach my $db ('one_db', 'two_db')
    {
        my ($ret, $out, $err) = $small->psql($db,
            q{SELECT count(*) FROM generate_series(1, 10) g, decide('user:' || g, 'read', 'doc:1')});
        if ($err =~ /not logged: no background worker could be started/)
        {
            ($unserved, $stderr_of_unserved) = ($db, $err);
        }
    }
    last if defined $unserved;
    usleep(100_000);
}
ok(defined $unserved, 'a database without a worker is told its decisions are not logged');
like($stderr_of_unserved // '', qr/HINT:\s+Raise max_worker_processes/, 'the WARNING says what to raise');
ok($small->safe_psql($unserved // 'one_db', 'SELECT log_not_logged > 0 FROM decide_stats') eq 't',
   'its decisions are counted as not logged');
like(slurp_file($small->logfile), qr/decide could not start a worker for database \d+: no background worker slot is free/,
     'the launcher says so in the server log');
$small->stop;

done_testing();

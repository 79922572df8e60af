# The background worker: it comes back after SIGTERM and SIGKILL, a clean
# restart loses no logged decision, retention drops old partitions,
# maintenance that fails is retried without a restart, ANALYZE runs in a
# helper while the log is written, hot requests are
# warmed after a policy change, and on a hot standby it runs without writing
# or failing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'decide'
decide.flush_interval = '50ms'
decide.maintenance_interval = '1s'
decide.log_buffer_size = '1MB'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION decide;
    INSERT INTO decide.policies (name, effect, actor, action, resource)
    VALUES ('readers', 'allow', '*', 'read', '*');
});

sub worker_pid
{
    my $n = shift;
    return $n->safe_psql('postgres',
        q{SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'), 0)});
}

sub wait_for
{
    my ($n, $query, $expected, $what) = @_;
    my $got = '';
    foreach (1 .. 300)
    {
        # Connections fail while a crashed cluster restarts: keep trying.
        my ($ret, $out) = $n->psql('postgres', $query);
        $got = $out // '';
        return 1 if $ret == 0 && $got eq $expected;
        usleep(100_000);
    }
    diag("$what: last got '$got', expected '$expected'");
    return 0;
}

ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'}, '1',
            'worker up'), 'the worker runs');
my $first_pid = worker_pid($node);

# Decisions reach the table.
$node->safe_psql('postgres',
    q{SELECT count(*) FROM generate_series(1, 500) g, decide('user:' || g, 'read', 'doc:1')});
$node->safe_psql('postgres', 'SELECT decide_flush()');
is($node->safe_psql('postgres', 'SELECT count(*) FROM decide.decisions'), '500',
   'decide_flush() writes logged decisions');

# SIGTERM: the worker drains and comes back with a new pid.
$node->safe_psql('postgres',
    q{SELECT count(*) FROM generate_series(1, 300) g, decide('user:t' || g, 'read', 'doc:1')});
kill 'TERM', $first_pid;
ok(wait_for($node, qq{SELECT (SELECT pid FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres') NOT IN (0, $first_pid)},
            't', 'restart after SIGTERM'), 'the worker restarts after SIGTERM');
$node->safe_psql('postgres', 'SELECT decide_flush()');
is($node->safe_psql('postgres', 'SELECT count(*) FROM decide.decisions'), '800',
   'nothing logged before the SIGTERM was lost');

# SIGKILL: the postmaster resets the cluster; it recovers and the worker
# comes back.  (What was in the ring may be lost: that is the documented bound.)
my $pid = worker_pid($node);
kill 'KILL', $pid;
ok(wait_for($node, qq{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres' AND pid <> $pid},
            '1', 'worker after SIGKILL'), 'the cluster recovers and a new worker is up after SIGKILL');
is($node->safe_psql('postgres', q{SELECT allowed FROM decide('user:x', 'read', 'doc:1')}), 't',
   'decisions work after the crash restart');

# A clean (fast) shutdown right after deciding loses nothing.
$node->safe_psql('postgres', 'SELECT decide_flush()');
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM decide.decisions');
$node->safe_psql('postgres',
    q{SELECT count(*) FROM generate_series(1, 2000) g, decide('user:r' || g, 'read', 'doc:1')});
$node->restart(mode => 'fast');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'}, '1',
            'worker after restart'), 'worker back after restart');
is($node->safe_psql('postgres', 'SELECT count(*) FROM decide.decisions'), $before + 2000,
   'a clean restart loses no logged decision');

# Retention: a partition whose day is past decide.log_retention goes, with
# its keys and its links of the hash chain.  A log that starts with a link
# of that day (made by hand, so the chain is broken there until it goes),
# and the worker's links after it; once retention drops the day, the
# oldest link kept starts the chain and the log verifies clean.
# Maintenance is held off while the old day is set up.
$node->safe_psql('postgres', q{ALTER SYSTEM SET decide.maintenance_interval = '1h'; SELECT pg_reload_conf()});
sleep 2;    # a maintenance pass under way ends
$node->safe_psql('postgres', q{
    SELECT decide_flush();
    TRUNCATE decide.decision_chunks, decide.decision_keys, decide.log_chain;
    SELECT decide.create_log_partition('2000-01-01');
    INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, reason, epoch, source)
    VALUES ('2000-01-01 12:00+00', 'user:old', 'read', 'doc:1', false, 'deny', 'old', 1, 'miss');
    INSERT INTO decide.log_chain
    VALUES (1, 0, 0, '2000-01-01 12:00+00', '2000-01-01 12:00+00', 0,
            sha256('rows'), sha256('before'), sha256('old link'));
});
$node->safe_psql('postgres', q{
    SELECT count(*) FROM generate_series(1, 20) g, decide('user:chain' || g, 'read', 'doc:1');
    SELECT decide_flush();
});
is($node->safe_psql('postgres', q{
    SELECT string_agg(problem, ', ' ORDER BY problem) FROM decide_verify_log()}),
   'link altered, rows differ, rows not in the chain',
   'the hand-made link and the row written by hand break the chain');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET decide.maintenance_interval; SELECT pg_reload_conf()});
ok(wait_for($node, q{SELECT to_regclass('decide.decision_chunks_20000101') IS NULL}, 't', 'retention'),
   'retention dropped the old partition');
is($node->safe_psql('postgres', q{SELECT to_regclass('decide.decision_keys_20000101') IS NULL}), 't',
   'and the keys of that day');
is($node->safe_psql('postgres', q{SELECT count(*) FROM decide.log_chain WHERE last_at < '2000-01-02'}), '0',
   'and its links');
is($node->safe_psql('postgres', q{SELECT count(*) FROM decide_verify_log()}), '0',
   'the chain verifies from the oldest link kept');

# The change history is kept (decide.changes_retention = 0) until a
# retention is set; then rows older than it go, newer ones stay.
$node->safe_psql('postgres', q{
    INSERT INTO decide.entities (uid) VALUES ('user:history-old');
    INSERT INTO decide.entities (uid) VALUES ('user:history-new');
    UPDATE decide.changes SET changed_at = now() - interval '3 days'
     WHERE epoch <= (SELECT epoch FROM decide.changes WHERE key = 'user:history-old');
});
sleep 2;    # two maintenance passes
is($node->safe_psql('postgres', q{SELECT count(*) FROM decide.changes WHERE key LIKE 'user:history-%'}), '2',
   'the change history is kept by default');
$node->safe_psql('postgres', q{ALTER SYSTEM SET decide.changes_retention = '1d'; SELECT pg_reload_conf()});
ok(wait_for($node, q{SELECT count(*) FROM decide.changes WHERE key = 'user:history-old'}, '0',
            'history retention'),
   'decide.changes_retention deletes older rows');
is($node->safe_psql('postgres', q{
    SELECT min(epoch) - 1 = (SELECT epoch FROM decide.changes WHERE key = 'user:history-new') - 1
      FROM decide.changes}), 't', 'whole epochs: the oldest kept is the newer row\'s');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM decide_entities_at((SELECT epoch - 1 FROM decide.changes
                                              WHERE key = 'user:history-new'))
     WHERE uid IN ('user:history-old', 'user:history-new')}), '1',
   'the epoch before the oldest kept is rebuilt: the older row, not yet the newer');
my ($rc, $out, $err) = $node->psql('postgres', q{
    SELECT count(*) FROM decide_entities_at((SELECT epoch - 2 FROM decide.changes
                                              WHERE key = 'user:history-new'))});
like($err, qr/is not in the change history/, 'an older epoch is refused');
is($node->safe_psql('postgres', q{SELECT count(*) FROM decide.changes WHERE key = 'user:history-new'}), '1',
   'and keeps newer ones');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET decide.changes_retention; SELECT pg_reload_conf()});
ok(wait_for($node, q{SELECT count(*) >= 3 FROM pg_inherits WHERE inhparent = 'decide.decision_chunks'::regclass},
            't', 'premade partitions'), 'partitions for the coming days exist');

# Maintenance that cannot get a lock within the worker's lock_timeout (a
# session holds the change history locked while retention wants to delete
# from it) is reported and tried again next interval; the worker stays up
# and goes on writing the log.
$node->safe_psql('postgres', q{ALTER SYSTEM SET decide.changes_retention = '1d'; SELECT pg_reload_conf()});
my $maintenance_pid = worker_pid($node);
my $lock_log_offset = -s $node->logfile;
my ($locker_out, $locker_err) = ('', '');
my $locker = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
                              q{BEGIN; LOCK TABLE decide.changes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;}],
                             '>', \$locker_out, '2>', \$locker_err);
my $timed_out = 0;
foreach (1 .. 100)
{
    $timed_out = slurp_file($node->logfile, $lock_log_offset)
        =~ /\[$maintenance_pid\] ERROR:  canceling statement due to lock timeout/;
    last if $timed_out;
    usleep(100_000);
}
ok($timed_out, 'the worker reported the lock it could not get');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM generate_series(1, 100) g, decide('user:locked' || g, 'read', 'doc:1');
    SELECT decide_flush();
    SELECT count(*) FROM decide.decisions WHERE actor LIKE 'user:locked%'}), "100\n\n100",
   'decisions logged while maintenance fails are written');
$locker->finish;
is(worker_pid($node), $maintenance_pid, 'the failing maintenance did not restart the worker');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET decide.changes_retention; SELECT pg_reload_conf()});

# ANALYZE runs in a helper of its own ("decide analyze"), which the worker
# starts when one is due (here: after 60,000 logged rows, and 1,500 new
# entities; maintenance every second); the worker goes on writing the log
# while the helper works.  The helper is held in the middle of its ANALYZE
# of decide.entities by an index expression that, in that process only,
# waits for an advisory lock a session holds: a wait in pg_sleep(), where
# it holds no buffer or lightweight lock (stopping it with SIGSTOP could
# leave a buffer's I/O in progress for everyone else).
$node->safe_psql('postgres', q{
    ALTER TABLE decide.entities SET (autovacuum_enabled = off);
    CREATE FUNCTION public.held_in_analyze(decide.uid) RETURNS int
        LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM pg_stat_activity
                   WHERE pid = pg_backend_pid() AND backend_type = 'decide analyze') THEN
            WHILE NOT pg_try_advisory_lock_shared(4242) LOOP
                PERFORM pg_sleep(0.01);
            END LOOP;
            PERFORM pg_advisory_unlock_shared(4242);
        END IF;
        RETURN 0;
    END $$;
    CREATE INDEX entities_held_in_analyze ON decide.entities (public.held_in_analyze(uid));
});
my ($holder_out, $holder_err) = ('', '');
my $holder = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres') . ' application_name=holder', '-c',
                              q{SELECT pg_advisory_lock(4242); SELECT pg_sleep(120);}],
                             '>', \$holder_out, '2>', \$holder_err);
ok(wait_for($node, q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted}, '1',
            'advisory lock held'), 'a session holds the lock the helper will wait for');
# In slices the 1 MB ring holds: none is dropped.
$node->safe_psql('postgres', q{
    DO $$ BEGIN
        FOR s IN 1 .. 60 LOOP
            PERFORM decide('user:bulk' || g % 500, 'read', 'doc:1') FROM generate_series(1, 1000) g;
            PERFORM decide_flush();
        END LOOP;
    END $$;
    INSERT INTO decide.entities (uid) SELECT ('test:held' || g)::decide.uid FROM generate_series(1, 1500) g;
});
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide analyze' AND wait_event = 'PgSleep'},
            '1', 'helper held'), 'a helper process runs the ANALYZE that came due');
my $writer_pid = worker_pid($node);
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM generate_series(1, 100) g, decide('user:analyzing' || g, 'read', 'doc:1');
    SELECT decide_flush();
    SELECT count(*) FROM decide.decisions WHERE actor LIKE 'user:analyzing%'}), "100\n\n100",
   'decisions logged while the helper is held mid-ANALYZE are written');
is(worker_pid($node), $writer_pid, 'by the same worker');
# A worker that exits stops its helper (here: SIGTERM; DROP DATABASE does
# the same), and the next worker asks again for what was not analyzed.
kill 'TERM', $writer_pid;
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide analyze'}, '0',
            'helper stopped'), 'a worker that exits stops its helper');
ok(wait_for($node, qq{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide worker' AND pid <> $writer_pid},
            '1', 'worker back'), 'the worker comes back');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide analyze' AND wait_event = 'PgSleep'},
            '1', 'helper again'), 'its new helper takes up the ANALYZE that was not done');
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder'});
$holder->finish;
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'decide analyze'}, '0', 'helper done'),
   'the helper finishes once the lock is free');
ok(wait_for($node, q{
    SELECT (SELECT count(*) > 0 FROM pg_stats WHERE schemaname = 'decide' AND tablename = 'decision_chunks' AND inherited)
       AND (SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relid = 'decide.entities'::regclass)},
            't', 'statistics'), 'it analyzed the partitioned log and the entities');
# (A helper still held, had a check above failed, would keep DROP INDEX waiting.)
$node->safe_psql('postgres', q{
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'decide analyze';
    DROP INDEX decide.entities_held_in_analyze;
    DROP FUNCTION public.held_in_analyze(decide.uid);
    ALTER TABLE decide.entities RESET (autovacuum_enabled);
});

# Warming: hot requests are recomputed under the new epoch by the worker,
# so a new backend finds them in the shared cache right after the change.
$node->safe_psql('postgres', q{
    SELECT count(*) FROM generate_series(1, 400) g, decide('user:hot' || (g % 5), 'read', 'doc:hot')});
$node->safe_psql('postgres', q{UPDATE decide.policies SET priority = 1});
my $epoch = $node->safe_psql('postgres', 'SELECT decide_epoch()');
ok(wait_for($node, q{SELECT warmed >= 5 FROM decide_stats}, 't', 'warming'), 'the worker warmed hot requests');
is($node->safe_psql('postgres', q{
    SELECT string_agg(source || ':' || epoch, ',') FROM generate_series(0, 4) g,
           decide('user:hot' || g, 'read', 'doc:hot')}),
   join(',', map { "l2:$epoch" } 0 .. 4),
   'after a policy change the hot requests are shared-cache hits under the new epoch');

# A cached request that no longer decides after a change (its entity
# grows past the ancestor limit: callers get an error) is skipped by the
# warming, with its error in the server log; the worker stays up and warms
# the others.
$node->safe_psql('postgres', q{
    INSERT INTO decide.entities (uid, parents)
    SELECT 'wide:' || g, (SELECT array_agg('wide:' || g || ':' || p) FROM generate_series(1, 64) p)
      FROM generate_series(1, 15) g;
    INSERT INTO decide.entities (uid, parents)
    SELECT 'wide:all', array_agg('wide:' || g) FROM generate_series(1, 15) g;
    INSERT INTO decide.entities (uid, parents) VALUES ('wide:child', '{wide:all}');
});
$node->safe_psql('postgres', q{
    SELECT count(*) FROM generate_series(1, 200) g, decide('user:hot' || (g % 5), 'read', 'doc:hot');
    SELECT count(*) FROM generate_series(1, 50) g, decide('wide:child', 'read', 'doc:hot');
});
my $log_offset = -s $node->logfile;
my $warm_pid = worker_pid($node);
my $warmed_before = $node->safe_psql('postgres', 'SELECT warmed FROM decide_stats');
$node->safe_psql('postgres', q{
    UPDATE decide.entities
       SET parents = parents || ARRAY(SELECT 'extra:' || g FROM generate_series(1, 48) g)
     WHERE uid = 'wide:all'});
my $ret;
($ret, $out, $err) = $node->psql('postgres', q{SELECT decide('wide:child', 'read', 'doc:hot')});
like($err, qr/has more than 1023 ancestors/, 'the request no longer decides');
ok(wait_for($node, qq{SELECT warmed >= $warmed_before + 5 FROM decide_stats}, 't', 'warming past a failing request'),
   'the worker warmed the other hot requests');
is(worker_pid($node), $warm_pid, 'the worker was not restarted by the failing request');
like(slurp_file($node->logfile, $log_offset),
     qr/\[$warm_pid\] ERROR:  entity "wide:child" has more than 1023 ancestors/,
     'the worker logged the failing request');

# While the worker is busy (here: stopped), appenders that find the ring's
# hot area (a quarter of the 1 MB ring) full move its records into staging
# themselves: 100 decisions with 4 kB contexts fill the hot area but not
# the ring, and none is dropped.
my $dropped_before = $node->safe_psql('postgres', 'SELECT log_dropped FROM decide_stats');
my $busy_pid = worker_pid($node);
kill 'STOP', $busy_pid;
$node->safe_psql('postgres', q{
    SET decide.log_context = on;
    SELECT count(*) FROM generate_series(1, 100) g,
           decide('user:busy' || g, 'read', 'doc:1', jsonb_build_object('pad', repeat('x', 4000)))});
kill 'CONT', $busy_pid;
$node->safe_psql('postgres', 'SELECT decide_flush()');
is($node->safe_psql('postgres', q{
    SELECT count(DISTINCT actor) FROM decide.decisions WHERE actor LIKE 'user:busy%'}),
   '100', 'decisions appended while the worker was stopped all reach the table');
is($node->safe_psql('postgres', 'SELECT log_dropped FROM decide_stats'), $dropped_before,
   'none was dropped: the appenders moved the hot area into staging');
is(worker_pid($node), $busy_pid, 'the same worker wrote them');

# A ring filling past half wakes the worker before decide.flush_interval:
# with the interval at a minute, 1 MB ring, decisions with 4 kB contexts
# reach the table without decide_flush().
$node->safe_psql('postgres', q{ALTER SYSTEM SET decide.flush_interval = '1min'; SELECT pg_reload_conf()});
sleep 1;    # the worker takes the new interval after its current wait
my $half_before = $node->safe_psql('postgres', 'SELECT log_flushed FROM decide_stats');
$node->safe_psql('postgres', q{
    SET decide.log_context = on;
    SELECT count(*) FROM generate_series(1, 150) g,
           decide('user:half' || g, 'read', 'doc:1', jsonb_build_object('pad', repeat('x', 4000)))});
ok(wait_for($node, qq{SELECT log_flushed >= $half_before + 120 FROM decide_stats}, 't', 'half-full wake'),
   'a ring past half full is flushed before the interval');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET decide.flush_interval; SELECT pg_reload_conf()});

# A full ring drops records (never blocking the caller), counts them, and
# the worker says so in the server log, once.
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
    SET decide.log_context = on;
    SELECT count(*) FROM generate_series(1, 3000) g,
           decide('user:flood' || g, 'read', 'doc:1', jsonb_build_object('pad', repeat('x', 7000)))});
ok(wait_for($node, q{SELECT log_dropped > 0 FROM decide_stats}, 't', 'drops'),
   'a full ring drops records and counts them');
ok(wait_for($node, q{SELECT log_pending_bytes = 0 FROM decide_stats}, 't', 'drained'), 'the ring drains');
my $warned = 0;
foreach (1 .. 50)
{
    my $log = slurp_file($node->logfile, $log_offset);
    $warned = () = $log =~ /WARNING:  decide dropped \d+ decisions from the log/g;
    last if $warned;
    usleep(100_000);
}
is($warned, 1, 'one WARNING in the server log about the drops');

# Hot standby: the worker runs, writes nothing, and decisions work.
$node->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'backup', has_streaming => 1);
$standby->start;
ok(wait_for($standby, q{SELECT worker_on_standby FROM decide_stats}, 't', 'standby worker'),
   'the worker on the standby knows it is on a standby');
is($standby->safe_psql('postgres', q{SELECT allowed FROM decide('user:s', 'read', 'doc:1')}), 't',
   'decisions work on the standby');
ok(wait_for($standby, q{SELECT log_not_logged > 0 AND worker_pid IS NOT NULL FROM decide_stats}, 't', 'standby stats'),
   'standby decisions are counted as not logged; the worker stays up');
($ret, $out, $err) = $standby->psql('postgres', 'SELECT decide_flush()');
like($err, qr/not on a standby/, 'decide_flush() on a standby says the log is written on the primary');
usleep(1_000_000);
my $log = slurp_file($standby->logfile);
unlike($log, qr/decide worker.*(ERROR|FATAL)|(ERROR|FATAL).*decide/, 'no worker errors in the standby log');

$standby->stop;
$node->stop;
done_testing();

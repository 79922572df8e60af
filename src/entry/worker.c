/*
 * worker.c — a database's decide worker: its loop.
 *
 * The launcher (launcher.c) starts one per database that has the
 * extension, connected to it.  A worker that finds no decide there exits at
 * once and says so; one that finds it gone later (DROP EXTENSION) gives its
 * log ring back and exits.  Each turn of the loop (every
 * decide.flush_interval, or at once when woken):
 *   1. writes its database's decision log ring into the log (decide.decision_chunks)
 *      (worker_flush.c), or on a hot standby with Redis forwards it to the
 *      standby's stream (worker_standby.c) — the local log always goes first;
 *   2. on the primary with Redis, writes what standbys forwarded, within a
 *      time budget, skipping and counting malformed entries;
 *   3. reports dropped and malformed log records, at most once a minute;
 *   4. warms: recomputes the hottest requests under a new epoch, in slices
 *      of at most WARM_SLICE_MS (worker_warm.c), each request time-limited,
 *      so that warming never holds the log back for long;
 *   5. every decide.maintenance_interval, when not warming: partitions,
 *      retention, and an ANALYZE helper started when one is due
 *      (worker_maintain.c).
 * Everything a turn allocates goes into a memory context reset at the top
 * of the next turn.
 *
 * SIGTERM (shutdown, pg_terminate_backend, or DDL on its database) drains
 * the ring before the worker exits; the launcher starts it again unless
 * the server is shutting down or its database is kept away or gone.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "commands/dbcommands.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "entity_images.h"
#include "policy_set.h"
#include "redis_client.h"
#include "stats.h"
#include "worker_common.h"
#include "worker_flush.h"
#include "worker_maintain.h"
#include "worker_standby.h"
#include "worker_warm.h"
#include "worker_registry.h"

#define DROP_WARNING_INTERVAL_MS (60 * 1000)
#define RECEIVE_BUDGET_MS 100		/* standbys' entries written per turn, at most */
#define SHUTDOWN_DRAIN_MS 5000
#define EXTENSION_CHECK_MS 1000

PGDLLEXPORT void decide_worker_main(Datum arg);

static void run_turn(char *buf, bool *warming_pending, TimestampTz *last_flush,
					 TimestampTz *last_maintenance, TimestampTz *last_drop_warning);
static long ms_until_flush(TimestampTz last_flush);
static void write_log(char *buf, bool standby, const pg_uuid_t *store_id, uint64 target);
static void drain_at_shutdown(char *buf);
static void report_drops(TimestampTz *last_warning);
static void on_worker_exit(int code, Datum arg);

static bool flush_in_progress = false;

/* This database's name, for the server log. */
static char *database_name = NULL;

static void
check_decide_installed(void *arg)
{
	*(bool *) arg = worker_extension_installed();
	if (database_name == NULL)
		database_name = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
}

/* Is decide installed in this database (a transaction of its own)? */
static bool
decide_installed(void)
{
	bool		installed;

	worker_in_transaction(check_decide_installed, &installed);
	return installed;
}

/* No decide here (any longer): the ring goes back, the launcher is told. */
static void
exit_without_decide(void)
{
	audit_log_release(MyDatabaseId);
	worker_registry_detach(MyDatabaseId, true);
	proc_exit(0);
}

void
decide_worker_main(Datum arg)
{
	char	   *buf;
	MemoryContext turn_context;
	TimestampTz last_flush = 0;
	TimestampTz last_maintenance = 0;
	TimestampTz last_drop_warning = 0;
	TimestampTz last_extension_check;
	bool		warming_pending = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
	pgstat_report_appname("decide worker");

	/* A flush that times out behind DDL exits, and the worker is restarted. */
	worker_pin_session();

	/* One worker per database: another may have been started meanwhile. */
	if (!worker_registry_attach(MyDatabaseId, MyLatch))
		proc_exit(0);
	before_shmem_exit(on_worker_exit, (Datum) 0);
	if (!decide_installed())
		exit_without_decide();
	last_extension_check = GetCurrentTimestamp();
	(void) audit_log_attach_worker(MyDatabaseId);
	warm_init();
	entity_images_may_build = false;
	buf = MemoryContextAlloc(TopMemoryContext, FLUSH_BUFFER_BYTES);
	turn_context = AllocSetContextCreate(TopMemoryContext, "decide worker turn",
										 ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errmsg("decide worker started for database \"%s\"", database_name)));

	while (!ShutdownRequestPending)
	{
		/*
		 * Until the next flush is due; woken sooner by appenders (to move
		 * their records into staging) or decide_flush().  While warming is
		 * under way, only a glance at the latch.
		 */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 warming_pending ? 0 : ms_until_flush(last_flush), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		/* Emptied first, so that what the last turn left is gone before
		 * interrupts (a memory-context dump among them) are serviced. */
		MemoryContextReset(turn_context);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(turn_context);
		if (TimestampDifferenceExceeds(last_extension_check, GetCurrentTimestamp(),
									   EXTENSION_CHECK_MS))
		{
			if (!decide_installed())
				exit_without_decide();
			last_extension_check = GetCurrentTimestamp();
		}
		run_turn(buf, &warming_pending, &last_flush, &last_maintenance, &last_drop_warning);
		MemoryContextSwitchTo(TopMemoryContext);
	}

	MemoryContextReset(turn_context);
	MemoryContextSwitchTo(turn_context);
	/* Its locks would hold up the DDL that may have asked the worker to go. */
	maintain_stop_analyze();
	drain_at_shutdown(buf);
	proc_exit(1);
}

static long
ms_until_flush(TimestampTz last_flush)
{
	long		since_ms = (long) ((GetCurrentTimestamp() - last_flush) / 1000);

	return Max(0, decide_flush_interval_ms - since_ms);
}

static void
run_turn(char *buf, bool *warming_pending, TimestampTz *last_flush,
		 TimestampTz *last_maintenance, TimestampTz *last_drop_warning)
{
	bool		standby = RecoveryInProgress();
	pg_uuid_t	store_id;
	bool		have_store = false;
	uint64		staged;

	stats_gauge_set(GAUGE_WORKER_ON_STANDBY, standby ? 1 : 0);
	/*
	 * Room in the hot area first, then the ring is written if it is time,
	 * or it is half full, or decide_flush() asked: what the move brought
	 * into staging goes with it.
	 */
	staged = audit_log_move();
	if (audit_log_flush_wanted() || ms_until_flush(*last_flush) <= 0)
	{
		*last_flush = GetCurrentTimestamp();
		if (redis_client_configured())
			have_store = worker_store_id(&store_id);
		write_log(buf, standby, have_store ? &store_id : NULL, staged);
	}
	report_drops(last_drop_warning);
	standby_report_garbage();

	/*
	 * Warming after a policy change comes before maintenance: callers miss
	 * until it is done, while partitions, retention and ANALYZE (which can
	 * take a second on a large log) lose nothing by waiting for a turn
	 * without warming to do.
	 */
	*warming_pending = false;
	if (decide_warm)
		warm_slice(warming_pending);
	if (!standby && !*warming_pending)
	{
		if (TimestampDifferenceExceeds(*last_maintenance, GetCurrentTimestamp(),
									   decide_maintenance_interval_s * 1000))
		{
			maintain();
			*last_maintenance = GetCurrentTimestamp();
		}
		if (decide_warm)
			warm_plan_from_log();
	}
	stats_flush();
}

/*
 * Writes the ring up to target (what it held when this turn began, not
 * what arrives while it is written: each batch writes rows of
 * decide.decision_keys for the keys it holds, so chasing the newest
 * records with ever smaller batches costs more): into the table on a
 * primary (then the standbys' decisions from Redis), into Redis on a
 * standby.
 */
static void
write_log(char *buf, bool standby, const pg_uuid_t *store_id, uint64 target)
{
	if (standby)
	{
		if (store_id)
			while (audit_log_consumed() < target && standby_forward_once(buf, store_id))
				CHECK_FOR_INTERRUPTS();
		return;
	}
	/* If it fails, the worker exits and restarts; the records stay in the ring. */
	flush_in_progress = true;
	while (audit_log_consumed() < target && log_flush_once(buf))
		CHECK_FOR_INTERRUPTS();
	flush_in_progress = false;
	if (store_id)
		standby_receive(store_id,
						TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RECEIVE_BUDGET_MS));
}

/*
 * Shutdown or termination: drain what backends appended, including what
 * they append while exiting, until the ring stays empty a moment: into the
 * table on a primary, into Redis on a standby.
 */
static void
drain_at_shutdown(char *buf)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SHUTDOWN_DRAIN_MS);

	if (RecoveryInProgress())
	{
		pg_uuid_t	store_id;

		if (redis_client_configured() && worker_store_id(&store_id))
			while (standby_forward_once(buf, &store_id) && GetCurrentTimestamp() < deadline)
				;
		return;
	}
	{
		int			quiet_rounds = 0;

		while (quiet_rounds < 5 && GetCurrentTimestamp() < deadline)
		{
			if (log_flush_once(buf))
				quiet_rounds = 0;
			else
			{
				quiet_rounds++;
				pg_usleep(20 * 1000L);
			}
		}
	}
}

static void
report_drops(TimestampTz *last_warning)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		dropped;

	if (!TimestampDifferenceExceeds(*last_warning, now, DROP_WARNING_INTERVAL_MS))
		return;
	dropped = audit_log_take_unreported_drops();
	if (dropped == 0)
		return;
	ereport(WARNING,
			(errmsg("decide dropped " UINT64_FORMAT " decisions from the log: the ring was full",
					dropped),
			 errhint("Raise decide.log_buffer_size, lower decide.flush_interval, or log less "
					 "(decide.log, decide.log_allow_sample_rate).")));
	*last_warning = now;
}

static void
on_worker_exit(int code, Datum arg)
{
	if (flush_in_progress)
		stats_count(STAT_LOG_FLUSH_ERRORS, 1);
	maintain_stop_analyze();
	worker_registry_detach(MyDatabaseId, false);
}

/*
 * worker_maintain.c — the worker's maintenance, every
 * decide.maintenance_interval on the primary: creates the next days'
 * partitions of decide.decisions, drops those older than
 * decide.log_retention, deletes the change history older than
 * decide.changes_retention, and has decide's tables analyzed when they
 * changed a lot (autovacuum never analyzes a partitioned parent).
 *
 * ANALYZE runs in a process of its own, "decide analyze", a dynamic
 * background worker the database's worker starts when one is due and no
 * other is running: ANALYZE of a partitioned log samples every partition,
 * seconds on a large log and a busy server, and a worker that ran it
 * itself would write nothing meanwhile while the callers filled its ring.
 * When no background worker slot is free, or the helper fails (a lock not
 * granted within its lock_timeout), the ANALYZE is asked again at a later
 * interval.  The worker stops its helper when it exits (DROP DATABASE
 * stops the worker); DROP EXTENSION waits for an ANALYZE under way.
 *
 * A failure here (a lock not granted within the worker's lock_timeout,
 * say) is reported and tried again next interval: it must not restart the
 * worker, whose first job is the log.
 */
#include "postgres.h"

#include "catalog/pg_class.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "change_history.h"
#include "worker_common.h"
#include "worker_flush.h"
#include "worker_maintain.h"
#include "worker_registry.h"

/*
 * The log's parents are analyzed, as autovacuum analyzes a table, after
 * 50,000 decisions plus a tenth of what they hold (their rows, chunks from
 * 0.7.0 on, times the decisions a chunk holds): ANALYZE of a partitioned
 * table samples every partition, a second or more on a large log, so a
 * fixed count would cost a growing share of the server's time per logged
 * row.
 */
#define ANALYZE_AFTER_ROWS 50000
#define ANALYZE_AFTER_FRACTION 0.1

/* What a helper analyzes: its bgw_extra holds these bits. */
#define ANALYZE_LOG			0x01	/* the log's tables */
#define ANALYZE_POLICIES	0x02
#define ANALYZE_ENTITIES	0x04

/* "Could not start" is said at most this often. */
#define NO_SLOT_REPORT_MS (10 * 60 * 1000)

PGDLLEXPORT void decide_analyze_main(Datum arg);

static BackgroundWorkerHandle *analyze_helper = NULL;

/* log_rows_since_analyze when the running helper was asked to analyze the log; 0: not asked. */
static int64 log_rows_when_asked = 0;
static TimestampTz no_slot_reported_at = 0;

/* Is this worker's helper still starting or running? */
static bool
analyze_helper_running(void)
{
	pid_t		pid;

	if (analyze_helper == NULL)
		return false;
	if (GetBackgroundWorkerPid(analyze_helper, &pid) == BGWH_STOPPED)
	{
		pfree(analyze_helper);
		analyze_helper = NULL;
		return false;
	}
	return true;
}

static bool
start_analyze_helper(uint8 tables)
{
	BackgroundWorker helper;
	MemoryContext caller = MemoryContextSwitchTo(TopMemoryContext);
	bool		started;

	memset(&helper, 0, sizeof(helper));
	helper.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	helper.bgw_start_time = BgWorkerStart_RecoveryFinished;
	helper.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(helper.bgw_library_name, BGW_MAXLEN, "decide");
	snprintf(helper.bgw_function_name, BGW_MAXLEN, "decide_analyze_main");
	snprintf(helper.bgw_name, BGW_MAXLEN, "decide analyze for database %u", MyDatabaseId);
	snprintf(helper.bgw_type, BGW_MAXLEN, "decide analyze");
	helper.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	helper.bgw_extra[0] = (char) tables;
	started = RegisterDynamicBackgroundWorker(&helper, &analyze_helper);
	if (!started)
		analyze_helper = NULL;
	MemoryContextSwitchTo(caller);
	if (!started && TimestampDifferenceExceeds(no_slot_reported_at, GetCurrentTimestamp(),
											   NO_SLOT_REPORT_MS))
	{
		ereport(LOG,
				(errmsg("decide could not start an ANALYZE of its tables: no background worker slot is free"),
				 errdetail("It is tried again every decide.maintenance_interval."),
				 errhint("Raise max_worker_processes (a restart).")));
		no_slot_reported_at = GetCurrentTimestamp();
	}
	return started;
}

void
maintain_stop_analyze(void)
{
	if (analyze_helper != NULL)
		TerminateBackgroundWorker(analyze_helper);
}

/* The rows the log's partitions held when last counted (ANALYZE, VACUUM). */
static double
log_rows_counted(void)
{
	bool		isnull;
	Datum		rows;

	if (SPI_execute(psprintf("SELECT pg_catalog.sum(GREATEST(c.reltuples, 0))::float8"
							 " FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
							 " WHERE i.inhparent = 'decide.%s'::regclass", log_partitioned_table()),
					true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		return 0;
	rows = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetFloat8(rows);
}

static void
maintain_in_transaction(void *arg)
{
	uint8	   *to_analyze = (uint8 *) arg;
	int32		today = log_day_of(GetCurrentTimestamp());
	int32		oldest_kept = log_day_of(GetCurrentTimestamp() -
									 (TimestampTz) decide_log_retention_min * USECS_PER_MINUTE);
	uint64		i;
	int32		day;

	if (!worker_extension_installed())
		return;
	for (day = today; day <= today + 2; day++)
		log_ensure_partition(day);

	/* Partitions whose whole day is older than the retention. */
	if (SPI_execute(psprintf("SELECT c.relname::text FROM pg_catalog.pg_inherits i"
							 " JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
							 " WHERE i.inhparent = 'decide.%s'::regclass"
							 " AND c.relname ~ '^%s_[0-9]{8}$'",
							 log_partitioned_table(), log_partitioned_table()),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the partitions of the decision log");
	{
		uint64		n = SPI_processed;
		char	  **names = palloc(sizeof(char *) * (n + 1));

		/* Copy the names first: each DROP replaces SPI_tuptable. */
		for (i = 0; i < n; i++)
			names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		for (i = 0; i < n; i++)
		{
			int			year,
						month,
						mday;

			if (sscanf(names[i] + strlen(names[i]) - 8, "%4d%2d%2d", &year, &month, &mday) != 3)
				continue;
			day = date2j(year, month, mday) - POSTGRES_EPOCH_JDATE;
			if (day >= oldest_kept)
				continue;
			/* The day's keys go with its rows (a 0.6.0 schema has none). */
			SPI_execute(psprintf("DROP TABLE IF EXISTS decide.%s, decide.decision_keys_%04d%02d%02d",
								 quote_identifier(names[i]), year, month, mday),
						false, 0);
			/* And its links: the oldest kept then starts the chain. */
			if (worker_decide_table_exists("log_chain"))
				SPI_execute(psprintf("DELETE FROM decide.log_chain WHERE last_at < "
									 "'%04d-%02d-%02d 00:00:00+00'::timestamptz + interval '1 day'",
									 year, month, mday), false, 0);
			log_forget_partitions();
			ereport(LOG, (errmsg("decide dropped partition decide.%s (older than decide.log_retention)",
								 names[i])));
		}
	}

	/*
	 * The change history past decide.changes_retention (0: kept), whole
	 * epochs at a time: the epochs before the oldest with a change within
	 * the retention, so that every epoch from the one before the oldest
	 * kept can still be rebuilt.
	 */
	if (decide_changes_retention_min > 0 &&
		worker_decide_table_exists("changes"))
		SPI_execute(psprintf("DELETE FROM decide.changes WHERE epoch < coalesce("
							 "(SELECT min(epoch) FROM decide.changes"
							 "  WHERE changed_at >= now() - interval '%d minutes'),"
							 " (SELECT epoch + 1 FROM decide.epoch))",
							 decide_changes_retention_min), false, 0);
	/* The links of the deleted epochs: the oldest kept then starts the chain. */
	if (decide_changes_retention_min > 0 &&
		worker_decide_table_exists("changes_chain"))
		SPI_execute("DELETE FROM decide.changes_chain WHERE last_id < "
					"coalesce((SELECT min(id) FROM decide.changes), 9223372036854775807)", false, 0);

	if (log_rows_since_analyze >= ANALYZE_AFTER_ROWS +
		ANALYZE_AFTER_FRACTION * log_rows_counted() * log_decisions_per_row())
		*to_analyze |= ANALYZE_LOG;
	/* Policies and entities: when a tenth of their rows changed. */
	if (SPI_execute("SELECT relname::text FROM pg_catalog.pg_stat_user_tables"
					" WHERE schemaname = 'decide' AND relname IN ('policies', 'entities')"
					" AND n_mod_since_analyze > 1000 + n_live_tup / 10", true, 0) == SPI_OK_SELECT)
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			*to_analyze |= strcmp(name, "policies") == 0 ? ANALYZE_POLICIES : ANALYZE_ENTITIES;
		}
}

/*
 * Runs fn in a transaction of its own; an error is reported and the
 * transaction rolled back.  False then.
 */
static bool
in_transaction_reporting_errors(void (*fn) (void *), void *arg)
{
	MemoryContext context = CurrentMemoryContext;
	volatile bool done = true;

	PG_TRY();
	{
		worker_in_transaction(fn, arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(context);
		done = false;
	}
	PG_END_TRY();
	return done;
}

/*
 * Once the helper asked to analyze the log is done: if it did, the rows
 * written since it was asked are what counts toward the next ANALYZE; if
 * it failed (a lock not granted, DROP EXTENSION meanwhile), the count
 * stands and it is asked again.
 */
static void
note_helper_done(void)
{
	if (analyze_helper_running())
		return;
	if (worker_registry_take_log_analyzed(MyDatabaseId))
		log_rows_since_analyze -= log_rows_when_asked;
	log_rows_when_asked = 0;
}

void
maintain(void)
{
	uint8		to_analyze = 0;

	note_helper_done();
	if (!in_transaction_reporting_errors(maintain_in_transaction, &to_analyze))
	{
		/* The partitions it created went with the transaction. */
		log_forget_partitions();
		return;
	}
	/* One helper at a time: what it analyzes is asked again when it is done. */
	if (to_analyze != 0 && !analyze_helper_running() && start_analyze_helper(to_analyze) &&
		(to_analyze & ANALYZE_LOG))
		log_rows_when_asked = log_rows_since_analyze;
}

/* ---- the helper ---- */

/* ANALYZE of one table, when decide is (still) installed. */
static void
analyze_in_transaction(void *arg)
{
	const char *table = arg;
	Oid			relation = worker_decide_relation(table);

	/* Only tables: decide.decisions is a view from 0.7.0 on. */
	if (!OidIsValid(relation) ||
		(get_rel_relkind(relation) != RELKIND_RELATION &&
		 get_rel_relkind(relation) != RELKIND_PARTITIONED_TABLE))
		return;
	/* A lock not granted within lock_timeout fails it: asked again later. */
	SPI_execute(psprintf("ANALYZE decide.%s", table), false, 0);
}

void
decide_analyze_main(Datum arg)
{
	uint8		tables = (uint8) MyBgworkerEntry->bgw_extra[0];

	/* Stopped at the next interrupt check, as a backend is. */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
	pgstat_report_appname("decide analyze");
	worker_pin_session();

	/*
	 * Each table in a transaction of its own, so that its locks go when it
	 * is done; one that fails does not keep the others from their turn.
	 */
	if ((tables & ANALYZE_LOG) &&
		in_transaction_reporting_errors(analyze_in_transaction, "decision_chunks") &&
		in_transaction_reporting_errors(analyze_in_transaction, "decisions") &&
		in_transaction_reporting_errors(analyze_in_transaction, "decision_keys"))
		worker_registry_note_log_analyzed(MyDatabaseId);
	if (tables & ANALYZE_POLICIES)
		(void) in_transaction_reporting_errors(analyze_in_transaction, "policies");
	if (tables & ANALYZE_ENTITIES)
		(void) in_transaction_reporting_errors(analyze_in_transaction, "entities");
	proc_exit(0);
}

/*
 * worker_maintain.c — the worker's maintenance, every
 * decide.maintenance_interval on the primary: creates the next days'
 * partitions of decide.decisions, drops those older than
 * decide.log_retention, deletes the change history older than
 * decide.changes_retention, and runs ANALYZE on decide's tables when they
 * changed a lot (autovacuum never analyzes a partitioned parent).
 *
 * A failure here (a lock not granted within the worker's lock_timeout,
 * say) is reported and tried again next interval: it must not restart the
 * worker, whose first job is the log.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "change_history.h"
#include "worker_common.h"
#include "worker_flush.h"
#include "worker_maintain.h"

/*
 * The log's parents are analyzed, as autovacuum analyzes a table, after
 * 50,000 rows plus a tenth of what they held when last analyzed: ANALYZE
 * of a partitioned table samples every partition, a second or more on a
 * large log, so a fixed count would cost a growing share of the worker's
 * time per logged row.
 */
#define ANALYZE_AFTER_ROWS 50000
#define ANALYZE_AFTER_FRACTION 0.1

static double log_rows_at_analyze = 0;

static void
maintain_in_transaction(void *arg)
{
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
	if (SPI_execute("SELECT c.relname::text FROM pg_catalog.pg_inherits i"
					" JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
					" WHERE i.inhparent = 'decide.decisions'::regclass"
					" AND c.relname ~ '^decisions_[0-9]{8}$'", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the partitions of decide.decisions");
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

			if (sscanf(names[i], "decisions_%4d%2d%2d", &year, &month, &mday) != 3)
				continue;
			day = date2j(year, month, mday) - POSTGRES_EPOCH_JDATE;
			if (day >= oldest_kept)
				continue;
			/* The day's keys go with its rows (a 0.6.0 schema has none). */
			SPI_execute(psprintf("DROP TABLE IF EXISTS decide.%s, decide.decision_keys_%04d%02d%02d",
								 quote_identifier(names[i]), year, month, mday), false, 0);
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

	if (log_rows_since_analyze >= ANALYZE_AFTER_ROWS + ANALYZE_AFTER_FRACTION * log_rows_at_analyze)
	{
		/* Tables another session holds locked wait for the next turn. */
		SPI_execute("ANALYZE (SKIP_LOCKED) decide.decisions", false, 0);
		if (worker_decide_table_exists("decision_keys"))
			SPI_execute("ANALYZE (SKIP_LOCKED) decide.decision_keys", false, 0);
		if (SPI_execute("SELECT pg_catalog.sum(pg_catalog.greatest(c.reltuples, 0))::float8"
						" FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
						" WHERE i.inhparent = 'decide.decisions'::regclass", true, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
		{
			bool		isnull;
			Datum		rows = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			log_rows_at_analyze = isnull ? 0 : DatumGetFloat8(rows);
		}
		log_rows_since_analyze = 0;
	}
	/* Policies and entities: when a tenth of their rows changed. */
	if (SPI_execute("SELECT pg_catalog.format('%I.%I', schemaname, relname) FROM pg_catalog.pg_stat_user_tables"
					" WHERE schemaname = 'decide' AND relname IN ('policies', 'entities')"
					" AND n_mod_since_analyze > 1000 + n_live_tup / 10", true, 0) == SPI_OK_SELECT)
	{
		uint64		n = SPI_processed;
		char	  **names = palloc(sizeof(char *) * (n + 1));

		for (i = 0; i < n; i++)
			names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		for (i = 0; i < n; i++)
			SPI_execute(psprintf("ANALYZE (SKIP_LOCKED) %s", names[i]), false, 0);
	}
}

void
maintain(void)
{
	MemoryContext context = CurrentMemoryContext;

	PG_TRY();
	{
		worker_in_transaction(maintain_in_transaction, NULL);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(context);
	}
	PG_END_TRY();
}

/*
 * worker_maintain.c — the worker's maintenance, every
 * decide.maintenance_interval on the primary: creates the next days'
 * partitions of decide.decisions, drops those older than
 * decide.log_retention, deletes the change history older than
 * decide.changes_retention, and runs ANALYZE on decide's tables when they
 * changed a lot (autovacuum never analyzes a partitioned parent).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "change_history.h"
#include "worker_common.h"
#include "worker_flush.h"
#include "worker_maintain.h"

#define ANALYZE_AFTER_ROWS 50000

void
maintain(void *arg)
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
		OidIsValid(get_relname_relid("changes", get_namespace_oid("decide", false))))
		SPI_execute(psprintf("DELETE FROM decide.changes WHERE epoch < coalesce("
							 "(SELECT min(epoch) FROM decide.changes"
							 "  WHERE changed_at >= now() - interval '%d minutes'),"
							 " (SELECT epoch + 1 FROM decide.epoch))",
							 decide_changes_retention_min), false, 0);

	if (log_rows_since_analyze >= ANALYZE_AFTER_ROWS)
	{
		SPI_execute("ANALYZE decide.decisions", false, 0);
		if (OidIsValid(get_relname_relid("decision_keys", get_namespace_oid("decide", false))))
			SPI_execute("ANALYZE decide.decision_keys", false, 0);
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
			SPI_execute(psprintf("ANALYZE %s", names[i]), false, 0);
	}
}

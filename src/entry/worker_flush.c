/*
 * worker_flush.c — the worker's flush: the decision log ring into
 * decide.decisions, one transaction and one multi-row INSERT per batch,
 * creating the daily partitions the batch needs.  The ring advances only
 * after the commit, so a failed insert loses nothing.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "decision.h"
#include "stats.h"
#include "worker_common.h"
#include "worker_flush.h"

#define LOG_COLUMNS 11

int64		log_rows_since_analyze = 0;

static SPIPlanPtr insert_plan = NULL;

/* Partitions known to exist, for the decide.decisions with this oid. */
static Oid	known_partitions_of = InvalidOid;
static int32 known_partition_days[64];
static int	n_known_partition_days = 0;

/* UTC day number (days since 2000-01-01) of a timestamp. */
int32
log_day_of(TimestampTz t)
{
	return (int32) (t >= 0 ? t / USECS_PER_DAY : (t - USECS_PER_DAY + 1) / USECS_PER_DAY);
}

static char *
day_label(int32 day, const char *format)
{
	int			year,
				month,
				mday;

	j2date(day + POSTGRES_EPOCH_JDATE, &year, &month, &mday);
	return psprintf(format, year, month, mday);
}

static bool
log_partition_function_exists(void)
{
	Oid			argtypes[1] = {DATEOID};

	return OidIsValid(LookupFuncName(list_make2(makeString("decide"),
												makeString("create_log_partition")),
									 1, argtypes, true));
}

void
log_forget_partitions(void)
{
	n_known_partition_days = 0;
}

/*
 * Makes sure the partition of one UTC day exists.  decide.create_log_partition()
 * (0.6.0) creates it with its indexes; a schema not yet updated to 0.6.0
 * has the indexes on the parent instead, which a plain PARTITION OF copies.
 */
void
log_ensure_partition(int32 day)
{
	int			i;
	Oid			decisions = get_relname_relid("decisions", get_namespace_oid("decide", false));
	Oid			argtypes[1] = {DATEOID};
	Datum		args[1];

	if (!OidIsValid(decisions))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"decide.decisions\" does not exist"),
				 errhint("The decide extension in database \"%s\" is incomplete: DROP EXTENSION decide; CREATE EXTENSION decide.",
						 get_database_name(MyDatabaseId))));

	/* The extension was dropped and created again: forget what we knew. */
	if (decisions != known_partitions_of)
	{
		n_known_partition_days = 0;
		known_partitions_of = decisions;
	}
	for (i = 0; i < n_known_partition_days; i++)
		if (known_partition_days[i] == day)
			return;
	args[0] = DateADTGetDatum(day);	/* both count days from 2000-01-01 */

	/*
	 * Lock the parent first: an ALTER EXTENSION UPDATE that is moving its
	 * indexes holds it until it commits, and the lock is only granted
	 * after that, so the function is looked up in the schema this
	 * partition will be created in (without it, a 0.5.0-style partition
	 * created right after the update commits would have no index at all).
	 */
	LockRelationOid(decisions, RowExclusiveLock);
	if (log_partition_function_exists())
	{
		if (SPI_execute_with_args("SELECT decide.create_log_partition($1)", 1, argtypes, args,
								  NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not create a partition of decide.decisions");
	}
	else if (SPI_execute(psprintf("CREATE TABLE IF NOT EXISTS decide.%s PARTITION OF decide.decisions "
								  "FOR VALUES FROM ('%s 00:00:00+00') TO ('%s 00:00:00+00')",
								  day_label(day, "decisions_%04d%02d%02d"),
								  day_label(day, "%04d-%02d-%02d"),
								  day_label(day + 1, "%04d-%02d-%02d")),
						 false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create a partition of decide.decisions");
	if (n_known_partition_days == lengthof(known_partition_days))
		n_known_partition_days = 0;
	known_partition_days[n_known_partition_days++] = day;
}

static Datum
text_datum(DecStr s)
{
	return PointerGetDatum(cstring_to_text_with_len(s.ptr, s.len));
}

/* A record's context as a jsonb datum (its JSON text was checked before). */
static Datum
context_datum(const LogRecord *record)
{
	if (record->context_format == LOG_CONTEXT_JSON_TEXT)
		return DirectFunctionCall1(jsonb_in,
								   CStringGetDatum(pnstrdup(record->context.ptr,
															record->context.len)));
	else
	{
		char	   *copy = palloc(record->context.len);	/* aligned for jsonb */

		memcpy(copy, record->context.ptr, record->context.len);
		return PointerGetDatum(copy);
	}
}

void
log_insert_records(const LogRecord *records, int n)
{
	Datum	   *columns[LOG_COLUMNS];
	bool	   *nulls[LOG_COLUMNS];
	Datum		values[LOG_COLUMNS];
	static const Oid element_types[LOG_COLUMNS] = {
		TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID,
		TEXTOID, INT8OID, TEXTOID, JSONBOID
	};
	int32	   *days = palloc(sizeof(int32) * Max(n, 1));
	int			n_days = 0;
	int			i;
	int			c;

	if (n == 0)
		return;
	for (c = 0; c < LOG_COLUMNS; c++)
	{
		columns[c] = palloc(sizeof(Datum) * n);
		nulls[c] = palloc0(sizeof(bool) * n);
	}
	for (i = 0; i < n; i++)
	{
		const LogRecord *r = &records[i];
		char	   *policy = r->has_policy ? pnstrdup(r->policy.ptr, r->policy.len) : NULL;
		int32		day = log_day_of(r->decided_at);
		int			d;

		for (d = 0; d < n_days && days[d] != day; d++)
			;
		if (d == n_days)
			days[n_days++] = day;
		columns[0][i] = TimestampTzGetDatum(r->decided_at);
		columns[1][i] = text_datum(r->actor);
		columns[2][i] = text_datum(r->action);
		columns[3][i] = text_datum(r->resource);
		columns[4][i] = BoolGetDatum(r->allowed);
		columns[5][i] = policy ? CStringGetTextDatum(policy) : (Datum) 0;
		nulls[5][i] = policy == NULL;
		columns[6][i] = text_datum(r->risk_level);
		nulls[6][i] = policy == NULL;
		columns[7][i] = CStringGetTextDatum(decision_reason(r->allowed, policy, r->priority,
															r->condition_unknown));
		columns[8][i] = Int64GetDatum(r->epoch);
		columns[9][i] = CStringGetTextDatum(log_source_names[r->source]);
		if (r->context.len > 0)
			columns[10][i] = context_datum(r);
		else
			nulls[10][i] = true;
	}
	for (c = 0; c < LOG_COLUMNS; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			dims[1] = {n};
		int			lbs[1] = {1};

		get_typlenbyvalalign(element_types[c], &typlen, &typbyval, &typalign);
		values[c] = PointerGetDatum(construct_md_array(columns[c], nulls[c], 1, dims, lbs,
													   element_types[c], typlen, typbyval,
													   typalign));
	}
	for (i = 0; i < n_days; i++)
		log_ensure_partition(days[i]);

	if (insert_plan == NULL)
	{
		Oid			argtypes[LOG_COLUMNS] = {
			TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID,
			TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID,
			JSONBARRAYOID
		};
		SPIPlanPtr	plan = SPI_prepare(
									   "INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect,"
									   " policy, risk_level, reason, epoch, source, context)"
									   " SELECT t, a, b, c, ok, CASE WHEN ok THEN 'allow' ELSE 'deny' END::decide.effect,"
									   " p, r::decide.risk_level, why, e, s, ctx"
									   " FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
									   " AS u(t, a, b, c, ok, p, r, why, e, s, ctx)",
									   LOG_COLUMNS, argtypes);

		if (plan == NULL)
			elog(ERROR, "could not prepare the decision log insert: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		insert_plan = plan;
	}
	if (SPI_execute_plan(insert_plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into decide.decisions");
}

typedef struct RingBatch
{
	LogRecord  *records;
	int			n;
} RingBatch;

static void
insert_ring_batch(void *arg)
{
	RingBatch  *batch = arg;

	log_insert_records(batch->records, batch->n);
}

/* Writes one batch of the ring; false when the ring was empty. */
bool
log_flush_once(char *buf)
{
	RingBatch	batch;
	uint64		start;
	uint64		end;
	Size		len = audit_log_peek(buf, FLUSH_BUFFER_BYTES, &start, &end);
	Size		pos = 0;

	if (len == 0)
		return false;
	batch.records = palloc(sizeof(LogRecord) * (len / sizeof(uint64) + 1));
	batch.n = 0;
	while (pos < len)
		pos += log_record_decode(buf + pos, len - pos, &batch.records[batch.n++]);
	worker_in_transaction(insert_ring_batch, &batch);
	pfree(batch.records);

	/* Counted before the ring moves: decide_flush() returns when it does. */
	stats_count(STAT_LOG_FLUSHED, batch.n);
	stats_gauge_set(GAUGE_LAST_FLUSH, (uint64) GetCurrentTimestamp());
	stats_flush();
	audit_log_consume(end);
	log_rows_since_analyze += batch.n;
	return true;
}

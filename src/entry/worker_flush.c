/*
 * worker_flush.c — the worker's flush: the decision log ring into
 * decide.decisions, one transaction per batch, straight into each day's
 * partition as COPY writes (table_multi_insert, then the index entries),
 * creating the daily partitions the batch needs.  The ring advances only
 * after the commit, so a failed insert loses nothing.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "utils/syscache.h"
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

/* Rows handed to table_multi_insert() at once, as COPY does. */
#define MULTI_INSERT_SLOTS 1000

int64		log_rows_since_analyze = 0;

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

/* The columns of decide.decisions, as the worker fills them. */
enum
{
	COL_ID,
	COL_DECIDED_AT,
	COL_ACTOR,
	COL_ACTION,
	COL_RESOURCE,
	COL_ALLOWED,
	COL_EFFECT,
	COL_POLICY,
	COL_RISK_LEVEL,
	COL_REASON,
	COL_EPOCH,
	COL_SOURCE,
	COL_CONTEXT,
	LOG_COLUMNS
};

static const char *const column_names[LOG_COLUMNS] = {
	"id", "decided_at", "actor", "action", "resource", "allowed", "effect", "policy",
	"risk_level", "reason", "epoch", "source", "context"
};

#define RISK_LEVELS 4
static const char *const risk_level_names[RISK_LEVELS] = {"low", "medium", "high", "critical"};

/* What a batch needs of the schema, looked up once per batch. */
typedef struct LogSchema
{
	Oid			namespace;
	Oid			id_sequence;
	Datum		effect[2];		/* deny, allow */
	Datum		risk_level[RISK_LEVELS];
} LogSchema;

static Datum
enum_label(Oid type, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label), ObjectIdGetDatum(type));
}

static void
load_schema(LogSchema *schema)
{
	Oid			effect_type;
	Oid			risk_type;
	int			i;

	schema->namespace = get_namespace_oid("decide", false);
	schema->id_sequence = get_relname_relid("decisions_id_seq", schema->namespace);
	effect_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("effect"),
								  ObjectIdGetDatum(schema->namespace));
	risk_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("risk_level"),
								ObjectIdGetDatum(schema->namespace));
	if (!OidIsValid(schema->id_sequence) || !OidIsValid(effect_type) || !OidIsValid(risk_type))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the decide extension in database \"%s\" is incomplete",
						get_database_name(MyDatabaseId)),
				 errhint("DROP EXTENSION decide; CREATE EXTENSION decide.")));
	schema->effect[0] = enum_label(effect_type, "deny");
	schema->effect[1] = enum_label(effect_type, "allow");
	for (i = 0; i < RISK_LEVELS; i++)
		schema->risk_level[i] = enum_label(risk_type, risk_level_names[i]);
}

static Datum
risk_level_datum(const LogSchema *schema, DecStr name)
{
	int			i;

	for (i = 0; i < RISK_LEVELS; i++)
		if (name.len == strlen(risk_level_names[i]) &&
			memcmp(name.ptr, risk_level_names[i], name.len) == 0)
			return schema->risk_level[i];
	elog(ERROR, "unknown risk level \"%.*s\" in a log record", (int) name.len, name.ptr);
	return (Datum) 0;			/* keep the compiler quiet */
}

/*
 * Inserts the records of one day into that day's partition, as COPY does:
 * table_multi_insert() per slice of slots, then each row's index entries.
 * The day was computed from the rows, so the partition constraint holds.
 */
static void
insert_into_partition(const LogSchema *schema, int32 day, const LogRecord *records,
					  const int *rows, int n)
{
	Oid			partition_oid = get_relname_relid(day_label(day, "decisions_%04d%02d%02d"),
												  schema->namespace);
	Relation	partition;
	TupleDesc	desc;
	AttrNumber	attnum[LOG_COLUMNS];
	EState	   *estate;
	ResultRelInfo *result;
	BulkInsertState bistate;
	TupleTableSlot **slots;
	CommandId	cid = GetCurrentCommandId(true);
	int			slice = Min(n, MULTI_INSERT_SLOTS);
	int			done;
	int			c;

	if (!OidIsValid(partition_oid))
		elog(ERROR, "the partition of decide.decisions for %s is missing",
			 day_label(day, "%04d-%02d-%02d"));
	partition = table_open(partition_oid, RowExclusiveLock);
	desc = RelationGetDescr(partition);
	for (c = 0; c < LOG_COLUMNS; c++)
	{
		attnum[c] = get_attnum(partition_oid, column_names[c]);
		if (attnum[c] == InvalidAttrNumber)
			elog(ERROR, "column \"%s\" of %s is missing", column_names[c],
				 RelationGetRelationName(partition));
	}

	estate = CreateExecutorState();
	result = makeNode(ResultRelInfo);
	InitResultRelInfo(result, partition, 1, NULL, 0);
	ExecOpenIndices(result, false);
	bistate = GetBulkInsertState();
	slots = palloc(sizeof(TupleTableSlot *) * slice);
	for (c = 0; c < slice; c++)
		slots[c] = table_slot_create(partition, NULL);

	for (done = 0; done < n; done += slice)
	{
		int			count = Min(slice, n - done);
		int			i;

		for (i = 0; i < count; i++)
		{
			const LogRecord *r = &records[rows[done + i]];
			TupleTableSlot *slot = slots[i];
			Datum	   *values = slot->tts_values;
			bool	   *nulls = slot->tts_isnull;
			char	   *policy = r->has_policy ? pnstrdup(r->policy.ptr, r->policy.len) : NULL;

			ExecClearTuple(slot);
			memset(nulls, true, sizeof(bool) * desc->natts);
#define SET(col, datum) (values[attnum[col] - 1] = (datum), nulls[attnum[col] - 1] = false)
			SET(COL_ID, Int64GetDatum(nextval_internal(schema->id_sequence, false)));
			SET(COL_DECIDED_AT, TimestampTzGetDatum(r->decided_at));
			SET(COL_ACTOR, text_datum(r->actor));
			SET(COL_ACTION, text_datum(r->action));
			SET(COL_RESOURCE, text_datum(r->resource));
			SET(COL_ALLOWED, BoolGetDatum(r->allowed));
			SET(COL_EFFECT, schema->effect[r->allowed ? 1 : 0]);
			if (policy)
			{
				SET(COL_POLICY, CStringGetTextDatum(policy));
				SET(COL_RISK_LEVEL, risk_level_datum(schema, r->risk_level));
			}
			SET(COL_REASON, CStringGetTextDatum(decision_reason(r->allowed, policy, r->priority,
																r->condition_unknown)));
			SET(COL_EPOCH, Int64GetDatum(r->epoch));
			SET(COL_SOURCE, CStringGetTextDatum(log_source_names[r->source]));
			if (r->context.len > 0)
				SET(COL_CONTEXT, context_datum(r));
#undef SET
			ExecStoreVirtualTuple(slot);
		}
		table_multi_insert(partition, slots, count, cid, 0, bistate);
		for (i = 0; i < count; i++)
		{
			if (result->ri_NumIndices > 0)
				list_free(ExecInsertIndexTuples(result, slots[i], estate, false, false, NULL, NIL));
			ResetPerTupleExprContext(estate);
		}
	}

	for (c = 0; c < slice; c++)
		ExecDropSingleTupleTableSlot(slots[c]);
	FreeBulkInsertState(bistate);
	ExecCloseIndices(result);
	FreeExecutorState(estate);
	table_close(partition, NoLock);
}

void
log_insert_records(const LogRecord *records, int n)
{
	LogSchema	schema;
	int32	   *days = palloc(sizeof(int32) * Max(n, 1));
	int		   *day_of = palloc(sizeof(int) * Max(n, 1));
	int		   *rows = palloc(sizeof(int) * Max(n, 1));
	int			n_days = 0;
	int			i;
	int			d;

	if (n == 0)
		return;
	for (i = 0; i < n; i++)
	{
		int32		day = log_day_of(records[i].decided_at);

		for (d = 0; d < n_days && days[d] != day; d++)
			;
		if (d == n_days)
			days[n_days++] = day;
		day_of[i] = d;
	}
	for (d = 0; d < n_days; d++)
		log_ensure_partition(days[d]);
	load_schema(&schema);
	/* Day by day, each in the order the records came. */
	for (d = 0; d < n_days; d++)
	{
		int			count = 0;

		for (i = 0; i < n; i++)
			if (day_of[i] == d)
				rows[count++] = i;
		insert_into_partition(&schema, days[d], records, rows, count);
	}
	CommandCounterIncrement();
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

/*
 * worker_flush.c — the worker's flush: the decision log ring into the log,
 * one transaction per batch, straight into each day's partitions as COPY
 * writes (table_multi_insert, then the index entries), creating the daily
 * partitions the batch needs.  The decisions go as chunks into
 * decide.decision_chunks (src/core/log_chunk.h), the batch's keys (where
 * each actor, policy and risk level, and the denials, occur) into
 * decide.decision_keys, and its links of the hash chain (log_chain.c) into
 * decide.log_chain.  The ring advances only after the commit, so a failed
 * insert loses nothing.
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
#include "bytes_table.h"
#include "decision.h"
#include "log_chain.h"
#include "log_chunk.h"
#include "stats.h"
#include "worker_common.h"
#include "worker_flush.h"

/* Rows handed to table_multi_insert() at once, as COPY does. */
#define MULTI_INSERT_SLOTS 1000

int64		log_rows_since_analyze = 0;

/* Chunks this worker wrote, and the decisions in them. */
static int64 chunks_written = 0;
static int64 decisions_in_chunks = 0;

/* Partitions known to exist, for the log's partitioned table with this oid. */
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

double
log_decisions_per_row(void)
{
	return chunks_written > 0 ? (double) decisions_in_chunks / chunks_written : 1.0;
}

const char *
log_partitioned_table(void)
{
	return OidIsValid(get_relname_relid("decision_chunks", get_namespace_oid("decide", false))) ?
		"decision_chunks" : "decisions";
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
	Oid			namespace = get_namespace_oid("decide", false);
	Oid			decisions = get_relname_relid(log_partitioned_table(), namespace);
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

/* The columns of decide.decisions of 0.6.0, as the worker fills them. */
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

/* The columns of decide.decision_chunks. */
enum
{
	CHUNK_FIRST_AT,
	CHUNK_LAST_AT,
	CHUNK_FIRST_ID,
	CHUNK_ROWS,
	CHUNK_BODY,
	CHUNK_COLUMNS
};

static const char *const chunk_column_names[CHUNK_COLUMNS] = {
	"first_at", "last_at", "first_id", "rows", "body"
};

/*
 * The span of a chunk's times is less than this (decide.decision_chunks
 * checks it, and decide_decisions_page() relies on it).
 */
#define LOG_CHUNK_MAX_SPAN USECS_PER_SEC

/* The columns of decide.decision_keys. */
enum
{
	KEY_KIND,
	KEY_KEY,
	KEY_FIRST_AT,
	KEY_LAST_AT,
	KEY_OFFSETS,
	KEY_CHUNKS,
	KEY_COLUMNS
};

static const char *const key_column_names[KEY_COLUMNS] = {
	"kind", "key", "first_at", "last_at", "offsets", "chunks"
};

/*
 * Times in one row of decide.decision_keys, and the span they may cover
 * (build_decision_keys() and decide_decisions_page() agree).
 */
#define TIMES_PER_KEY_ROW 200
#define KEY_ROW_MAX_SPAN USECS_PER_SEC

#define RISK_LEVELS 4
static const char *const risk_level_names[RISK_LEVELS] = {"low", "medium", "high", "critical"};

/*
 * What a batch needs of the schema, looked up once per batch.  A database
 * whose extension is not updated to 0.7.0 yet has a row per decision in
 * decide.decisions, with its reason and its source as text, and neither
 * keys nor a chain.
 */
typedef struct LogSchema
{
	Oid			namespace;
	Oid			id_sequence;
	bool		chunked;		/* 0.7.0: chunks, keys and the chain */
	Datum		effect[2];		/* deny, allow */
	Datum		risk_level[RISK_LEVELS];
} LogSchema;

static Datum
enum_label(Oid type, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label), ObjectIdGetDatum(type));
}

static Oid
schema_type(const LogSchema *schema, const char *name)
{
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(name),
						   ObjectIdGetDatum(schema->namespace));
}

static void
load_schema(LogSchema *schema)
{
	Oid			effect_type;
	Oid			risk_type;
	int			i;

	schema->namespace = get_namespace_oid("decide", false);
	schema->id_sequence = get_relname_relid("decisions_id_seq", schema->namespace);
	effect_type = schema_type(schema, "effect");
	risk_type = schema_type(schema, "risk_level");
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
	schema->chunked = OidIsValid(get_relname_relid("decision_chunks", schema->namespace));
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

/* A relation's attribute numbers for named columns. */
static void
column_numbers(Relation rel, const char *const *names, int n, AttrNumber *attnum)
{
	int			c;

	for (c = 0; c < n; c++)
	{
		attnum[c] = get_attnum(RelationGetRelid(rel), names[c]);
		if (attnum[c] == InvalidAttrNumber)
			elog(ERROR, "column \"%s\" of %s is missing", names[c],
				 RelationGetRelationName(rel));
	}
}

/* A relation's columns must be these, in this order (checked, not assumed). */
static void
check_columns(Relation rel, const char *const *names, int n)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			c;

	if (desc->natts != n)
		elog(ERROR, "%s has %d columns, not %d", RelationGetRelationName(rel), desc->natts, n);
	for (c = 0; c < n; c++)
		if (strcmp(NameStr(TupleDescAttr(desc, c)->attname), names[c]) != 0)
			elog(ERROR, "column %d of %s is not \"%s\"", c + 1, RelationGetRelationName(rel),
				 names[c]);
}

/* A partition of the log, opened to insert as COPY does. */
typedef struct PartitionWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *result;
	BulkInsertState bistate;
	TupleTableSlot **slots;
	int			n_slots;
	CommandId	cid;
} PartitionWriter;

static void
writer_open(PartitionWriter *w, const LogSchema *schema, const char *format, int32 day,
			int n_slots)
{
	Oid			oid = get_relname_relid(day_label(day, format), schema->namespace);
	int			i;

	if (!OidIsValid(oid))
		elog(ERROR, "the partition decide.%s is missing", day_label(day, format));
	w->rel = table_open(oid, RowExclusiveLock);
	w->estate = CreateExecutorState();
	w->result = makeNode(ResultRelInfo);
	InitResultRelInfo(w->result, w->rel, 1, NULL, 0);
	ExecOpenIndices(w->result, false);
	w->bistate = GetBulkInsertState();
	w->n_slots = n_slots;
	w->slots = palloc(sizeof(TupleTableSlot *) * n_slots);
	for (i = 0; i < n_slots; i++)
		w->slots[i] = table_slot_create(w->rel, NULL);
	w->cid = GetCurrentCommandId(true);
}

/* The next slot to fill, emptied, all its columns NULL. */
static TupleTableSlot *
writer_slot(PartitionWriter *w, int i)
{
	TupleTableSlot *slot = w->slots[i];

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * RelationGetDescr(w->rel)->natts);
	return slot;
}

/* Writes the first count slots (each stored virtual) and their index entries. */
static void
writer_insert(PartitionWriter *w, int count)
{
	int			i;

	/* Nothing frees space in the log: every new row goes at the end. */
	table_multi_insert(w->rel, w->slots, count, w->cid, TABLE_INSERT_SKIP_FSM, w->bistate);
	for (i = 0; i < count; i++)
	{
		if (w->result->ri_NumIndices > 0)
			list_free(ExecInsertIndexTuples(w->result, w->slots[i], w->estate, false, false,
											NULL, NIL));
		ResetPerTupleExprContext(w->estate);
	}
}

static void
writer_close(PartitionWriter *w)
{
	int			i;

	for (i = 0; i < w->n_slots; i++)
		ExecDropSingleTupleTableSlot(w->slots[i]);
	FreeBulkInsertState(w->bistate);
	ExecCloseIndices(w->result);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
}

/* Where one key occurs in a batch: the rows, in the order they came. */
typedef struct KeyRows
{
	BytesKey	key;			/* points into the batch's records */
	int			n;
	int			size;
	int		   *rows;			/* indexes into the day's rows */
} KeyRows;

static void
note_key(HTAB *table, DecStr key, int row)
{
	BytesKey	lookup = {key.ptr, (uint32) key.len};
	bool		found;
	KeyRows    *entry = hash_search(table, &lookup, HASH_ENTER, &found);

	if (!found)
	{
		entry->n = 0;
		entry->size = 8;
		entry->rows = palloc(sizeof(int) * entry->size);
	}
	else if (entry->n == entry->size)
	{
		entry->size *= 2;
		entry->rows = repalloc(entry->rows, sizeof(int) * entry->size);
	}
	entry->rows[entry->n++] = row;
}

/*
 * Fills a slot of decide.decision_keys with one key's times (count > 0),
 * the oldest first and the newest last, and the chunks that hold them:
 * each chunk's last_at once, as offsets after the oldest time too.
 */
static void
fill_key_row(TupleTableSlot *slot, char kind, const BytesKey *key, const TimestampTz *times,
			 const TimestampTz *chunk_ends, int count, TimestampTz first, TimestampTz last,
			 Datum *offsets, Datum *chunks)
{
	int			n_chunks = 0;
	int			i;

	for (i = 0; i < count; i++)
	{
		offsets[i] = Int32GetDatum((int32) (times[i] - first));
		/* In time order, a key's positions meet each chunk in one run. */
		if (i == 0 || chunk_ends[i] != chunk_ends[i - 1])
			chunks[n_chunks++] = Int32GetDatum((int32) (chunk_ends[i] - first));
	}
#define SET(col, datum) (slot->tts_values[col] = (datum), slot->tts_isnull[col] = false)
	SET(KEY_KIND, CharGetDatum(kind));
	SET(KEY_KEY, PointerGetDatum(cstring_to_text_with_len(key->ptr, key->len)));
	SET(KEY_FIRST_AT, TimestampTzGetDatum(first));
	SET(KEY_LAST_AT, TimestampTzGetDatum(last));
	SET(KEY_OFFSETS, PointerGetDatum(construct_array(offsets, count, INT4OID, sizeof(int32),
													  true, TYPALIGN_INT)));
	SET(KEY_CHUNKS, PointerGetDatum(construct_array(chunks, n_chunks, INT4OID, sizeof(int32),
													 true, TYPALIGN_INT)));
#undef SET
	ExecStoreVirtualTuple(slot);
}

/*
 * Writes one kind's keys: for each key, its rows' times, a row of
 * decide.decision_keys per TIMES_PER_KEY_ROW of them, or sooner where they
 * would span a second or more.
 */
static void
insert_keys(PartitionWriter *w, char kind, HTAB *table, const LogRecord *records,
			const int *rows, const TimestampTz *chunk_end_of)
{
	HASH_SEQ_STATUS seq;
	KeyRows    *entry;
	TimestampTz *times = palloc(sizeof(TimestampTz) * TIMES_PER_KEY_ROW);
	TimestampTz *chunk_ends = palloc(sizeof(TimestampTz) * TIMES_PER_KEY_ROW);
	Datum	   *offsets = palloc(sizeof(Datum) * TIMES_PER_KEY_ROW);
	Datum	   *chunks = palloc(sizeof(Datum) * TIMES_PER_KEY_ROW);
	int			filled = 0;

	hash_seq_init(&seq, table);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		int			count = 0;
		TimestampTz first = 0;
		TimestampTz last = 0;
		int			i;

		for (i = 0; i <= entry->n; i++)
		{
			TimestampTz t = i < entry->n ? records[rows[entry->rows[i]]].decided_at : 0;

			if (count > 0 &&
				(i == entry->n || count == TIMES_PER_KEY_ROW ||
				 Max(last, t) - Min(first, t) >= KEY_ROW_MAX_SPAN))
			{
				if (filled == w->n_slots)
				{
					writer_insert(w, filled);
					filled = 0;
				}
				fill_key_row(writer_slot(w, filled++), kind, &entry->key, times, chunk_ends, count,
							 first, last, offsets, chunks);
				count = 0;
			}
			if (i == entry->n)
				break;
			if (count == 0)
				first = last = t;
			first = Min(first, t);
			last = Max(last, t);
			chunk_ends[count] = i < entry->n ? chunk_end_of[entry->rows[i]] : 0;
			times[count++] = t;
		}
	}
	if (filled > 0)
		writer_insert(w, filled);
}

/*
 * Decisions to a chunk at most, and chunks to a multi-insert.  A page of a
 * rare key reads a chunk for each decision it shows: a small chunk keeps
 * what it decompresses and passes over for each one small, and stays in
 * its row, compressed.
 */
#define CHUNK_RECORDS 64
#define CHUNK_SLOTS 16

/*
 * Writes the day's records, in time order, as rows of the day's partition
 * of decide.decision_chunks: CHUNK_RECORDS decisions a row, or fewer where
 * they would span LOG_CHUNK_MAX_SPAN or more, so that readers find a time's
 * chunk among those that end less than that span after it.  Each chunk, as
 * stored, goes into the day's link of the chain; chunk_end_of[i] is set to
 * the last_at of the chunk that holds rows[i], for the keys.
 */
static void
insert_chunks(const LogSchema *schema, int32 day, const LogRecord *records, const int *rows,
			  int n, ChainDigest *chain, int64 *first_id_out, int64 *last_id_out,
			  TimestampTz *chunk_end_of)
{
	PartitionWriter w;
	LogRecord  *texts = palloc(sizeof(LogRecord) * CHUNK_RECORDS);
	int		   *order = palloc(sizeof(int) * CHUNK_RECORDS);
	int64	   *ids = palloc(sizeof(int64) * CHUNK_RECORDS);
	/* The chunks of a multi-insert, freed once it is written. */
	MemoryContext chunk_context = AllocSetContextCreate(CurrentMemoryContext,
														"decide log chunks",
														ALLOCSET_DEFAULT_SIZES);
	int			filled = 0;
	int			done = 0;

	writer_open(&w, schema, "decision_chunks_%04d%02d%02d", day, CHUNK_SLOTS);
	check_columns(w.rel, chunk_column_names, CHUNK_COLUMNS);
	while (done < n)
	{
		TimestampTz first_at = records[rows[done]].decided_at;
		TimestampTz last_at = first_at;
		MemoryContext outer = MemoryContextSwitchTo(chunk_context);
		TupleTableSlot *slot;
		int			count;
		int			i;
		bytea	   *body;
		Size		size;

		for (count = 0; count < CHUNK_RECORDS && done + count < n; count++)
		{
			const LogRecord *r = &records[rows[done + count]];

			if (r->decided_at - first_at >= LOG_CHUNK_MAX_SPAN)
				break;
			last_at = r->decided_at;
			ids[count] = nextval_internal(schema->id_sequence, false);
			texts[count] = *r;
			order[count] = count;
			if (r->context.len > 0 && r->context_format == LOG_CONTEXT_JSONB)
			{
				/* The chunk keeps JSON text: portable, and checked when read. */
				Jsonb	   *context = DatumGetJsonbP(context_datum(r));

				texts[count].context.ptr = JsonbToCString(NULL, &context->root, VARSIZE(context));
				texts[count].context.len = strlen(texts[count].context.ptr);
				texts[count].context_format = LOG_CONTEXT_JSON_TEXT;

				/*
				 * A few bytes of jsonb can be a long text (a number of
				 * thousands of digits): a context the chunk's reader
				 * would refuse is logged as none, as a large one is.
				 */
				if (log_record_check_fields(&texts[count]) != LOG_ENTRY_OK)
					texts[count].context.len = 0;
			}
		}
		if (done == 0)
			*first_id_out = ids[0];
		*last_id_out = ids[count - 1];
		size = log_chunk_bound(texts, order, count);
		body = palloc(VARHDRSZ + size);
		size = log_chunk_encode(texts, order, ids, count, VARDATA(body));
		SET_VARSIZE(body, VARHDRSZ + size);
		MemoryContextSwitchTo(outer);

		slot = writer_slot(&w, filled++);
		slot->tts_values[CHUNK_FIRST_AT] = TimestampTzGetDatum(first_at);
		slot->tts_values[CHUNK_LAST_AT] = TimestampTzGetDatum(last_at);
		slot->tts_values[CHUNK_FIRST_ID] = Int64GetDatum(ids[0]);
		slot->tts_values[CHUNK_ROWS] = Int32GetDatum(count);
		slot->tts_values[CHUNK_BODY] = PointerGetDatum(body);
		memset(slot->tts_isnull, false, sizeof(bool) * CHUNK_COLUMNS);
		ExecStoreVirtualTuple(slot);
		if (chain)
			log_chain_add_chunk(chain, ids[0], first_at, last_at, count, VARDATA(body), size);
		for (i = 0; i < count; i++)
			chunk_end_of[done + i] = last_at;
		done += count;
		chunks_written++;
		decisions_in_chunks += count;
		if (filled == w.n_slots || done == n)
		{
			writer_insert(&w, filled);
			filled = 0;
			MemoryContextReset(chunk_context);
		}
	}
	writer_close(&w);
	MemoryContextDelete(chunk_context);
}

/*
 * A database not yet updated to 0.7.0: the records of one day as rows of
 * its partition of decide.decisions, with their reasons, as COPY does.
 */
static void
insert_rows_of_0_6(const LogSchema *schema, int32 day, const LogRecord *records,
				   const int *rows, int n)
{
	PartitionWriter w;
	AttrNumber	attnum[LOG_COLUMNS];
	int			done;

	/*
	 * The values of a multi-insert, freed once it is written: the same few
	 * hundred kilobytes, still in cache, serve every one.
	 */
	MemoryContext values_context = AllocSetContextCreate(CurrentMemoryContext,
														 "decide log rows",
														 ALLOCSET_DEFAULT_SIZES);

	writer_open(&w, schema, "decisions_%04d%02d%02d", day, Min(n, MULTI_INSERT_SLOTS));
	column_numbers(w.rel, column_names, LOG_COLUMNS, attnum);
	for (done = 0; done < n; done += w.n_slots)
	{
		int			count = Min(w.n_slots, n - done);
		MemoryContext outer = MemoryContextSwitchTo(values_context);
		int			i;

		for (i = 0; i < count; i++)
		{
			const LogRecord *r = &records[rows[done + i]];
			TupleTableSlot *slot = writer_slot(&w, i);
			Datum	   *values = slot->tts_values;
			bool	   *nulls = slot->tts_isnull;
			char	   *policy = r->has_policy ? pnstrdup(r->policy.ptr, r->policy.len) : NULL;

#define SET(col, datum) (values[attnum[col] - 1] = (datum), nulls[attnum[col] - 1] = false)
			SET(COL_ID, Int64GetDatum(nextval_internal(schema->id_sequence, false)));
			SET(COL_DECIDED_AT, TimestampTzGetDatum(r->decided_at));
			SET(COL_ACTOR, text_datum(r->actor));
			SET(COL_ACTION, text_datum(r->action));
			SET(COL_RESOURCE, text_datum(r->resource));
			SET(COL_ALLOWED, BoolGetDatum(r->allowed));
			SET(COL_EFFECT, schema->effect[r->allowed ? 1 : 0]);
			if (r->has_policy)
			{
				SET(COL_POLICY, text_datum(r->policy));
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
		MemoryContextSwitchTo(outer);
		writer_insert(&w, count);
		MemoryContextReset(values_context);
	}
	writer_close(&w);
	MemoryContextDelete(values_context);
}

/*
 * Where each actor, policy and risk level, and the denials, occur among
 * the records of one day: rows of the day's partition of
 * decide.decision_keys.
 */
static void
insert_day_keys(const LogSchema *schema, int32 day, const LogRecord *records, const int *rows,
				int n, const TimestampTz *chunk_end_of)
{
	PartitionWriter w;
	HTAB	   *actors = bytes_table_create("decide log actors", sizeof(KeyRows), 256,
											CurrentMemoryContext);
	HTAB	   *policies = bytes_table_create("decide log policies", sizeof(KeyRows), 64,
											  CurrentMemoryContext);
	HTAB	   *risks = bytes_table_create("decide log risk levels", sizeof(KeyRows),
										   RISK_LEVELS, CurrentMemoryContext);
	HTAB	   *denials = bytes_table_create("decide log denials", sizeof(KeyRows), 1,
											 CurrentMemoryContext);
	DecStr		no_key = {"", 0};
	int			i;

	for (i = 0; i < n; i++)
	{
		const LogRecord *r = &records[rows[i]];

		note_key(actors, r->actor, i);
		if (r->has_policy)
		{
			note_key(policies, r->policy, i);
			note_key(risks, r->risk_level, i);
		}
		if (!r->allowed)
			note_key(denials, no_key, i);
	}
	writer_open(&w, schema, "decision_keys_%04d%02d%02d", day, 64);
	check_columns(w.rel, key_column_names, KEY_COLUMNS);
	insert_keys(&w, 'a', actors, records, rows, chunk_end_of);
	insert_keys(&w, 'p', policies, records, rows, chunk_end_of);
	insert_keys(&w, 'r', risks, records, rows, chunk_end_of);
	insert_keys(&w, 'd', denials, records, rows, chunk_end_of);
	writer_close(&w);
	hash_destroy(actors);
	hash_destroy(policies);
	hash_destroy(risks);
	hash_destroy(denials);
}

/*
 * Writes the records of one day, in time order, into that day's
 * partitions: as chunks, with the day's link of the chain and the keys;
 * or as 0.6.0 rows.  The day was computed from the records, so the
 * partition constraints hold.
 */
static void
insert_into_partition(const LogSchema *schema, int32 day, const LogRecord *records,
					  const int *rows, int n)
{
	ChainDigest *chain;
	int64		first_id = 0;
	int64		last_id = 0;
	TimestampTz *chunk_end_of;

	if (!schema->chunked)
	{
		insert_rows_of_0_6(schema, day, records, rows, n);
		return;
	}
	chain = log_chain_begin();
	chunk_end_of = palloc(sizeof(TimestampTz) * n);
	insert_chunks(schema, day, records, rows, n, chain, &first_id, &last_id, chunk_end_of);
	log_chain_append("log_chain", chain, first_id, last_id, n, &records[rows[0]].decided_at,
					 &records[rows[n - 1]].decided_at);
	insert_day_keys(schema, day, records, rows, n, chunk_end_of);
	pfree(chunk_end_of);
}

/* Orders row numbers by their records' times, then as they came. */
static int
compare_rows_by_time(const void *a, const void *b, void *arg)
{
	const LogRecord *records = arg;
	int			ra = *(const int *) a;
	int			rb = *(const int *) b;

	if (records[ra].decided_at != records[rb].decided_at)
		return records[ra].decided_at < records[rb].decided_at ? -1 : 1;
	return (ra > rb) - (ra < rb);
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
	/*
	 * Day by day, each in time order: appenders take their times before
	 * reserving their place in the ring, so the ring is nearly but not
	 * quite in time order, and each primary key entry in order lands on the
	 * index's rightmost page, found without a descent.
	 */
	for (d = 0; d < n_days; d++)
	{
		int			count = 0;

		for (i = 0; i < n; i++)
			if (day_of[i] == d)
				rows[count++] = i;
		qsort_arg(rows, count, sizeof(int), compare_rows_by_time, (void *) records);
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
	Size		pos;

	if (len == 0)
		return false;

	/*
	 * Counted first, so that the array fits the batch: sized for the
	 * smallest records instead, it was 16 times larger, and touching
	 * freshly mapped memory cost the worker a tenth of its time.
	 */
	batch.records = palloc(sizeof(LogRecord) * log_record_count(buf, len));
	batch.n = 0;
	for (pos = 0; pos < len;)
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

/*
 * log_chunks.c — the decision log's chunks as rows and rows as chunks: the
 * SQL functions through which the log is read and loaded.
 *
 *   decide.decision_chunk_rows(body [, from, to, actor, allowed, risk
 *       level, policy])  the decisions of one chunk (src/core/log_chunk.h),
 *       with the columns of decide.decisions; the view decide.decisions and
 *       every reader of the log go through it.  Given filters, only the
 *       decisions that pass them become rows: the others are skipped as
 *       bytes, which is what keeps a page of a rare key cheap.  A chunk
 *       whose bytes are not a chunk's (edited by hand) is an error naming
 *       what is wrong, never a wrong row.
 *   decide.decision_chunk(decisions)  the body of a chunk holding the given
 *       rows of decide.decisions: for rows loaded by hand and by the
 *       upgrade from 0.6.0.  A row the log could not have written is an
 *       error.  A reason is stored only where it is not the one derived
 *       from the row, so that a row reads back as it was given.
 *   decide.decision_key_times(first_at, offsets, from, to)  the times of a
 *       row of decide.decision_keys within [from, to]: what a page reads
 *       from each key row it goes through, in one call instead of a query.
 *
 * The worker encodes the chunks it writes itself (worker_flush.c).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "common/int.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "decision.h"
#include "log_chunk.h"

/* The columns of decide.decisions, in order. */
enum
{
	ROW_ID,
	ROW_DECIDED_AT,
	ROW_ACTOR,
	ROW_ACTION,
	ROW_RESOURCE,
	ROW_ALLOWED,
	ROW_EFFECT,
	ROW_POLICY,
	ROW_RISK_LEVEL,
	ROW_REASON,
	ROW_EPOCH,
	ROW_SOURCE,
	ROW_CONTEXT,
	ROW_PRIORITY,
	ROW_CONDITION_UNKNOWN,
	ROW_COLUMNS
};

static const char *const row_column_names[ROW_COLUMNS] = {
	"id", "decided_at", "actor", "action", "resource", "allowed", "effect", "policy",
	"risk_level", "reason", "epoch", "source", "context", "priority", "condition_unknown"
};

/* A row type must have the log's columns, by name, in this order. */
static void
check_columns(TupleDesc desc, const char *what)
{
	int			c;

	if (desc->natts != ROW_COLUMNS)
		elog(ERROR, "%s has %d columns, not %d", what, desc->natts, ROW_COLUMNS);
	for (c = 0; c < ROW_COLUMNS; c++)
		if (strcmp(NameStr(TupleDescAttr(desc, c)->attname), row_column_names[c]) != 0)
			elog(ERROR, "column %d of %s is not \"%s\"", c + 1, what, row_column_names[c]);
}

/*
 * The rows given to decide.decision_chunk() must have the columns of
 * decide.logged_decision (in the function's schema), names and types.
 */
static void
check_column_types(TupleDesc given, Oid namespace)
{
	Oid			expected_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
												CStringGetDatum("logged_decision"),
												ObjectIdGetDatum(namespace));
	TupleDesc	expected;
	int			c;

	if (!OidIsValid(expected_type))
		elog(ERROR, "type decide.logged_decision is missing");
	check_columns(given, "the row type of decide.decision_chunk()'s argument");
	expected = lookup_rowtype_tupdesc(expected_type, -1);
	for (c = 0; c < ROW_COLUMNS; c++)
		if (TupleDescAttr(given, c)->atttypid != TupleDescAttr(expected, c)->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of the rows given is of type %s, not %s",
							row_column_names[c],
							format_type_be(TupleDescAttr(given, c)->atttypid),
							format_type_be(TupleDescAttr(expected, c)->atttypid))));
	ReleaseTupleDesc(expected);
}

#define RISK_LABELS 8

/*
 * Enum values by label: looked up once per call of decide.decision_chunk(),
 * and once per query for decide.decision_chunk_rows(), which a page calls
 * for each chunk it reads.
 */
typedef struct Labels
{
	MemoryContext context;		/* where risk_names live */
	Oid			risk_type;
	int			n_risks;
	char	   *risk_names[RISK_LABELS];
	Datum		risk_values[RISK_LABELS];
	Datum		effect[2];		/* deny, allow */
	Datum		source[LOG_SOURCES];
} Labels;

static Datum
label_value(Oid type, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label), ObjectIdGetDatum(type));
}

static void
labels_init(Labels *labels, TupleDesc desc)
{
	int			i;

	memset(labels, 0, sizeof(*labels));
	labels->context = CurrentMemoryContext;
	labels->risk_type = TupleDescAttr(desc, ROW_RISK_LEVEL)->atttypid;
	labels->effect[0] = label_value(TupleDescAttr(desc, ROW_EFFECT)->atttypid, "deny");
	labels->effect[1] = label_value(TupleDescAttr(desc, ROW_EFFECT)->atttypid, "allow");
	for (i = 0; i < LOG_SOURCES; i++)
		labels->source[i] = label_value(TupleDescAttr(desc, ROW_SOURCE)->atttypid,
										log_source_names[i]);
}

static Datum
text_of(DecStr s)
{
	return PointerGetDatum(cstring_to_text_with_len(s.ptr, s.len));
}

/* The risk level's enum value; false if the type has no such label. */
static bool
risk_level(Labels *labels, DecStr name, Datum *value)
{
	char	   *label;
	HeapTuple	tuple;
	int			i;

	for (i = 0; i < labels->n_risks; i++)
		if (strlen(labels->risk_names[i]) == name.len &&
			memcmp(labels->risk_names[i], name.ptr, name.len) == 0)
		{
			*value = labels->risk_values[i];
			return true;
		}
	label = MemoryContextAlloc(labels->context, name.len + 1);
	memcpy(label, name.ptr, name.len);
	label[name.len] = '\0';
	tuple = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(labels->risk_type),
							CStringGetDatum(label));
	if (!HeapTupleIsValid(tuple))
	{
		pfree(label);
		return false;
	}
	*value = ObjectIdGetDatum(((Form_pg_enum) GETSTRUCT(tuple))->oid);
	ReleaseSysCache(tuple);
	if (labels->n_risks < RISK_LABELS)
	{
		labels->risk_names[labels->n_risks] = label;
		labels->risk_values[labels->n_risks++] = *value;
	}
	else
		pfree(label);
	return true;
}

/* The reason decide() gave: derived from the row, unless stored. */
static char *
record_reason(const LogRecord *r)
{
	char	   *policy;

	if (r->has_reason)
		return pnstrdup(r->reason.ptr, r->reason.len);
	if (!r->has_policy)
		return decision_reason(r->allowed, NULL, 0, false);
	policy = pnstrdup(r->policy.ptr, r->policy.len);
	return decision_reason(r->allowed, policy, r->priority, r->condition_unknown);
}

#define FILTER_ARGS 9

static DecStr
text_arg(FunctionCallInfo fcinfo, int argno)
{
	text	   *t = PG_GETARG_TEXT_PP(argno);
	DecStr		s = {VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)};

	return s;
}

/*
 * The filters of the long form: from_time, before_time, before_id,
 * by_actor, by_allowed, by_risk_level, by_policy; and newest, the number
 * of the newest decisions kept (0: all).
 */
static void
filter_from_args(FunctionCallInfo fcinfo, LogChunkFilter *f, int32 *newest)
{
	memset(f, 0, sizeof(*f));
	*newest = 0;
	if (PG_NARGS() < FILTER_ARGS)
		return;
	if ((f->has_from = !PG_ARGISNULL(1)))
		f->from = PG_GETARG_TIMESTAMPTZ(1);
	if ((f->has_before = !PG_ARGISNULL(2)))
		f->before = PG_GETARG_TIMESTAMPTZ(2);
	if ((f->has_before_id = !PG_ARGISNULL(3)))
		f->before_id = PG_GETARG_INT64(3);
	if ((f->has_actor = !PG_ARGISNULL(4)))
		f->actor = text_arg(fcinfo, 4);
	if ((f->has_allowed = !PG_ARGISNULL(5)))
		f->allowed = PG_GETARG_BOOL(5);
	if ((f->has_risk_level = !PG_ARGISNULL(6)))
	{
		f->risk_level.ptr = DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(6)));
		f->risk_level.len = strlen(f->risk_level.ptr);
	}
	if ((f->has_policy = !PG_ARGISNULL(7)))
		f->policy = text_arg(fcinfo, 7);
	if (!PG_ARGISNULL(8))
	{
		if (PG_GETARG_INT32(8) < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("newest must be at least 1, or NULL for every decision")));
		*newest = PG_GETARG_INT32(8);
	}
}

/* A decision kept, until it becomes a row. */
typedef struct KeptDecision
{
	LogRecord	record;
	int64		id;
	uint32		ordinal;		/* its place in the chunk, from 1 */
} KeptDecision;

/* Why a decision read from a chunk cannot become a row; NULL if it can. */
static const char *
kept_decision_problem(const LogRecord *r)
{
	LogEntryCheck check = log_record_check_fields(r);

	if (check != LOG_ENTRY_OK)
		return log_entry_check_message(check);
	if (!IS_VALID_TIMESTAMP(r->decided_at))
		return "a time out of range";
	if (!pg_verifymbstr(r->actor.ptr, r->actor.len, true) ||
		!pg_verifymbstr(r->action.ptr, r->action.len, true) ||
		!pg_verifymbstr(r->resource.ptr, r->resource.len, true) ||
		!pg_verifymbstr(r->policy.ptr, r->policy.len, true) ||
		!pg_verifymbstr(r->reason.ptr, r->reason.len, true))
		return "text not in the database's encoding";
	return NULL;
}

/* Newest first: by decided_at, then id, both descending. */
static int
compare_newest_first(const void *a, const void *b)
{
	const KeptDecision *x = a;
	const KeptDecision *y = b;

	if (x->record.decided_at != y->record.decided_at)
		return x->record.decided_at > y->record.decided_at ? -1 : 1;
	return (x->id < y->id) - (x->id > y->id);
}

static void
report_damaged(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("a chunk of the decision log is damaged"),
			 errdetail_internal("%s", detail),
			 errhint("decide_verify_log() names the chunks that differ from what was logged.")));
}

PG_FUNCTION_INFO_V1(decide_decision_chunk_rows);

Datum
decide_decision_chunk_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *body;
	TupleDesc	desc;
	LogChunkReader reader;
	LogRecord	r;
	Labels	   *labels;
	LogChunkFilter filter;
	int32		newest;
	KeptDecision *kept;
	int			kept_size;
	int			n_kept = 0;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	desc = rsinfo->setDesc;
	if (fcinfo->flinfo->fn_extra == NULL)
	{
		MemoryContext caller = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		check_columns(desc, "decide.decision_chunk_rows()");
		fcinfo->flinfo->fn_extra = palloc(sizeof(Labels));
		labels_init(fcinfo->flinfo->fn_extra, desc);
		MemoryContextSwitchTo(caller);
	}
	labels = fcinfo->flinfo->fn_extra;
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	body = PG_GETARG_BYTEA_PP(0);
	filter_from_args(fcinfo, &filter, &newest);

	if (!log_chunk_open(&reader, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body)))
		report_damaged(psprintf("Its header is not a chunk's: %s.",
								log_entry_check_message(reader.failure)));

	/*
	 * First the bytes: the decisions the filters keep are remembered (their
	 * strings point into the body); the others are passed over by their
	 * size.  Only those that become rows have their fields checked: a page
	 * of a rare key passes over thousands of decisions for each it shows.
	 */
	/* Sized as the decisions come: a damaged header may count any number. */
	kept_size = Min(Max(log_chunk_count(&reader), 1), 256);
	kept = palloc(sizeof(KeptDecision) * kept_size);
	while (log_chunk_next_kept(&reader, &filter, &r))
	{
		if (n_kept == kept_size)
		{
			kept_size *= 2;
			kept = repalloc(kept, sizeof(KeptDecision) * kept_size);
		}
		kept[n_kept].record = r;
		kept[n_kept].id = reader.id;
		kept[n_kept++].ordinal = reader.count - reader.left;
	}
	if (reader.failure != LOG_ENTRY_OK)
		report_damaged(psprintf("Decision %u of its %u: %s.", reader.count - reader.left,
								reader.count, log_entry_check_message(reader.failure)));

	/* A page needs at most its own size of a chunk's decisions, the newest. */
	if (newest > 0 && n_kept > newest)
	{
		qsort(kept, n_kept, sizeof(KeptDecision), compare_newest_first);
		n_kept = newest;
	}

	/* Then the rows, for the decisions kept only, each checked first. */
	for (i = 0; i < n_kept; i++)
	{
		const LogRecord *k = &kept[i].record;
		const char *problem = kept_decision_problem(k);
		Datum		values[ROW_COLUMNS];
		bool		nulls[ROW_COLUMNS];

		if (problem)
			report_damaged(psprintf("Decision %u of its %u: %s.", kept[i].ordinal, reader.count,
									problem));
		memset(nulls, false, sizeof(nulls));
		values[ROW_ID] = Int64GetDatum(kept[i].id);
		values[ROW_DECIDED_AT] = TimestampTzGetDatum(k->decided_at);
		values[ROW_ACTOR] = text_of(k->actor);
		values[ROW_ACTION] = text_of(k->action);
		values[ROW_RESOURCE] = text_of(k->resource);
		values[ROW_ALLOWED] = BoolGetDatum(k->allowed);
		values[ROW_EFFECT] = labels->effect[k->allowed ? 1 : 0];
		nulls[ROW_POLICY] = nulls[ROW_RISK_LEVEL] = !k->has_policy;
		nulls[ROW_PRIORITY] = nulls[ROW_CONDITION_UNKNOWN] = !k->has_policy || k->priority_unknown;
		if (k->has_policy)
		{
			values[ROW_POLICY] = text_of(k->policy);
			if (!risk_level(labels, k->risk_level, &values[ROW_RISK_LEVEL]))
				report_damaged(psprintf("Decision " INT64_FORMAT ": a risk level its type does not have.",
										kept[i].id));
			values[ROW_PRIORITY] = Int32GetDatum(k->priority);
			values[ROW_CONDITION_UNKNOWN] = BoolGetDatum(k->condition_unknown);
		}
		values[ROW_REASON] = CStringGetTextDatum(record_reason(k));
		values[ROW_EPOCH] = Int64GetDatum(k->epoch);
		values[ROW_SOURCE] = labels->source[k->source];
		nulls[ROW_CONTEXT] = k->context.len == 0;
		if (k->context.len > 0)
			values[ROW_CONTEXT] = DirectFunctionCall1(jsonb_in,
													  CStringGetDatum(pnstrdup(k->context.ptr,
																			   k->context.len)));
		tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
	}
	return (Datum) 0;
}

/* A text column as a string of the record (empty when NULL). */
static DecStr
text_field(Datum *values, bool *nulls, int column)
{
	DecStr		s = {"", 0};

	if (!nulls[column])
	{
		text	   *t = DatumGetTextPP(values[column]);

		s.ptr = VARDATA_ANY(t);
		s.len = VARSIZE_ANY_EXHDR(t);
	}
	return s;
}

static void
refuse_row(Datum *values, bool *nulls, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("a row of the decision log cannot be stored as given"),
			 nulls[ROW_ID] ? errdetail("A row without an id: %s.", problem) :
			 errdetail("Decision " INT64_FORMAT ": %s.", DatumGetInt64(values[ROW_ID]), problem)));
}

/* One row of decide.decisions as a record; its strings point into the row. */
static void
row_to_record(HeapTupleHeader row, TupleDesc desc, const Labels *labels, LogRecord *r, int64 *id)
{
	HeapTupleData tuple;
	Datum		values[ROW_COLUMNS];
	bool		nulls[ROW_COLUMNS];
	LogEntryCheck check;
	int			i;

	tuple.t_len = HeapTupleHeaderGetDatumLength(row);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = row;
	heap_deform_tuple(&tuple, desc, values, nulls);

	if (nulls[ROW_ID] || nulls[ROW_DECIDED_AT] || nulls[ROW_ACTOR] || nulls[ROW_ACTION] ||
		nulls[ROW_RESOURCE] || nulls[ROW_ALLOWED] || nulls[ROW_EPOCH] || nulls[ROW_SOURCE])
		refuse_row(values, nulls,
				   "id, decided_at, actor, action, resource, allowed, epoch and source are required");
	memset(r, 0, sizeof(*r));
	*id = DatumGetInt64(values[ROW_ID]);
	r->decided_at = DatumGetTimestampTz(values[ROW_DECIDED_AT]);
	if (TIMESTAMP_NOT_FINITE(r->decided_at))
		refuse_row(values, nulls, "decided_at must be finite");
	r->actor = text_field(values, nulls, ROW_ACTOR);
	r->action = text_field(values, nulls, ROW_ACTION);
	r->resource = text_field(values, nulls, ROW_RESOURCE);
	r->allowed = DatumGetBool(values[ROW_ALLOWED]);
	if (!nulls[ROW_EFFECT] && values[ROW_EFFECT] != labels->effect[r->allowed ? 1 : 0])
		refuse_row(values, nulls, "the effect must be allow where allowed is true and deny where false");
	r->has_policy = !nulls[ROW_POLICY];
	if (r->has_policy != !nulls[ROW_RISK_LEVEL])
		refuse_row(values, nulls, "a policy and its risk level go together");
	if (r->has_policy)
	{
		r->policy = text_field(values, nulls, ROW_POLICY);
		r->risk_level.ptr = DatumGetCString(DirectFunctionCall1(enum_out, values[ROW_RISK_LEVEL]));
		r->risk_level.len = strlen(r->risk_level.ptr);
		r->priority_unknown = nulls[ROW_PRIORITY];
		r->priority = r->priority_unknown ? 0 : DatumGetInt32(values[ROW_PRIORITY]);
		if (r->priority_unknown != nulls[ROW_CONDITION_UNKNOWN])
			refuse_row(values, nulls, "a priority and condition_unknown go together");
		r->condition_unknown = !nulls[ROW_CONDITION_UNKNOWN] &&
			DatumGetBool(values[ROW_CONDITION_UNKNOWN]);
	}
	else if (!nulls[ROW_PRIORITY] || !nulls[ROW_CONDITION_UNKNOWN])
		refuse_row(values, nulls, "a row without a policy has no priority and no condition_unknown");
	r->epoch = DatumGetInt64(values[ROW_EPOCH]);
	for (i = 0; i < LOG_SOURCES; i++)
		if (values[ROW_SOURCE] == labels->source[i])
			r->source = (LogSource) i;
	if (!nulls[ROW_CONTEXT])
	{
		Jsonb	   *context = DatumGetJsonbP(values[ROW_CONTEXT]);

		if (!JB_ROOT_IS_OBJECT(context))
			refuse_row(values, nulls, "a context must be a JSON object");
		r->context.ptr = JsonbToCString(NULL, &context->root, VARSIZE(context));
		r->context.len = strlen(r->context.ptr);
		r->context_format = LOG_CONTEXT_JSON_TEXT;
		if (r->context.len > LOG_MAX_CONTEXT_TEXT_BYTES ||
			!log_json_object_is_safe(r->context.ptr, r->context.len))
		{
			/* As the worker logs such a context: none, but said here. */
			ereport(WARNING,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("decision " INT64_FORMAT " is stored without its context", *id),
					 errdetail("A context in the log takes at most %d bytes as JSON text and nests at most %d deep.",
							   LOG_MAX_CONTEXT_TEXT_BYTES, LOG_MAX_JSON_DEPTH)));
			r->context.len = 0;
		}
	}
	check = log_record_check_fields(r);
	if (check == LOG_ENTRY_BAD_FLAGS)
		refuse_row(values, nulls, "only a policy allows, and a condition that could not be evaluated only denies");
	if (check != LOG_ENTRY_OK)
		refuse_row(values, nulls, log_entry_check_message(check));
	/* Stored only where it is not what the row derives. */
	if (!nulls[ROW_REASON])
	{
		DecStr		given = text_field(values, nulls, ROW_REASON);
		char	   *derived = (r->priority_unknown) ? NULL : record_reason(r);

		if (derived == NULL || strlen(derived) != given.len ||
			memcmp(derived, given.ptr, given.len) != 0)
		{
			r->has_reason = true;
			r->reason = given;
		}
	}
	else if (r->priority_unknown)
		refuse_row(values, nulls, "a row with a policy but no priority needs its reason");
}

PG_FUNCTION_INFO_V1(decide_decision_chunk);

Datum
decide_decision_chunk(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	Oid			row_type = ARR_ELEMTYPE(array);
	int32		row_typmod;
	TupleDesc	desc;
	Datum	   *rows;
	bool	   *row_nulls;
	int			n;
	int			i;
	LogRecord  *records;
	int		   *order;
	int64	   *ids;
	Labels		labels;
	bytea	   *body;
	Size		size;

	if (!type_is_rowtype(row_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("decide.decision_chunk() takes an array of rows of decide.decisions")));
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("decide.decision_chunk() takes a one-dimensional array")));
	deconstruct_array(array, row_type, -1, false, TYPALIGN_DOUBLE, &rows, &row_nulls, &n);
	if (n == 0 || row_nulls[0])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a chunk of the decision log holds at least one decision, and no NULL rows")));
	/* Rows of an anonymous record type carry their type in each row. */
	row_type = HeapTupleHeaderGetTypeId(DatumGetHeapTupleHeader(rows[0]));
	row_typmod = HeapTupleHeaderGetTypMod(DatumGetHeapTupleHeader(rows[0]));
	desc = lookup_rowtype_tupdesc(row_type, row_typmod);
	check_column_types(desc, get_func_namespace(fcinfo->flinfo->fn_oid));
	labels_init(&labels, desc);
	records = palloc(sizeof(LogRecord) * n);
	order = palloc(sizeof(int) * n);
	ids = palloc(sizeof(int64) * n);
	for (i = 0; i < n; i++)
	{
		if (row_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a chunk of the decision log holds no NULL rows")));
		if (HeapTupleHeaderGetTypeId(DatumGetHeapTupleHeader(rows[i])) != row_type ||
			HeapTupleHeaderGetTypMod(DatumGetHeapTupleHeader(rows[i])) != row_typmod)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the rows of a chunk of the decision log are of one row type")));
		row_to_record(DatumGetHeapTupleHeader(rows[i]), desc, &labels, &records[i], &ids[i]);
		order[i] = i;
	}
	ReleaseTupleDesc(desc);
	size = log_chunk_bound(records, order, n);
	body = palloc(VARHDRSZ + size);
	size = log_chunk_encode(records, order, ids, n, VARDATA(body));
	SET_VARSIZE(body, VARHDRSZ + size);
	PG_RETURN_BYTEA_P(body);
}

PG_FUNCTION_INFO_V1(decide_decision_key_times);

Datum
decide_decision_key_times(PG_FUNCTION_ARGS)
{
	TimestampTz first_at = PG_GETARG_TIMESTAMPTZ(0);
	ArrayType  *offsets = PG_GETARG_ARRAYTYPE_P(1);
	TimestampTz from = PG_GETARG_TIMESTAMPTZ(2);
	TimestampTz to = PG_GETARG_TIMESTAMPTZ(3);
	int			n;
	int			i;
	int			kept = 0;
	const int32 *offset;
	Datum	   *times;

	if (ARR_NDIM(offsets) > 1 || ARR_HASNULL(offsets) || ARR_ELEMTYPE(offsets) != INT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offsets must be a one-dimensional integer array without NULLs")));
	n = ArrayGetNItems(ARR_NDIM(offsets), ARR_DIMS(offsets));
	offset = (const int32 *) ARR_DATA_PTR(offsets);
	times = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		TimestampTz at;

		/* Out of range: not a time a key row can hold, so never in [from, to]. */
		if (pg_add_s64_overflow(first_at, offset[i], &at) || !IS_VALID_TIMESTAMP(at))
			continue;
		if (at >= from && at <= to)
			times[kept++] = TimestampTzGetDatum(at);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(times, kept, TIMESTAMPTZOID, sizeof(TimestampTz),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

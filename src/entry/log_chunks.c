/*
 * log_chunks.c — decide.decision_chunk_rows(first_id, body): the decisions
 * of one chunk of the decision log (src/core/log_chunk.h) as rows with the
 * log's columns.  A chunk whose bytes are not a chunk's (edited by hand) is
 * an error naming what is wrong, never a wrong row.
 *
 * WIP (branch chunked-log): the view, the page function, verification and
 * replay are to read the log through it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "log_chunk.h"

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
	ROW_EPOCH,
	ROW_SOURCE,
	ROW_CONTEXT,
	ROW_PRIORITY,
	ROW_CONDITION_UNKNOWN,
	ROW_COLUMNS
};

#define RISK_LABELS 8

/* Enum values by label, looked up once per call. */
typedef struct Labels
{
	Oid			risk_type;
	int			n_risks;
	char	   *risk_names[RISK_LABELS];
	Datum		risk_values[RISK_LABELS];
	Datum		effect[2];		/* deny, allow */
} Labels;

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
	label = pnstrdup(name.ptr, name.len);
	tuple = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(labels->risk_type),
							CStringGetDatum(label));
	if (!HeapTupleIsValid(tuple))
		return false;
	*value = ObjectIdGetDatum(((Form_pg_enum) GETSTRUCT(tuple))->oid);
	ReleaseSysCache(tuple);
	if (labels->n_risks < RISK_LABELS)
	{
		labels->risk_names[labels->n_risks] = label;
		labels->risk_values[labels->n_risks++] = *value;
	}
	return true;
}

PG_FUNCTION_INFO_V1(decide_decision_chunk_rows);

Datum
decide_decision_chunk_rows(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	bytea	   *body = PG_GETARG_BYTEA_PP(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	LogChunkReader reader;
	LogRecord	r;
	Labels		labels;
	const char *problem = NULL;

	InitMaterializedSRF(fcinfo, 0);
	desc = rsinfo->setDesc;
	if (desc->natts != ROW_COLUMNS)
		elog(ERROR, "decide.decision_chunk_rows() returns %d columns, not %d", desc->natts,
			 ROW_COLUMNS);
	memset(&labels, 0, sizeof(labels));
	labels.risk_type = TupleDescAttr(desc, ROW_RISK_LEVEL)->atttypid;
	labels.effect[0] = DirectFunctionCall2(enum_in, CStringGetDatum("deny"),
										   ObjectIdGetDatum(TupleDescAttr(desc, ROW_EFFECT)->atttypid));
	labels.effect[1] = DirectFunctionCall2(enum_in, CStringGetDatum("allow"),
										   ObjectIdGetDatum(TupleDescAttr(desc, ROW_EFFECT)->atttypid));

	if (log_chunk_open(&reader, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body)))
		while (log_chunk_next(&reader, &r))
		{
			Datum		values[ROW_COLUMNS];
			bool		nulls[ROW_COLUMNS];

			memset(nulls, false, sizeof(nulls));
			values[ROW_ID] = Int64GetDatum(id++);
			if (!IS_VALID_TIMESTAMP(r.decided_at))
				problem = "a time out of range";
			else if (!pg_verifymbstr(r.actor.ptr, r.actor.len, true) ||
					 !pg_verifymbstr(r.action.ptr, r.action.len, true) ||
					 !pg_verifymbstr(r.resource.ptr, r.resource.len, true) ||
					 !pg_verifymbstr(r.policy.ptr, r.policy.len, true))
				problem = "text not in the database's encoding";
			if (problem)
				break;
			values[ROW_DECIDED_AT] = TimestampTzGetDatum(r.decided_at);
			values[ROW_ACTOR] = text_of(r.actor);
			values[ROW_ACTION] = text_of(r.action);
			values[ROW_RESOURCE] = text_of(r.resource);
			values[ROW_ALLOWED] = BoolGetDatum(r.allowed);
			values[ROW_EFFECT] = labels.effect[r.allowed ? 1 : 0];
			nulls[ROW_POLICY] = nulls[ROW_RISK_LEVEL] = !r.has_policy;
			nulls[ROW_PRIORITY] = nulls[ROW_CONDITION_UNKNOWN] = !r.has_policy;
			if (r.has_policy)
			{
				values[ROW_POLICY] = text_of(r.policy);
				if (!risk_level(&labels, r.risk_level, &values[ROW_RISK_LEVEL]))
				{
					problem = "a risk level its type does not have";
					break;
				}
				values[ROW_PRIORITY] = Int32GetDatum(r.priority);
				values[ROW_CONDITION_UNKNOWN] = BoolGetDatum(r.condition_unknown);
			}
			values[ROW_EPOCH] = Int64GetDatum(r.epoch);
			values[ROW_SOURCE] = CStringGetTextDatum(log_source_names[r.source]);
			nulls[ROW_CONTEXT] = r.context.len == 0;
			if (r.context.len > 0)
				values[ROW_CONTEXT] = DirectFunctionCall1(jsonb_in,
														  CStringGetDatum(pnstrdup(r.context.ptr,
																				   r.context.len)));
			tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
		}
	if (reader.failure != LOG_ENTRY_OK || problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a chunk of the decision log is damaged"),
				 errdetail("The chunk of decisions from id " INT64_FORMAT ": %s.",
						   PG_GETARG_INT64(0),
						   problem ? problem : log_entry_check_message(reader.failure))));
	return (Datum) 0;
}

/*
 * listing_functions.c — the SQL functions of authorized listing:
 * decide_resources() and decide_actors(), whose rows go to a materialized
 * result set, and decide_row_allowed(), one row of a table at a time for
 * row-level security and WHERE.  Checks the arguments and hands the request
 * to listing.c.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "decision.h"
#include "input.h"
#include "listing.h"

/* Every argument is required: NULL is an error (the context's says what to pass). */
static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name),
				 strcmp(name, "context") == 0 ? errhint("Pass '{}' for no context.") : 0));
}

static text *
required_text(FunctionCallInfo fcinfo, int argno, const char *name)
{
	require_arg(fcinfo, argno, name);
	return PG_GETARG_TEXT_PP(argno);
}

static void
emit_row(DecStr uid, const char *policy, void *arg)
{
	ReturnSetInfo *rsinfo = arg;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = PointerGetDatum(cstring_to_text_with_len(uid.ptr, uid.len));
	values[1] = CStringGetTextDatum(policy);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static void
discard_rows(void *arg)
{
	ReturnSetInfo *rsinfo = arg;

	tuplestore_clear(rsinfo->setResult);
}

/*
 * Arguments: the two bound parts (in the order actor, action, resource,
 * the free one left out), context, prefix, after, page_size.
 */
static Datum
list_allowed(FunctionCallInfo fcinfo, DecDim free_dim)
{
	ListingRequest request;
	int			argno = 0;
	int			d;

	memset(&request, 0, sizeof(request));
	request.free_dim = free_dim;
	for (d = 0; d < DEC_NDIMS; d++)
	{
		DecisionRequest parts;

		if (d == (int) free_dim)
			continue;
		decision_set_uid(&parts, d,
						 required_text(fcinfo, argno, decision_dimension_names[d]),
						 decision_dimension_names[d]);
		request.uid[d] = parts.uid[d];
		argno++;
	}
	require_arg(fcinfo, 2, "context");
	request.context = PG_GETARG_JSONB_P(2);
	decide_validate_context(request.context);

	request.prefix = decide_text_str(required_text(fcinfo, 3, "prefix"));
	if (request.prefix.len > DECIDE_MAX_UID_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("prefix is %u bytes long, a uid at most %d",
						request.prefix.len, DECIDE_MAX_UID_BYTES),
				 errdetail("No uid could start with it.")));

	if (!PG_ARGISNULL(4))
	{
		text	   *after = PG_GETARG_TEXT_PP(4);

		request.has_after = true;
		request.after.ptr = VARDATA_ANY(after);
		request.after.len = VARSIZE_ANY_EXHDR(after);
		decide_validate_uid("after", request.after.ptr, request.after.len);
	}

	request.page_size = -1;
	if (!PG_ARGISNULL(5))
	{
		int32		page_size = PG_GETARG_INT32(5);

		if (page_size < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("page_size must not be negative"),
					 errhint("Pass NULL for every row.")));
		request.page_size = page_size;
	}

	InitMaterializedSRF(fcinfo, 0);
	listing_run(&request, emit_row, discard_rows, fcinfo->resultinfo);
	return (Datum) 0;
}

/* decide_resources(actor, action, context, prefix, after, page_size) */
PG_FUNCTION_INFO_V1(decide_resources);
Datum
decide_resources(PG_FUNCTION_ARGS)
{
	return list_allowed(fcinfo, DEC_RESOURCE);
}

/* decide_actors(action, resource, context, prefix, after, page_size) */
PG_FUNCTION_INFO_V1(decide_actors);
Datum
decide_actors(PG_FUNCTION_ARGS)
{
	return list_allowed(fcinfo, DEC_ACTOR);
}

/* What decide_row_allowed() keeps for the rest of the query. */
typedef struct RowCheck
{
	ListingCheck *check;
	StringInfoData uid;			/* the resource uid being checked */
} RowCheck;

/*
 * decide_row_allowed(actor, action, resource_prefix, resource_key, context):
 * decide_allowed(actor, action, resource_prefix || resource_key, context),
 * with a listing's plan kept for the rest of the query (fn_extra) while
 * actor, action, prefix and context stay the same.  The key is a bigint or
 * a text.
 */
static Datum
row_allowed(FunctionCallInfo fcinfo, bool text_key)
{
	RowCheck   *state = fcinfo->flinfo->fn_extra;
	ListingRequest request;
	DecStr		uid;
	bool		same_request;
	int64		number = 0;
	int			argno;

	static const char *const names[] = {"actor", "action", "resource_prefix", "resource_key",
	"context"};

	for (argno = 0; argno < lengthof(names); argno++)
		require_arg(fcinfo, argno, names[argno]);
	if (state == NULL)
	{
		MemoryContext caller = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		state = palloc0(sizeof(RowCheck));
		initStringInfo(&state->uid);
		fcinfo->flinfo->fn_extra = state;
		MemoryContextSwitchTo(caller);
	}

	memset(&request, 0, sizeof(request));
	request.free_dim = DEC_RESOURCE;
	request.uid[DEC_ACTOR] = decide_text_str(PG_GETARG_TEXT_PP(0));
	request.uid[DEC_ACTION] = decide_text_str(PG_GETARG_TEXT_PP(1));
	request.context = PG_GETARG_JSONB_P(4);
	request.prefix = decide_text_str(PG_GETARG_TEXT_PP(2));
	request.page_size = -1;
	/* Arguments are checked when they change, not for every row. */
	same_request = listing_check_same_request(state->check, &request);
	if (!same_request)
	{
		decide_validate_uid("actor", request.uid[DEC_ACTOR].ptr, request.uid[DEC_ACTOR].len);
		decide_validate_uid("action", request.uid[DEC_ACTION].ptr, request.uid[DEC_ACTION].len);
		decide_validate_context(request.context);
		if (request.prefix.len > 0)
			decide_validate_uid("resource_prefix", request.prefix.ptr, request.prefix.len);
	}

	resetStringInfo(&state->uid);
	appendBinaryStringInfo(&state->uid, request.prefix.ptr,
						   Min(request.prefix.len, DECIDE_MAX_UID_BYTES + 1));
	if (text_key)
	{
		text	   *key = PG_GETARG_TEXT_PP(3);

		appendBinaryStringInfo(&state->uid, VARDATA_ANY(key),
							   Min(VARSIZE_ANY_EXHDR(key), DECIDE_MAX_UID_BYTES + 1));
	}
	else
	{
		number = PG_GETARG_INT64(3);
		enlargeStringInfo(&state->uid, MAXINT8LEN + 1);
		state->uid.len += pg_lltoa(number, state->uid.data + state->uid.len);
	}
	uid.ptr = state->uid.data;
	uid.len = state->uid.len;
	/* A valid prefix and digits make a valid uid if it is not too long. */
	if (text_key || uid.len > DECIDE_MAX_UID_BYTES)
		decide_validate_uid("resource", uid.ptr, uid.len);
	PG_RETURN_BOOL(listing_check(&state->check, fcinfo->flinfo->fn_mcxt, &request, same_request,
								 uid, text_key ? NULL : &number));
}

PG_FUNCTION_INFO_V1(decide_row_allowed);
Datum
decide_row_allowed(PG_FUNCTION_ARGS)
{
	return row_allowed(fcinfo, false);
}

PG_FUNCTION_INFO_V1(decide_row_allowed_text);
Datum
decide_row_allowed_text(PG_FUNCTION_ARGS)
{
	return row_allowed(fcinfo, true);
}

/*
 * listing_functions.c — the SQL functions of authorized listing:
 * decide_resources() and decide_actors().  Checks the arguments and hands
 * the request to listing.c; rows go to a materialized result set.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "decision.h"
#include "input.h"
#include "listing.h"

static text *
required_text(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
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
	text	   *prefix;
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
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("context must not be NULL"),
				 errhint("Pass '{}' for no context.")));
	request.context = PG_GETARG_JSONB_P(2);
	decide_validate_context(request.context);

	prefix = required_text(fcinfo, 3, "prefix");
	request.prefix.ptr = VARDATA_ANY(prefix);
	request.prefix.len = VARSIZE_ANY_EXHDR(prefix);
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

/*
 * decide.c — module initialisation (settings, shared memory hooks) and the
 * SQL-callable decision functions: decide(), decide_allowed(),
 * decide_many(), decide_explain(), decide_epoch().  They turn arguments
 * into requests and decisions into rows; decision.c does the deciding.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "audit_log.h"
#include "change_history.h"
#include "decision.h"
#include "decision_cache.h"
#include "entity_images.h"
#include "entity_store.h"
#include "hot_keys.h"
#include "input.h"
#include "listing_cache.h"
#include "redis_cache.h"
#include "redis_client.h"
#include "shared_sets.h"
#include "stats.h"
#include "launcher.h"
#include "worker_registry.h"
#include "worker_warm.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
decide_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(stats_shmem_size());
	decision_cache_shmem_request();
	audit_log_shmem_request();
	hot_keys_shmem_request();
	RequestAddinShmemSpace(worker_registry_shmem_size(audit_log_max_databases()));
	shared_sets_shmem_request();
}

static void
decide_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	stats_shmem_startup();
	decision_cache_shmem_startup();
	audit_log_shmem_startup();
	hot_keys_shmem_startup();
	worker_registry_shmem_startup(audit_log_max_databases());
	shared_sets_shmem_startup();
}

void
_PG_init(void)
{
	stats_init_local();
	entity_store_define_gucs();
	listing_cache_define_gucs();
	decision_cache_define_gucs();
	audit_log_define_gucs();
	redis_client_define_gucs();
	redis_cache_define_gucs();
	shared_sets_define_gucs();
	warm_define_gucs();
	change_history_define_gucs();
	MarkGUCPrefixReserved("decide");
	policy_set_init();

	/*
	 * Shared memory (L2, stats, log rings, hot keys, shared policy sets),
	 * the launcher and its workers only when preloaded.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = decide_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = decide_shmem_startup;
		launcher_register();
		launcher_install_hooks();
	}
}

/* Reads and validates decide(actor, action, resource, context) arguments. */
static void
request_from_args(FunctionCallInfo fcinfo, DecisionRequest *request)
{
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		if (PG_ARGISNULL(d))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", decision_dimension_names[d])));
		decision_set_uid(request, d, PG_GETARG_TEXT_PP(d), decision_dimension_names[d]);
	}
	if (PG_NARGS() < 4)
		request->context = decision_empty_context();
	else if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("context must not be NULL"),
				 errhint("Pass '{}' for a request without context.")));
	else
		request->context = PG_GETARG_JSONB_P(3);
	decide_validate_context(request->context);
}

#define DECISION_COLUMNS 7

/* allowed, effect, policy, risk_level, reason, epoch, source */
static void
decision_to_values(const Decision *decision, Datum *values, bool *nulls)
{
	memset(nulls, 0, sizeof(bool) * DECISION_COLUMNS);
	values[0] = BoolGetDatum(decision->allowed);
	values[1] = CStringGetTextDatum(decision->allowed ? "allow" : "deny");
	if (decision->policy)
	{
		values[2] = CStringGetTextDatum(policy_name(decision->set, decision->policy));
		values[3] = CStringGetTextDatum(policy_risk_level(decision->set, decision->policy));
	}
	else
		nulls[2] = nulls[3] = true;
	values[4] = CStringGetTextDatum(decision_reason(decision->allowed,
													decision->policy ? policy_name(decision->set, decision->policy) : NULL,
													decision->policy ? decision->policy->priority : 0,
													decision->condition_unknown));
	values[5] = Int64GetDatum(decision->epoch);
	values[6] = CStringGetTextDatum(log_source_names[decision->source]);
}

/*
 * The descriptor of decide()'s result type, kept for the life of the
 * backend: each execution of a statement calls decide() through a new
 * FmgrInfo, so fn_extra would not outlive it.  Keyed by the type's OID,
 * which changes if the extension is dropped and created again.
 */
static Oid	decision_type = InvalidOid;
static TupleDesc decision_desc = NULL;

static TupleDesc
decision_result_desc(FunctionCallInfo fcinfo)
{
	Oid			type = get_fn_expr_rettype(fcinfo->flinfo);
	TupleDesc	desc;
	MemoryContext old;

	if (OidIsValid(type) && type == decision_type)
		return decision_desc;
	/* Declared with OUT parameters (before 0.5.0): per statement. */
	if (fcinfo->flinfo->fn_extra)
		return fcinfo->flinfo->fn_extra;
	if (get_call_result_type(fcinfo, &type, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("decide() must be declared to return a composite type")));
	if (type == decision_type)
		return decision_desc;
	old = MemoryContextSwitchTo(type == RECORDOID ? fcinfo->flinfo->fn_mcxt : TopMemoryContext);
	desc = BlessTupleDesc(CreateTupleDescCopy(desc));
	MemoryContextSwitchTo(old);
	if (type == RECORDOID)
	{
		fcinfo->flinfo->fn_extra = desc;
		return desc;
	}
	if (decision_desc)
		FreeTupleDesc(decision_desc);
	decision_desc = desc;
	decision_type = type;
	return desc;
}

/* decide()'s declared row type must be the one this library builds. */
static void
check_decision_desc(TupleDesc desc)
{
	if (desc->natts != DECISION_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("decide() is declared with %d result columns, this library returns %d",
						desc->natts, DECISION_COLUMNS),
				 errhint("Run ALTER EXTENSION decide UPDATE.")));
}

/* A decision as a row of decide.decision. */
static Datum
decision_datum(TupleDesc desc, const Decision *decision)
{
	Datum		values[DECISION_COLUMNS];
	bool		nulls[DECISION_COLUMNS];

	decision_to_values(decision, values, nulls);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

PG_FUNCTION_INFO_V1(decide_decide);
Datum
decide_decide(PG_FUNCTION_ARGS)
{
	DecisionRequest request;
	Decision	decision;
	TupleDesc	desc = decision_result_desc(fcinfo);

	check_decision_desc(desc);
	request_from_args(fcinfo, &request);
	decision_make(&request, &decision, false);
	PG_RETURN_DATUM(decision_datum(desc, &decision));
}

PG_FUNCTION_INFO_V1(decide_allowed);
Datum
decide_allowed(PG_FUNCTION_ARGS)
{
	DecisionRequest request;
	Decision	decision;

	request_from_args(fcinfo, &request);
	decision_make(&request, &decision, false);
	PG_RETURN_BOOL(decision.allowed);
}

/* Empties the caller's caches and the shared one (not Redis). */
PG_FUNCTION_INFO_V1(decide_cache_reset);
Datum
decide_cache_reset(PG_FUNCTION_ARGS)
{
	decision_cache_reset(CACHE_L1);
	decision_cache_reset(CACHE_L2);
	listing_cache_reset();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(decide_epoch);
Datum
decide_epoch(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(policy_set_current()->epoch);
}


/* Elements of a one-dimensional array argument of decide_many(). */
static int
array_argument(FunctionCallInfo fcinfo, int argno, const char *name, Oid element_type,
			   Datum **elems, bool **elem_nulls)
{
	ArrayType  *array;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			n;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name)));
	get_typlenbyvalalign(element_type, &typlen, &typbyval, &typalign);
	deconstruct_array(array, element_type, typlen, typbyval, typalign, elems, elem_nulls, &n);
	if (n > DECIDE_MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("decide_many() takes at most %d requests", DECIDE_MAX_BATCH),
				 errdetail("%s has %d elements.", name, n)));
	return n;
}

PG_FUNCTION_INFO_V1(decide_many);
Datum
decide_many(PG_FUNCTION_ARGS)
{
	static const char *const arg_names[DEC_NDIMS] = {"actors", "actions", "resources"};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *elems[DEC_NDIMS];
	bool	   *elem_nulls[DEC_NDIMS];
	Datum	   *contexts = NULL;
	bool	   *context_nulls = NULL;
	int			n = 0;
	int			i;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		int			count = array_argument(fcinfo, d, arg_names[d], TEXTOID,
										   &elems[d], &elem_nulls[d]);

		if (d > 0 && count != n)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("actors, actions and resources must have the same length"),
					 errdetail("actors has %d elements, %s has %d.", n, arg_names[d], count)));
		n = count;
	}
	if (!PG_ARGISNULL(3) &&
		array_argument(fcinfo, 3, "contexts", JSONBOID, &contexts, &context_nulls) != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("contexts must have one element per request, or be NULL")));

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < n; i++)
	{
		DecisionRequest request;
		Decision	decision;
		Datum		values[DECISION_COLUMNS + 1];
		bool		nulls[DECISION_COLUMNS + 1];

		CHECK_FOR_INTERRUPTS();
		for (d = 0; d < DEC_NDIMS; d++)
		{
			char		what[32];

			snprintf(what, sizeof(what), "%s[%d]", arg_names[d], i + 1);
			if (elem_nulls[d][i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s must not be NULL", what)));
			decision_set_uid(&request, d, DatumGetTextPP(elems[d][i]), what);
		}
		if (contexts == NULL || context_nulls[i])
			request.context = decision_empty_context();
		else
			request.context = DatumGetJsonbP(contexts[i]);
		decide_validate_context(request.context);

		decision_make(&request, &decision, false);
		values[0] = Int32GetDatum(i + 1);
		nulls[0] = false;
		decision_to_values(&decision, values + 1, nulls + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static void
emit_explain_row(const ExplainRow *row, void *arg)
{
	ReturnSetInfo *rsinfo = arg;
	Datum		values[11];
	bool		nulls[11] = {0};
	int			d;

	values[0] = Int32GetDatum(row->rank);
	values[1] = CStringGetTextDatum(policy_name(row->set, row->policy));
	values[2] = CStringGetTextDatum(row->policy->effect == DEC_DENY ? "deny" : "allow");
	values[3] = Int32GetDatum(row->policy->priority);
	values[4] = CStringGetTextDatum(policy_risk_level(row->set, row->policy));
	for (d = 0; d < DEC_NDIMS; d++)
		values[5 + d] = BoolGetDatum(row->matched[d]);
	if (row->condition)
		values[8] = CStringGetTextDatum(row->condition);
	else
		nulls[8] = true;
	values[9] = BoolGetDatum(row->decisive);
	values[10] = CStringGetTextDatum(row->note);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * One row per active policy that matches at least one part of the request,
 * in rank order, with what matched, the condition's value, and whether it
 * decided.
 */
PG_FUNCTION_INFO_V1(decide_explain);
Datum
decide_explain(PG_FUNCTION_ARGS)
{
	DecisionRequest request;

	request_from_args(fcinfo, &request);
	InitMaterializedSRF(fcinfo, 0);
	decision_explain(&request, NULL, emit_explain_row, fcinfo->resultinfo);
	return (Datum) 0;
}

/*
 * As of an epoch: decide() and decide_explain() with a fifth argument,
 * at_epoch, evaluate under the policies and entities of that epoch, rebuilt
 * from the change history (decide_policies_at(), decide_entities_at(), in
 * the schema of the calling function, as the caller: only roles that may
 * read the history may ask).  Audit queries: nothing is logged, counted as
 * a decision, or cached where live decisions look.
 *
 * The set last built is kept while the live set it was built beside is
 * current: an epoch's state is rebuilt from the live tables and the history
 * after it, and neither changes without the epoch moving (retention only
 * deletes epochs, which a kept set then still answers for, correctly).
 */
static PolicySet *as_of_set = NULL;
static uint64 as_of_live_generation = 0;

static PolicySet *
as_of_set_for(FunctionCallInfo fcinfo)
{
	PolicySet  *live = policy_set_current();
	Oid			functions_schema = get_func_namespace(fcinfo->flinfo->fn_oid);
	MemoryContext caller = CurrentMemoryContext;
	PolicySet  *set;
	int64		epoch;

	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("at_epoch must not be NULL"),
				 errhint("Call the function without at_epoch to decide under the current policies.")));
	epoch = PG_GETARG_INT64(4);
	if (as_of_set && as_of_set->epoch == epoch && as_of_live_generation == live->generation)
		return as_of_set;
	if (as_of_set)
	{
		policy_set_free(as_of_set);
		as_of_set = NULL;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* In the caller's context until complete: an error frees it. */
	MemoryContextSwitchTo(caller);
	set = policy_set_as_of(epoch, functions_schema);
	set->as_of_entities = entity_images_as_of(epoch, functions_schema, set->context);
	SPI_finish();
	MemoryContextSetParent(set->context, TopMemoryContext);
	as_of_set = set;
	as_of_live_generation = live->generation;
	return set;
}

PG_FUNCTION_INFO_V1(decide_decide_at_epoch);
Datum
decide_decide_at_epoch(PG_FUNCTION_ARGS)
{
	DecisionRequest request;
	Decision	decision;
	TupleDesc	desc = decision_result_desc(fcinfo);

	check_decision_desc(desc);
	request_from_args(fcinfo, &request);
	decision_make_as_of(&request, as_of_set_for(fcinfo), &decision);
	PG_RETURN_DATUM(decision_datum(desc, &decision));
}

PG_FUNCTION_INFO_V1(decide_explain_at_epoch);
Datum
decide_explain_at_epoch(PG_FUNCTION_ARGS)
{
	DecisionRequest request;
	PolicySet  *set;

	request_from_args(fcinfo, &request);
	set = as_of_set_for(fcinfo);
	InitMaterializedSRF(fcinfo, 0);
	decision_explain(&request, set, emit_explain_row, fcinfo->resultinfo);
	return (Datum) 0;
}

/*
 * decide.c — module initialisation and the SQL-callable decision functions:
 * decide(), decide_allowed(), decide_many(), decide_explain(), decide_epoch().
 *
 * One request goes: validate the arguments (input.c), take the current
 * policy set (policy_set.c), resolve the three entities with their ancestors
 * (entity_store.c), and let the evaluator (evaluator.c) pick the deciding
 * policy, evaluating conditions (condition.c) only as it needs them.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "condition.h"
#include "decision_cache.h"
#include "entity_store.h"
#include "evaluator.h"
#include "input.h"
#include "policy_set.h"
#include "stats.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* The arguments of one request, validated. */
typedef struct DecisionRequest
{
	DecStr		uid[DEC_NDIMS];
	Jsonb	   *context;
} DecisionRequest;

typedef struct Decision
{
	bool		allowed;
	const PolicyInfo *policy;	/* NULL: no policy matched */
	bool		condition_unknown;
	int64		epoch;
	const char *source;
} Decision;

/* What the evaluator's condition callback needs, and what it saw. */
typedef struct EvaluationState
{
	const PolicySet *set;
	ConditionRequest condition;
	bool		used_now;		/* a condition read $now: time-dependent */
	uint32		condition_failures;
} EvaluationState;

static const char *const dimension_names[DEC_NDIMS] = {"actor", "action", "resource"};

/* Reset at the start of every decision: scratch for entities, documents. */
static MemoryContext decision_context = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
decide_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(stats_shmem_size());
	decision_cache_shmem_request();
}

static void
decide_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	stats_shmem_startup();
	decision_cache_shmem_startup();
}

void
_PG_init(void)
{
	stats_init_local();
	entity_store_define_gucs();
	decision_cache_define_gucs();
	MarkGUCPrefixReserved("decide");
	policy_set_init();

	/* Shared memory (L2, server-wide stats) only when preloaded. */
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = decide_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = decide_shmem_startup;
	}
}

static Jsonb *
empty_object(void)
{
	static Jsonb *empty = NULL;

	if (empty == NULL)
	{
		Jsonb	   *j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));

		empty = MemoryContextAlloc(TopMemoryContext, VARSIZE(j));
		memcpy(empty, j, VARSIZE(j));
	}
	return empty;
}

static void
set_uid(DecisionRequest *request, int dim, text *value, const char *what)
{
	request->uid[dim].ptr = VARDATA_ANY(value);
	request->uid[dim].len = VARSIZE_ANY_EXHDR(value);
	decide_validate_uid(what, request->uid[dim].ptr, request->uid[dim].len);
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
					 errmsg("%s must not be NULL", dimension_names[d])));
		set_uid(request, d, PG_GETARG_TEXT_PP(d), dimension_names[d]);
	}
	if (PG_NARGS() < 4)
		request->context = empty_object();
	else if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("context must not be NULL"),
				 errhint("Pass '{}' for a request without context.")));
	else
		request->context = PG_GETARG_JSONB_P(3);
	decide_validate_context(request->context);
}

static DecConditionResult
evaluate_condition(void *arg, uint32_t policy)
{
	EvaluationState *state = arg;
	const PolicyInfo *info = &state->set->policies[policy];
	DecConditionResult result;

	result = condition_evaluate(info->condition, info->condition_traits, &state->condition);
	if (info->condition_traits.uses_now)
		state->used_now = true;
	if (result == DEC_COND_UNKNOWN)
		state->condition_failures++;
	return result;
}

/*
 * Resolves the request's entities under the current policy set, reloading
 * when the epoch moves underneath.  Leaves the evaluator's request and the
 * condition document's parts in *state.
 */
static void
prepare_evaluation(const DecisionRequest *request, EvaluationState *state,
				   DecRequest *evaluator_request)
{
	EntityInfo	entities[DEC_NDIMS];
	int			attempt;
	int			d;

	for (attempt = 0;; attempt++)
	{
		state->set = policy_set_current();
		if (entity_store_resolve(state->set, request->uid, DEC_NDIMS, entities))
			break;
		if (attempt == 100)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("policies and entities kept changing during the decision"),
					 errhint("Retry the request.")));
	}
	for (d = 0; d < DEC_NDIMS; d++)
		evaluator_request->dim[d] = entities[d].closure;

	memset(&state->condition, 0, sizeof(state->condition));
	state->used_now = false;
	state->condition_failures = 0;
	state->condition.actor = request->uid[DEC_ACTOR];
	state->condition.actor_attrs = entities[DEC_ACTOR].attrs;
	state->condition.action = request->uid[DEC_ACTION];
	state->condition.resource = request->uid[DEC_RESOURCE];
	state->condition.resource_attrs = entities[DEC_RESOURCE].attrs;
	state->condition.context = request->context;
}

static MemoryContext
begin_decision(void)
{
	if (decision_context == NULL)
		decision_context = AllocSetContextCreate(TopMemoryContext, "decide decision",
												 ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(decision_context);
	return MemoryContextSwitchTo(decision_context);
}

/* Looks the request up in L1, then L2 (filling L1 on an L2 hit). */
static const char *
lookup_caches(const DecisionKey *key, CachedDecision *cached)
{
	if (decision_cache_fits(CACHE_L1, key))
	{
		if (decision_cache_lookup(CACHE_L1, key, cached))
		{
			stats_count(STAT_L1_HITS, 1);
			return "l1";
		}
		stats_count(STAT_L1_MISSES, 1);
	}
	if (decision_cache_fits(CACHE_L2, key))
	{
		if (decision_cache_lookup(CACHE_L2, key, cached))
		{
			stats_count(STAT_L2_HITS, 1);
			decision_cache_store(CACHE_L1, key, cached);
			return "l2";
		}
		stats_count(STAT_L2_MISSES, 1);
	}
	return NULL;
}

static void
store_in_caches(const DecisionKey *key, const DecDecision *result,
				const EvaluationState *state)
{
	CachedDecision cached;

	cached.has_policy = result->policy >= 0;
	cached.allowed = result->allowed;
	cached.condition_unknown = result->condition_unknown;
	cached.policy_id = result->policy >= 0 ? state->set->policies[result->policy].id : 0;
	cached.expires = 0;
	if (state->used_now)
	{
		if (decide_time_dependent_ttl_ms == 0)
			return;
		cached.expires = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 decide_time_dependent_ttl_ms);
	}
	decision_cache_store(CACHE_L2, key, &cached);
	decision_cache_store(CACHE_L1, key, &cached);
}

static void
decide_request(const DecisionRequest *request, Decision *decision)
{
	instr_time	start;
	instr_time	duration;
	MemoryContext caller_context;
	PolicySet  *set;
	DecisionKey key;
	bool		cacheable;
	CachedDecision cached;
	const char *source = NULL;

	INSTR_TIME_SET_CURRENT(start);
	caller_context = begin_decision();
	set = policy_set_current();

	/*
	 * Under this transaction's own uncommitted change the epoch number may
	 * yet be rolled back and reused: neither read nor fill the caches.
	 */
	cacheable = decide_cache_enabled && !set->includes_own_changes;
	if (cacheable)
	{
		decision_key_build(set, request->uid, request->context, &key);
		cacheable = decision_cache_fits(CACHE_L1, &key) || decision_cache_fits(CACHE_L2, &key);
	}
	if (cacheable)
		source = lookup_caches(&key, &cached);
	else
		stats_count(STAT_UNCACHED, 1);
	decision->policy = NULL;
	if (source && cached.has_policy)
	{
		/* Same epoch, same policies; a miss here would be a bug: re-decide. */
		decision->policy = policy_set_find(set, cached.policy_id);
		if (decision->policy == NULL)
			source = NULL;
	}

	if (source)
	{
		decision->allowed = cached.allowed;
		decision->condition_unknown = cached.condition_unknown;
		decision->epoch = set->epoch;
		decision->source = source;
	}
	else
	{
		EvaluationState state;
		DecRequest	evaluator_request;
		DecAllocator scratch = decide_allocator(decision_context);
		DecDecision result;

		prepare_evaluation(request, &state, &evaluator_request);
		dec_evaluate(state.set->compiled, &evaluator_request, evaluate_condition, &state,
					 &scratch, &result);
		/* A reload during entity resolution moved the epoch: the key is stale. */
		if (cacheable && state.set->epoch == key.epoch)
			store_in_caches(&key, &result, &state);
		if (state.condition_failures)
			stats_count(STAT_CONDITION_FAILURES, state.condition_failures);

		decision->allowed = result.allowed;
		decision->policy = result.policy >= 0 ? &state.set->policies[result.policy] : NULL;
		decision->condition_unknown = result.condition_unknown;
		decision->epoch = state.set->epoch;
		decision->source = "miss";
	}
	MemoryContextSwitchTo(caller_context);

	stats_count(STAT_DECISIONS, 1);
	if (decision->allowed)
		stats_count(STAT_ALLOWS, 1);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	stats_record_latency((uint64) (INSTR_TIME_GET_DOUBLE(duration) * 1e9));
}

static char *
decision_reason(const Decision *decision)
{
	if (decision->policy == NULL)
		return pstrdup("no policy matched: denied by default");
	if (decision->allowed)
		return psprintf("allowed by policy \"%s\" (priority %d)",
						decision->policy->name, decision->policy->priority);
	return psprintf("denied by policy \"%s\" (priority %d)%s",
					decision->policy->name, decision->policy->priority,
					decision->condition_unknown ?
					": its condition could not be evaluated, which counts as true for a deny" : "");
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
		values[2] = CStringGetTextDatum(decision->policy->name);
		values[3] = CStringGetTextDatum(decision->policy->risk_level);
	}
	else
		nulls[2] = nulls[3] = true;
	values[4] = CStringGetTextDatum(decision_reason(decision));
	values[5] = Int64GetDatum(decision->epoch);
	values[6] = CStringGetTextDatum(decision->source);
}

PG_FUNCTION_INFO_V1(decide_decide);
Datum
decide_decide(PG_FUNCTION_ARGS)
{
	DecisionRequest request;
	Decision	decision;
	Datum		values[DECISION_COLUMNS];
	bool		nulls[DECISION_COLUMNS];
	TupleDesc	desc = fcinfo->flinfo->fn_extra;

	/* The result descriptor is the same for every call: look it up once. */
	if (desc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "decide() must return a composite type");
		desc = BlessTupleDesc(CreateTupleDescCopy(desc));
		fcinfo->flinfo->fn_extra = desc;
		MemoryContextSwitchTo(old);
	}
	request_from_args(fcinfo, &request);
	decide_request(&request, &decision);
	decision_to_values(&decision, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

PG_FUNCTION_INFO_V1(decide_allowed);
Datum
decide_allowed(PG_FUNCTION_ARGS)
{
	DecisionRequest request;
	Decision	decision;

	request_from_args(fcinfo, &request);
	decide_request(&request, &decision);
	PG_RETURN_BOOL(decision.allowed);
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
			set_uid(&request, d, DatumGetTextPP(elems[d][i]), what);
		}
		if (contexts == NULL || context_nulls[i])
			request.context = empty_object();
		else
			request.context = DatumGetJsonbP(contexts[i]);
		decide_validate_context(request.context);

		decide_request(&request, &decision);
		values[0] = Int32GetDatum(i + 1);
		nulls[0] = false;
		decision_to_values(&decision, values + 1, nulls + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static const char *
condition_result_name(DecConditionResult result)
{
	switch (result)
	{
		case DEC_COND_TRUE:
			return "true";
		case DEC_COND_FALSE:
			return "false";
		default:
			return "unknown";
	}
}

/*
 * One row per active policy that matches at least one part of the request,
 * in rank order, with what matched, the condition's value, and whether it
 * decided.  The decision itself comes from the evaluator, so this never
 * disagrees with decide().
 */
PG_FUNCTION_INFO_V1(decide_explain);
Datum
decide_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DecisionRequest request;
	EvaluationState state;
	DecRequest	evaluator_request;
	DecDecision result;
	DecAllocator scratch;
	MemoryContext caller_context;
	uint32		n;
	uint32		rank;

	request_from_args(fcinfo, &request);
	InitMaterializedSRF(fcinfo, 0);

	caller_context = begin_decision();
	scratch = decide_allocator(decision_context);
	prepare_evaluation(&request, &state, &evaluator_request);
	dec_evaluate(state.set->compiled, &evaluator_request, evaluate_condition, &state,
				 &scratch, &result);

	n = dec_policy_count(state.set->compiled);
	for (rank = 0; rank < n; rank++)
	{
		uint32		index = dec_policy_at_rank(state.set->compiled, rank);
		const PolicyInfo *info = &state.set->policies[index];
		bool		matched[DEC_NDIMS];
		Datum		values[11];
		bool		nulls[11] = {0};
		const char *condition = NULL;
		StringInfoData note;
		int			d;

		CHECK_FOR_INTERRUPTS();
		dec_match_patterns(state.set->compiled, index, &evaluator_request, matched);
		if (!matched[0] && !matched[1] && !matched[2])
			continue;

		MemoryContextSwitchTo(caller_context);
		initStringInfo(&note);
		if (matched[0] && matched[1] && matched[2])
		{
			DecConditionResult cr = DEC_COND_TRUE;

			MemoryContextSwitchTo(decision_context);
			if (info->condition)
				cr = evaluate_condition(&state, index);
			MemoryContextSwitchTo(caller_context);
			condition = info->condition ? condition_result_name(cr) : "none";
			if ((int32) index == result.policy)
				appendStringInfoString(&note, "decides the request");
			else if (cr == DEC_COND_FALSE)
				appendStringInfoString(&note, "condition is false");
			else if (cr == DEC_COND_UNKNOWN && info->effect == DEC_ALLOW)
				appendStringInfoString(&note,
									   "condition could not be evaluated: an allow fails closed");
			else if (result.policy >= 0)
				appendStringInfo(&note, "outranked by policy \"%s\"",
								 state.set->policies[result.policy].name);
		}
		else
		{
			for (d = 0; d < DEC_NDIMS; d++)
				if (!matched[d])
					appendStringInfo(&note, "%s%s pattern \"%s\" matches neither \"%.*s\" nor its ancestors",
									 note.len ? "; " : "", dimension_names[d], info->pattern[d],
									 (int) request.uid[d].len, request.uid[d].ptr);
		}

		values[0] = Int32GetDatum(rank + 1);
		values[1] = CStringGetTextDatum(info->name);
		values[2] = CStringGetTextDatum(info->effect == DEC_DENY ? "deny" : "allow");
		values[3] = Int32GetDatum(info->priority);
		values[4] = CStringGetTextDatum(info->risk_level);
		for (d = 0; d < DEC_NDIMS; d++)
			values[5 + d] = BoolGetDatum(matched[d]);
		if (condition)
			values[8] = CStringGetTextDatum(condition);
		else
			nulls[8] = true;
		values[9] = BoolGetDatum((int32) index == result.policy);
		values[10] = CStringGetTextDatum(note.data);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(decision_context);
	}
	MemoryContextSwitchTo(caller_context);
	return (Datum) 0;
}

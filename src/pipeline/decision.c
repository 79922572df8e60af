/*
 * decision.c — the decision pipeline: current policy set, cache lookup (L1
 * then L2), entity resolution and evaluation on a miss, cache fill, and
 * statistics.  Also explanations, which share the evaluation path.
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "bytes_table.h"
#include "condition.h"
#include "decision.h"
#include "decision_cache.h"
#include "entity_store.h"
#include "hot_keys.h"
#include "input.h"
#include "redis_cache.h"
#include "stats.h"

/* What the evaluator's condition callback needs, and what it saw. */
typedef struct EvaluationState
{
	const PolicySet *set;
	ConditionRequest condition;
	bool		used_now;		/* a condition read $now: time-dependent */
	uint32		condition_failures;
} EvaluationState;

const char *const decision_dimension_names[DEC_NDIMS] = {"actor", "action", "resource"};

static void
check_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
}

/* Reset at the start of every decision: scratch for entities, documents. */
static MemoryContext decision_context = NULL;

Jsonb *
decision_empty_context(void)
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

void
decision_set_uid(DecisionRequest *request, int dim, text *value, const char *what)
{
	request->uid[dim].ptr = VARDATA_ANY(value);
	request->uid[dim].len = VARSIZE_ANY_EXHDR(value);
	decide_validate_uid(what, request->uid[dim].ptr, request->uid[dim].len);
}

/*
 * Conditions remembered by what they read, per backend and policy set: a
 * condition that reads of the actor and the resource at most some
 * attribute keys, and not $now, gives the same answer for the same action,
 * context and values of those keys, so it is evaluated once for each
 * (sql/reference_agreement.sql compares decisions with a plain-SQL
 * reference that evaluates every condition).
 */
typedef struct ConditionShape
{
	uint32		policy;			/* hash key: the policy's index in the set */
	bool		remembered;		/* its answers may be remembered */
	ConditionEntityReads actor;
	ConditionEntityReads resource;
} ConditionShape;

typedef struct RememberedCondition
{
	BytesKey	key;			/* policy, action, context, the values read */
	DecConditionResult result;
} RememberedCondition;

#define REMEMBERED_CONDITIONS 65536

static MemoryContext memo_context = NULL;
static HTAB *memo = NULL;
static HTAB *shapes = NULL;		/* ConditionShape by policy, for those evaluated */
static uint64 memo_generation = 0;

/* Empties the memory of conditions when the set is another one. */
static void
prepare_memo(const PolicySet *set)
{
	if (memo != NULL && memo_generation == set->generation &&
		hash_get_num_entries(memo) < REMEMBERED_CONDITIONS)
		return;
	if (memo_context == NULL)
		memo_context = AllocSetContextCreate(TopMemoryContext, "decide remembered conditions",
											 ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(memo_context);
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(ConditionShape);
		ctl.hcxt = memo_context;
		shapes = hash_create("decide condition shapes", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memo = bytes_table_create("decide remembered conditions", sizeof(RememberedCondition), 1024,
							  memo_context);
	memo_generation = set->generation;
}

static const ConditionShape *
condition_shape(const PolicySet *set, uint32 policy)
{
	const PolicyInfo *info = &set->policies[policy];
	ConditionShape *shape = hash_search(shapes, &policy, HASH_FIND, NULL);
	ConditionShape found;

	if (shape == NULL)
	{
		JsonPath   *condition = policy_condition(set, info);

		memset(&found, 0, sizeof(found));
		condition_entity_reads(condition, "actor", &found.actor);
		condition_entity_reads(condition, "resource", &found.resource);
		found.policy = policy;
		found.remembered = !info->condition_traits.uses_now &&
			found.actor.use != CONDITION_READS_ENTITY &&
			found.resource.use != CONDITION_READS_ENTITY;
		shape = hash_search(shapes, &policy, HASH_ENTER, NULL);
		*shape = found;
	}
	return shape;
}

static DecConditionResult
evaluate_condition(void *arg, uint32_t policy)
{
	EvaluationState *state = arg;
	const PolicyInfo *info = &state->set->policies[policy];
	const ConditionShape *shape;
	StringInfoData key;
	RememberedCondition *remembered;
	DecConditionResult result;
	bool		found;

	prepare_memo(state->set);
	shape = condition_shape(state->set, policy);
	if (shape->remembered)
	{
		const ConditionRequest *c = &state->condition;

		initStringInfo(&key);
		appendBinaryStringInfo(&key, (char *) &policy, sizeof(policy));
		appendBinaryStringInfo(&key, (char *) &c->action.len, sizeof(c->action.len));
		appendBinaryStringInfo(&key, c->action.ptr, c->action.len);
		appendBinaryStringInfo(&key, (char *) c->context, VARSIZE(c->context));
		condition_append_reads(&key, &shape->actor, c->actor_attrs);
		condition_append_reads(&key, &shape->resource, c->resource_attrs);
		remembered = hash_search(memo, &(BytesKey) {key.data, key.len}, HASH_FIND, NULL);
		if (remembered)
		{
			if (remembered->result == DEC_COND_UNKNOWN)
				state->condition_failures++;
			return remembered->result;
		}
	}

	result = condition_evaluate(policy_condition(state->set, info), info->condition_traits,
								&state->condition);
	if (info->condition_traits.uses_now)
		state->used_now = true;
	if (result == DEC_COND_UNKNOWN)
		state->condition_failures++;
	if (shape->remembered)
	{
		char	   *owned = MemoryContextAlloc(memo_context, key.len);

		memcpy(owned, key.data, key.len);
		remembered = hash_search(memo, &(BytesKey) {owned, key.len}, HASH_ENTER, &found);
		remembered->key.ptr = owned;
		remembered->key.len = key.len;
		remembered->result = result;
	}
	return result;
}

/* Sets up the evaluation of a request whose entities are resolved. */
static void
fill_evaluation(const PolicySet *set, const DecisionRequest *request,
				const EntityInfo *entities, EvaluationState *state,
				DecRequest *evaluator_request)
{
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
		evaluator_request->dim[d] = entities[d].closure;

	state->set = set;
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

/*
 * Resolves the request's entities under the current policy set, reloading
 * when the epoch moves underneath, or under a set of an earlier epoch
 * (as_of), whose entities never move.  Leaves the evaluator's request and
 * the condition document's parts in *state.
 */
static void
prepare_evaluation(const DecisionRequest *request, PolicySet *as_of, EvaluationState *state,
				   DecRequest *evaluator_request)
{
	EntityInfo	entities[DEC_NDIMS];
	PolicySet  *set;
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		set = as_of ? as_of : policy_set_current();
		if (entity_store_resolve(set, request->uid, DEC_NDIMS, entities))
			break;
		if (as_of)
			elog(ERROR, "the entities of epoch " INT64_FORMAT " could not be resolved", as_of->epoch);
		if (attempt == 100)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("policies and entities kept changing during the decision"),
					 errhint("Retry the request.")));
	}
	fill_evaluation(set, request, entities, state, evaluator_request);
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

/*
 * Looks the request up in L1, then L2, then Redis (filling the layers
 * above on a hit).  The worker's warming lookups are not counted.
 */
static bool
lookup_caches(const DecisionKey *key, CachedDecision *cached, bool warming, LogSource *source)
{
	/* The worker has no callers of its own: it warms L2 and Redis only. */
	if (!warming && decision_cache_fits(CACHE_L1, key))
	{
		if (decision_cache_lookup(CACHE_L1, key, cached))
		{
			if (!warming)
				stats_count(STAT_L1_HITS, 1);
			*source = LOG_SOURCE_L1;
			return true;
		}
		if (!warming)
			stats_count(STAT_L1_MISSES, 1);
	}
	if (decision_cache_fits(CACHE_L2, key))
	{
		if (decision_cache_lookup(CACHE_L2, key, cached))
		{
			if (!warming)
			{
				stats_count(STAT_L2_HITS, 1);
				decision_cache_store(CACHE_L1, key, cached);
			}
			*source = LOG_SOURCE_L2;
			return true;
		}
		if (!warming)
			stats_count(STAT_L2_MISSES, 1);
	}
	if (redis_cache_fits(key))
	{
		RedisLookup result = redis_cache_get(key, cached);

		if (!warming && result != REDIS_NOT_ASKED)
			stats_count(result == REDIS_HIT ? STAT_L3_HITS : STAT_L3_MISSES, 1);
		if (result == REDIS_HIT)
		{
			decision_cache_store(CACHE_L2, key, cached);
			if (!warming)
				decision_cache_store(CACHE_L1, key, cached);
			*source = LOG_SOURCE_REDIS;
			return true;
		}
	}
	return false;
}

/* Fills L2, L1 (not for the worker) and Redis with a decision. */
static void
store_cached(const DecisionKey *key, const CachedDecision *cached, bool warming)
{
	decision_cache_store(CACHE_L2, key, cached);
	if (!warming)
		decision_cache_store(CACHE_L1, key, cached);
	redis_cache_put(key, cached);
}

static void
store_in_caches(const DecisionKey *key, const DecDecision *result,
				const EvaluationState *state, bool warming)
{
	CachedDecision cached;

	cached.has_policy = result->policy >= 0;
	cached.allowed = result->allowed;
	cached.condition_unknown = result->condition_unknown;
	cached.policy_id = result->policy >= 0 ? state->set->policies[result->policy].id : 0;
	cached.expires = 0;
	if (state->used_now)
	{
		/*
		 * $now was the statement's start: the answer holds until then plus
		 * the TTL, however long the statement has run since.
		 */
		if (decide_time_dependent_ttl_ms == 0)
			return;
		cached.expires = TimestampTzPlusMilliseconds(GetCurrentStatementStartTimestamp(),
													 decide_time_dependent_ttl_ms);
		if (cached.expires <= GetCurrentTimestamp())
			return;
	}
	store_cached(key, &cached, warming);
}

static DecConditionResult
condition_ignored(void *arg, uint32_t policy)
{
	return DEC_COND_TRUE;
}

/*
 * A miss under the current epoch may still have its answer cached under the
 * epoch of the set this backend had before (policy_set.c): it is this
 * epoch's answer too when none of the policies that changed in between
 * matches the request by pattern.  Looks in L1 (not for the worker) and L2,
 * and says in *source which layer it was found in.
 */
static bool
carry_forward(const DecisionKey *key, const PolicySet *set, const DecRequest *request,
			  bool warming, CachedDecision *cached, LogSource *source)
{
	DecisionKey previous;

	decision_key_for_epoch(key, set->carry_from_epoch, &previous);
	if (!warming && decision_cache_lookup(CACHE_L1, &previous, cached))
		*source = LOG_SOURCE_L1;
	else if (decision_cache_lookup(CACHE_L2, &previous, cached))
		*source = LOG_SOURCE_L2;
	else
		return false;
	if (set->changed)
	{
		DecAllocator scratch = decide_allocator(decision_context);
		DecDecision affected;

		dec_evaluate(set->changed, request, condition_ignored, NULL, &scratch, &affected,
					 check_interrupts);
		if (affected.policy >= 0)
			return false;
	}
	if (!warming)				/* like hits: callers' decisions only */
		stats_count(STAT_CARRIED_FORWARD, 1);
	return true;
}

/*
 * Fills in a decision from a cached answer, if that answer is one the named
 * policy can give under this set: an allow only from an allow policy, a deny
 * from a deny policy or from no policy.  Anything else (a forged Redis
 * value) is not trusted: the caller re-decides.
 */
static bool
decision_from_cache(const CachedDecision *cached, const PolicySet *set, LogSource source,
					Decision *decision)
{
	decision->set = set;
	decision->policy = NULL;
	if (cached->has_policy)
	{
		decision->policy = policy_set_find(set, cached->policy_id);
		if (decision->policy == NULL)
			return false;		/* a bug or a forgery: re-decide */
	}
	if (decision->policy ? cached->allowed != (decision->policy->effect == DEC_ALLOW)
		: cached->allowed)
	{
		if (source == LOG_SOURCE_REDIS)
			stats_count(STAT_REDIS_GARBAGE, 1);
		decision->policy = NULL;
		return false;
	}
	decision->allowed = cached->allowed;
	decision->condition_unknown = cached->condition_unknown;
	decision->epoch = set->epoch;
	decision->source = source;
	return true;
}

/* Appends a caller's decision to the log, if the log settings want it. */
static void
log_decision(const DecisionRequest *request, const Decision *decision)
{
	LogRecord	record;

	if (!audit_log_wanted(decision->allowed))
		return;
	memset(&record, 0, sizeof(record));
	record.epoch = decision->epoch;
	record.priority = decision->policy ? decision->policy->priority : 0;
	record.allowed = decision->allowed;
	record.has_policy = decision->policy != NULL;
	record.condition_unknown = decision->condition_unknown;
	record.source = decision->source;
	record.actor = request->uid[DEC_ACTOR];
	record.action = request->uid[DEC_ACTION];
	record.resource = request->uid[DEC_RESOURCE];
	if (decision->policy)
	{
		record.policy.ptr = policy_name(decision->set, decision->policy);
		record.policy.len = strlen(record.policy.ptr);
		record.risk_level.ptr = policy_risk_level(decision->set, decision->policy);
		record.risk_level.len = strlen(record.risk_level.ptr);
	}
	record.context_format = LOG_CONTEXT_JSONB;
	record.context.ptr = (const char *) request->context;
	record.context.len = VARSIZE(request->context);
	audit_log_append(&record);
}

void
decision_make(const DecisionRequest *request, Decision *decision, bool warming)
{
	instr_time	start;
	instr_time	duration;
	MemoryContext caller_context;
	PolicySet  *set;
	DecisionKey key;
	bool		cacheable;
	CachedDecision cached;
	LogSource	source;
	bool		answered = false;	/* from a cache */

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
		cacheable = decision_cache_fits(CACHE_L1, &key) || decision_cache_fits(CACHE_L2, &key) ||
			redis_cache_fits(&key);
	}
	if (cacheable)
	{
		answered = lookup_caches(&key, &cached, warming, &source) &&
			decision_from_cache(&cached, set, source, decision);
		if (!warming)
			hot_keys_note(&key);
	}
	else
		stats_count(STAT_UNCACHED, 1);
	if (!answered)
	{
		EvaluationState state;
		DecRequest	evaluator_request;
		DecAllocator scratch = decide_allocator(decision_context);
		DecDecision result;

		prepare_evaluation(request, NULL, &state, &evaluator_request);
		/* A reload during entity resolution moved the epoch: the key is stale. */
		if (cacheable && state.set->epoch != key.epoch)
			cacheable = false;
		if (cacheable && state.set->carry_from_epoch >= 0 &&
			carry_forward(&key, state.set, &evaluator_request, warming, &cached, &source) &&
			decision_from_cache(&cached, state.set, source, decision))
			store_cached(&key, &cached, warming);
		else
		{
			dec_evaluate(state.set->compiled, &evaluator_request, evaluate_condition, &state,
						 &scratch, &result, check_interrupts);
			if (cacheable)
				store_in_caches(&key, &result, &state, warming);
			if (state.condition_failures)
				stats_count(STAT_CONDITION_FAILURES, state.condition_failures);

			decision->allowed = result.allowed;
			decision->set = state.set;
			decision->policy = result.policy >= 0 ? &state.set->policies[result.policy] : NULL;
			decision->condition_unknown = result.condition_unknown;
			decision->epoch = state.set->epoch;
			decision->source = LOG_SOURCE_MISS;
		}
	}
	MemoryContextSwitchTo(caller_context);

	if (warming)
	{
		stats_count(STAT_WARMED, 1);
		return;
	}
	log_decision(request, decision);
	stats_count(STAT_DECISIONS, 1);
	if (decision->allowed)
		stats_count(STAT_ALLOWS, 1);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	stats_record_latency((uint64) (INSTR_TIME_GET_DOUBLE(duration) * 1e9));
}

void
decision_make_as_of(const DecisionRequest *request, PolicySet *as_of, Decision *decision)
{
	MemoryContext caller_context = begin_decision();
	EvaluationState state;
	DecRequest	evaluator_request;
	DecAllocator scratch = decide_allocator(decision_context);
	DecDecision result;

	prepare_evaluation(request, as_of, &state, &evaluator_request);
	dec_evaluate(as_of->compiled, &evaluator_request, evaluate_condition, &state, &scratch,
				 &result, check_interrupts);
	if (state.condition_failures)
		stats_count(STAT_CONDITION_FAILURES, state.condition_failures);
	decision->allowed = result.allowed;
	decision->set = as_of;
	decision->policy = result.policy >= 0 ? &as_of->policies[result.policy] : NULL;
	decision->condition_unknown = result.condition_unknown;
	decision->epoch = as_of->epoch;
	decision->source = LOG_SOURCE_MISS;
	MemoryContextSwitchTo(caller_context);
}

char *
decision_reason(bool allowed, const char *policy, int32 priority, bool condition_unknown)
{
	if (policy == NULL)
		return pstrdup("no policy matched: denied by default");
	if (allowed)
		return psprintf("allowed by policy \"%s\" (priority %d)", policy, priority);
	return psprintf("denied by policy \"%s\" (priority %d)%s", policy, priority,
					condition_unknown ?
					": its condition could not be evaluated, which counts as true for a deny" : "");
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

void
decision_explain(const DecisionRequest *request, PolicySet *as_of, ExplainRowFn emit, void *arg)
{
	EvaluationState state;
	DecRequest	evaluator_request;
	DecDecision result;
	DecAllocator scratch;
	MemoryContext caller_context;
	uint32		n;
	uint32		rank;

	caller_context = begin_decision();
	scratch = decide_allocator(decision_context);
	prepare_evaluation(request, as_of, &state, &evaluator_request);
	dec_evaluate(state.set->compiled, &evaluator_request, evaluate_condition, &state,
				 &scratch, &result, check_interrupts);

	n = dec_policy_count(state.set->compiled);
	for (rank = 0; rank < n; rank++)
	{
		uint32		index = dec_policy_at_rank(state.set->compiled, rank);
		const PolicyInfo *info = &state.set->policies[index];
		ExplainRow	row;
		StringInfoData note;
		int			d;

		CHECK_FOR_INTERRUPTS();
		dec_match_patterns(state.set->compiled, index, &evaluator_request, row.matched);
		if (!row.matched[0] && !row.matched[1] && !row.matched[2])
			continue;

		initStringInfo(&note);
		row.condition = NULL;
		if (row.matched[0] && row.matched[1] && row.matched[2])
		{
			DecConditionResult cr = DEC_COND_TRUE;

			if (info->condition_off)
				cr = evaluate_condition(&state, index);
			row.condition = info->condition_off ? condition_result_name(cr) : "none";
			if ((int32) index == result.policy)
				appendStringInfoString(&note, "decides the request");
			else if (cr == DEC_COND_FALSE)
				appendStringInfoString(&note, "condition is false");
			else if (cr == DEC_COND_UNKNOWN && info->effect == DEC_ALLOW)
				appendStringInfoString(&note,
									   "condition could not be evaluated: an allow fails closed");
			else if (result.policy >= 0)
				appendStringInfo(&note, "outranked by policy \"%s\"",
								 policy_name(state.set, &state.set->policies[result.policy]));
		}
		else
		{
			for (d = 0; d < DEC_NDIMS; d++)
				if (!row.matched[d])
					appendStringInfo(&note, "%s%s pattern \"%s\" matches neither \"%.*s\" nor its ancestors",
									 note.len ? "; " : "", decision_dimension_names[d],
									 policy_pattern(state.set, info, d),
									 (int) request->uid[d].len, request->uid[d].ptr);
		}
		row.rank = rank + 1;
		row.set = state.set;
		row.policy = info;
		row.decisive = (int32) index == result.policy;
		row.note = note.data;
		emit(&row, arg);
	}
	MemoryContextSwitchTo(caller_context);
}

/*
 * condition.h — policy conditions: jsonpath predicates evaluated by the
 * server's own jsonpath engine against the request document
 *   {"actor": {"uid", "attrs"}, "action", "resource": {"uid", "attrs"},
 *    "context": <request context>}
 * with one variable, $now (the statement's start time, ISO 8601, UTC).
 */
#ifndef DECIDE_CONDITION_H
#define DECIDE_CONDITION_H

#include "postgres.h"

#include "evaluator.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/jsonpath.h"

#define DECIDE_MAX_CONDITION_BYTES	(16 * 1024)

/* The request as conditions see it; the document is built on first use. */
typedef struct ConditionRequest
{
	DecStr		actor;
	Jsonb	   *actor_attrs;	/* NULL: {} */
	DecStr		action;
	DecStr		resource;
	Jsonb	   *resource_attrs; /* NULL: {} */
	Jsonb	   *context;
	Jsonb	   *document;		/* built lazily */
	Jsonb	   *variables;		/* {"now": ...}, built lazily */
} ConditionRequest;

/* What evaluation needs to know of a condition, found once at load. */
typedef struct ConditionTraits
{
	bool		uses_now;		/* refers to $now: depends on time */

	/*
	 * Uses .datetime(), whose time-zone errors the engine raises even in
	 * silent mode: evaluated in a subtransaction so they count as unknown.
	 */
	bool		may_raise;
} ConditionTraits;

extern ConditionTraits condition_traits(JsonPath *condition);

#define CONDITION_MAX_READ_KEYS 8

/* How a condition reads one entity of the document ("actor", "resource"). */
typedef enum ConditionEntityUse
{
	CONDITION_IGNORES_ENTITY,	/* not at all */
	CONDITION_READS_ATTR_KEYS,	/* only through $.<entity>.attrs.<key> */
	CONDITION_READS_ENTITY		/* its uid, its attrs whole, or the document as a whole */
} ConditionEntityUse;

typedef struct ConditionEntityReads
{
	ConditionEntityUse use;
	int			n_keys;			/* CONDITION_READS_ATTR_KEYS: the keys, distinct */
	DecStr		keys[CONDITION_MAX_READ_KEYS];	/* point into the condition */
} ConditionEntityReads;

/*
 * What a condition reads of one entity: its result then depends on that
 * entity only through what is read (listing evaluates such a condition
 * once per distinct value instead of once per entity).
 */
extern void condition_entity_reads(JsonPath *condition, const char *entity,
								   ConditionEntityReads *reads);

/*
 * Appends to buf what a condition with these reads sees of an entity with
 * these attributes (NULL: {}): each key's value, tagged with its type, or
 * its absence.  Equal bytes, equal inputs.
 */
extern void condition_append_reads(StringInfo buf, const ConditionEntityReads *reads,
								   Jsonb *attrs);

/*
 * True, false, or unknown (an error or null: the caller fails closed).
 * Cancellation, resource and limit errors still reach the caller.
 */
extern DecConditionResult condition_evaluate(JsonPath *condition, ConditionTraits traits,
											 ConditionRequest *request);

#endif							/* DECIDE_CONDITION_H */

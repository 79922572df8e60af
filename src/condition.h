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

/* Does the condition refer to $now (and so depend on time)? */
extern bool condition_uses_now(JsonPath *condition);

/* True, false, or unknown (error or null: the caller fails closed). */
extern DecConditionResult condition_evaluate(JsonPath *condition, bool uses_now,
											 ConditionRequest *request);

#endif							/* DECIDE_CONDITION_H */

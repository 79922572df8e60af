/*
 * decision.h — one decision, end to end: validated request in, decision
 * out, through the caches, the entity store and the evaluator.
 */
#ifndef DECIDE_DECISION_H
#define DECIDE_DECISION_H

#include "postgres.h"

#include "evaluator.h"
#include "log_record.h"
#include "policy_set.h"
#include "utils/jsonb.h"

/* The arguments of one request; set_uid validates them. */
typedef struct DecisionRequest
{
	DecStr		uid[DEC_NDIMS];
	Jsonb	   *context;
} DecisionRequest;

typedef struct Decision
{
	bool		allowed;
	const PolicySet *set;		/* the set it was decided under; valid until the next decision */
	const PolicyInfo *policy;	/* NULL: no policy matched */
	bool		condition_unknown;
	int64		epoch;
	LogSource	source;			/* the cache layer that answered, or a miss */
} Decision;

extern const char *const decision_dimension_names[DEC_NDIMS];

/* The context of requests that give none: {}. */
extern Jsonb *decision_empty_context(void);

/* Sets and validates one uid of a request; "what" names it in errors. */
extern void decision_set_uid(DecisionRequest *request, int dim, text *value, const char *what);

/*
 * Decides a request.  Warming (the worker computing hot requests ahead of
 * callers) fills the caches but is not logged or counted as a decision.
 */
extern void decision_make(const DecisionRequest *request, Decision *decision, bool warming);

/*
 * Decides a request under a set of an earlier epoch (policy_set_as_of, its
 * entities attached): no cache is read or filled and nothing is logged.
 */
extern void decision_make_as_of(const DecisionRequest *request, PolicySet *as_of,
								Decision *decision);

/* The reason text of a decision (also rebuilt for logged decisions). */
extern char *decision_reason(bool allowed, const char *policy, int32 priority,
							 bool condition_unknown);

/* One candidate policy of an explanation, in rank order. */
typedef struct ExplainRow
{
	uint32		rank;			/* 1-based */
	const PolicySet *set;
	const PolicyInfo *policy;
	bool		matched[DEC_NDIMS];
	const char *condition;		/* "none", "true", "false", "unknown"; NULL: not evaluated */
	bool		decisive;
	const char *note;
} ExplainRow;

typedef void (*ExplainRowFn) (const ExplainRow *row, void *arg);

/*
 * Calls emit for every active policy that matches at least one part of the
 * request, under the current set or one of an earlier epoch (as_of; NULL:
 * the current).  The deciding policy comes from the evaluator, so
 * explanations never disagree with decisions.
 */
extern void decision_explain(const DecisionRequest *request, PolicySet *as_of, ExplainRowFn emit,
							 void *arg);

#endif							/* DECIDE_DECISION_H */

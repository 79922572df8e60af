/*
 * evaluator.h — the compiled, indexed policy evaluator.
 *
 * Pure C: no PostgreSQL headers, no SPI, no shared memory, no global state.
 * The server side (policy_set.c, decision.c) resolves entities and evaluates
 * conditions; this module only indexes patterns and applies the combining
 * rules, so it can be unit-tested and fuzzed outside the server.
 *
 * Semantics (docs/reference.md): a policy matches a request when each of its
 * three patterns matches the request entity or one of its ancestors, and its
 * condition holds.  Among matching policies the highest priority wins; within
 * it any deny beats every allow; ties go to the lowest id.  No match: deny.
 * A condition that cannot be evaluated counts as true for a deny and false for
 * an allow.
 */
#ifndef DECIDE_EVALUATOR_H
#define DECIDE_EVALUATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "glob.h"

#define DEC_NDIMS 3
typedef enum DecDim
{
	DEC_ACTOR = 0,
	DEC_ACTION = 1,
	DEC_RESOURCE = 2
} DecDim;

typedef enum DecEffect
{
	DEC_ALLOW = 0,
	DEC_DENY = 1
} DecEffect;

/* A byte string; need not be NUL-terminated. */
typedef struct DecStr
{
	const char *ptr;
	uint32_t	len;
} DecStr;

/*
 * Memory comes from the caller.  alloc never returns NULL: it must abort or
 * unwind on failure.  Nothing is freed individually; the caller frees all
 * of it at once (a memory context in the server, an arena in tests).
 */
typedef struct DecAllocator
{
	void	   *(*alloc) (void *state, size_t size);
	void	   *state;
} DecAllocator;

typedef struct DecPolicyDef
{
	int64_t		id;
	int32_t		priority;
	DecEffect	effect;
	DecStr		pattern[DEC_NDIMS];
	bool		has_condition;
} DecPolicyDef;

/* An entity and its ancestors (the entity first), without duplicates. */
typedef struct DecEntitySet
{
	const DecStr *uids;
	uint32_t	count;
} DecEntitySet;

typedef struct DecRequest
{
	DecEntitySet dim[DEC_NDIMS];
} DecRequest;

typedef enum DecConditionResult
{
	DEC_COND_TRUE,
	DEC_COND_FALSE,
	DEC_COND_UNKNOWN			/* errored or yielded null: fail closed */
} DecConditionResult;

/* Evaluates the condition of the policy with this index (as in dec_compile). */
typedef DecConditionResult (*DecConditionFn) (void *arg, uint32_t policy);

typedef struct DecDecision
{
	int32_t		policy;			/* deciding policy's index, or -1: none matched */
	bool		allowed;
	bool		condition_unknown;	/* decided by a deny whose condition failed */
	uint32_t	candidates;		/* policies whose patterns were examined */
} DecDecision;

typedef struct DecPolicySet DecPolicySet;

/*
 * Compiles policies (copied; the definitions may be freed afterwards) into
 * memory from allocator; temporary work space comes from scratch.  Policy
 * indexes in results are positions in defs.  NULL if the compiled image
 * would exceed 4 GB.
 */
extern DecPolicySet *dec_compile(const DecPolicyDef *defs, uint32_t count,
								 DecCharLenFn char_len,
								 const DecAllocator *allocator,
								 const DecAllocator *scratch);

/*
 * The compiled set is one block of memory (its image) that refers to
 * itself by offsets only: it may be copied anywhere, into shared memory
 * mapped at another address in every process, and used there through
 * dec_policy_set_open(), which allocates only a small view.
 */
extern const void *dec_policy_set_image(const DecPolicySet *set, size_t *size);
extern DecPolicySet *dec_policy_set_open(const void *image, DecCharLenFn char_len,
										 const DecAllocator *allocator);

/*
 * Called every few hundred steps of a long evaluation (NULL: never), so the
 * server can honour a query cancel; it may unwind (longjmp) out of it.
 */
typedef void (*DecInterruptFn) (void);

/*
 * Decides a request.  Conditions are evaluated lazily, in rank order, only
 * for policies whose patterns match.  Scratch memory comes from scratch.
 */
extern void dec_evaluate(const DecPolicySet *set, const DecRequest *request,
						 DecConditionFn condition, void *condition_arg,
						 const DecAllocator *scratch, DecDecision *decision,
						 DecInterruptFn check_interrupts);

/* Which of a policy's patterns match the request (for explanations). */
extern void dec_match_patterns(const DecPolicySet *set, uint32_t policy,
							   const DecRequest *request,
							   bool matched[DEC_NDIMS]);

extern uint32_t dec_policy_count(const DecPolicySet *set);

/* Policy index at a rank: priority descending, deny first, id ascending. */
extern uint32_t dec_policy_at_rank(const DecPolicySet *set, uint32_t rank);

#endif							/* DECIDE_EVALUATOR_H */

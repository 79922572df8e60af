/*
 * policy_set.h — the compiled decide.policies of the current epoch (shared
 * by the backends of the server, or the backend's own), and where decide's
 * tables are.
 */
#ifndef DECIDE_POLICY_SET_H
#define DECIDE_POLICY_SET_H

#include "postgres.h"

#include "condition.h"
#include "evaluator.h"
#include "utils/jsonpath.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

typedef struct DecideCatalog
{
	Oid			schema;
	Oid			policies;
	Oid			entities;
	Oid			entities_pkey;
	Oid			entity_links;	/* InvalidOid: a schema before 0.7.0 */
	Oid			entity_links_pkey;
	Oid			epoch;
} DecideCatalog;

/*
 * What decide needs of one policy besides its place in the index.  It lives
 * in the set's image (see policy_set.c), which refers to itself by offsets
 * only: read the strings and the condition through the accessors below.
 */
typedef struct PolicyInfo
{
	int64		id;
	int32		priority;
	DecEffect	effect;
	uint32		name_off;
	uint32		risk_level_off;
	uint32		pattern_off[DEC_NDIMS];
	uint32		condition_off;	/* 0: no condition (always true) */
	ConditionTraits condition_traits;
} PolicyInfo;

typedef struct PolicySet
{
	MemoryContext context;		/* this backend's part: the view, the image if private */
	const char *image;			/* the set's image: private, or in shared memory */
	int			shared_slot;	/* its slot in shared_sets.c; -1: private */
	uint64		generation;		/* distinct for every load in this backend */
	int64		epoch;
	pg_uuid_t	store_id;

	/*
	 * Random, new with every epoch: names this exact policy-set content
	 * wherever it is (copies of a database made with TEMPLATE, restored or
	 * promoted clusters share store id and epoch numbers, not versions).
	 */
	pg_uuid_t	version;

	/*
	 * Random, new whenever entities change (not when only policies do):
	 * entities read under one policy set stay valid for the next while it
	 * is unchanged.  All zeros: unknown, never equal to another.
	 */
	pg_uuid_t	entities_version;

	/*
	 * Read under this transaction's own uncommitted change: its epoch number
	 * may yet be rolled back and reused, so nothing computed under it may be
	 * shared or outlive the transaction.
	 */
	bool		includes_own_changes;
	uint32		n_policies;
	const PolicyInfo *policies;	/* indexed like the evaluator's policies */
	const uint32 *by_id;		/* policy indexes sorted by id */
	DecPolicySet *compiled;
	double		load_ms;		/* reading the tables and compiling, or attaching */

	/*
	 * Carrying cached decisions forward (decision.c).  When the set this
	 * backend had before is of an earlier epoch of the same store with the
	 * same entities, the policies that differ between the two sets (in
	 * both their versions, compiled without conditions): a decision cached
	 * under carry_from_epoch for a request that none of them matches by
	 * pattern is this set's decision too.  carry_from_epoch -1: not
	 * possible (no such earlier set, or too many changes).
	 */
	int64		carry_from_epoch;
	DecPolicySet *changed;		/* NULL: no policy differs */
	uint32		n_changed;

	/*
	 * A set of an earlier epoch (policy_set_as_of): the image of every
	 * entity as it was then, in the set's context; NULL for live sets.
	 */
	const void *as_of_entities;
} PolicySet;

static inline const char *
policy_name(const PolicySet *set, const PolicyInfo *policy)
{
	return set->image + policy->name_off;
}

static inline const char *
policy_risk_level(const PolicySet *set, const PolicyInfo *policy)
{
	return set->image + policy->risk_level_off;
}

static inline const char *
policy_pattern(const PolicySet *set, const PolicyInfo *policy, int dim)
{
	return set->image + policy->pattern_off[dim];
}

/* NULL: the policy has no condition. */
static inline JsonPath *
policy_condition(const PolicySet *set, const PolicyInfo *policy)
{
	return policy->condition_off ? (JsonPath *) (set->image + policy->condition_off) : NULL;
}

/* Registers the invalidation callback; from _PG_init. */
extern void policy_set_init(void);

/*
 * The current policy set: processes pending invalidations and reloads when
 * the epoch moved.  Errors if the extension is not installed here.
 */
extern PolicySet *policy_set_current(void);

/*
 * The policies as they were at an epoch, in a set of the caller's own
 * (connected to SPI; functions_schema: where decide_policies_at() is); let
 * go with policy_set_free().
 */
extern PolicySet *policy_set_as_of(int64 epoch, Oid functions_schema);
extern void policy_set_free(PolicySet *set);

/* The policy with this id, or NULL. */
extern const PolicyInfo *policy_set_find(const PolicySet *set, int64 id);

/*
 * Whether what was read under this set (entities, decisions) may be reused
 * by a later set with the same entities version: the set is committed
 * state (not read under this transaction's own changes) and its entities
 * version is known.
 */
extern bool policy_set_entities_shareable(const PolicySet *set);

/* Forgets the loaded set: the next call reloads. */
extern void policy_set_mark_stale(void);

extern const DecideCatalog *policy_set_catalog(void);

/*
 * Reads the epoch row under a snapshot; any output may be NULL.  An
 * entities_version of all zeros means unknown (a database not yet updated
 * to 0.5.0).
 */
extern int64 policy_set_read_epoch(Snapshot snapshot, pg_uuid_t *store_id,
								   pg_uuid_t *version, pg_uuid_t *entities_version,
								   bool *includes_own_changes);

/* Character length in the database encoding: how globs count '?'. */
extern size_t policy_set_char_len(const char *s, size_t remaining);

/* An evaluator allocator drawing from a memory context. */
extern DecAllocator decide_allocator(MemoryContext context);

#endif							/* DECIDE_POLICY_SET_H */

/*
 * entity_store.h — entities (actors, actions, resources) with their
 * ancestors and attributes, looked up lazily and cached per backend.
 */
#ifndef DECIDE_ENTITY_STORE_H
#define DECIDE_ENTITY_STORE_H

#include "postgres.h"

#include "evaluator.h"
#include "policy_set.h"
#include "utils/jsonb.h"

/* Most ancestors one entity may have (all levels together). */
#define DECIDE_MAX_ANCESTORS 1024

typedef struct EntityInfo
{
	DecEntitySet closure;		/* the entity, then its ancestors */
	Jsonb	   *attrs;			/* NULL: {} (no row, or empty) */
} EntityInfo;

extern int	decide_entity_cache_size;

extern void entity_store_define_gucs(void);

/*
 * Resolves n entities of one request under a policy set.  Returns false if
 * the epoch moved since the set was loaded (the caller reloads and retries).
 * The results stay valid until the next call.
 */
extern bool entity_store_resolve(const PolicySet *set, const DecStr *uids, int n,
								 EntityInfo *out);

#endif							/* DECIDE_ENTITY_STORE_H */

/*
 * decision_cache.h — the decision caches: L1 in each backend, L2 in shared
 * memory across the backends of the server.
 */
#ifndef DECIDE_DECISION_CACHE_H
#define DECIDE_DECISION_CACHE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "evaluator.h"
#include "policy_set.h"
#include "utils/jsonb.h"

typedef enum CacheLayer
{
	CACHE_L1,
	CACHE_L2,
	CACHE_LAYERS
} CacheLayer;

/*
 * The identity of a request under one policy-set version: the database, the
 * policy store and its epoch, and the request encoded injectively (three
 * length-prefixed uids, then the context's jsonb bytes).
 */
typedef struct DecisionKey
{
	uint64		hash;
	Oid			database;
	int64		epoch;
	pg_uuid_t	store_id;
	pg_uuid_t	version;		/* names the policy-set content across servers */
	uint32		len;
	char	   *bytes;
} DecisionKey;

/* What a cache remembers of a decision. */
typedef struct CachedDecision
{
	bool		has_policy;		/* false: no policy matched */
	bool		allowed;
	bool		condition_unknown;
	int64		policy_id;
	TimestampTz expires;		/* 0: valid for the whole epoch */
} CachedDecision;

extern bool decide_cache_enabled;
extern int	decide_time_dependent_ttl_ms;

extern void decision_cache_define_gucs(void);
extern void decision_cache_shmem_request(void);
extern void decision_cache_shmem_startup(void);

/* Is the shared layer present (shared_preload_libraries)? */
extern bool decision_cache_shared_available(void);

/* Builds the key of a request; palloc'd in the current context. */
extern void decision_key_build(const PolicySet *set, const DecStr *uids, Jsonb *context,
							   DecisionKey *key);

/*
 * The same request under another epoch of the same store (the bytes are
 * shared, not copied); for L1 and L2 only, it has no version.
 */
extern void decision_key_for_epoch(const DecisionKey *key, int64 epoch, DecisionKey *out);

/* Does a key fit the slots of a layer? */
extern bool decision_cache_fits(CacheLayer layer, const DecisionKey *key);

extern bool decision_cache_lookup(CacheLayer layer, const DecisionKey *key,
								  CachedDecision *decision);
extern void decision_cache_store(CacheLayer layer, const DecisionKey *key,
								 const CachedDecision *decision);

/*
 * Recently used L2 keys of older epochs of current's store and database,
 * the most often hit first (for the worker to recompute after a policy
 * change); palloc'd.
 */
extern int	decision_cache_recent_keys(const DecisionKey *current, int max,
									   char ***keys, uint32 **lens);

/* Empties this backend's L1, or L2 for every backend. */
extern void decision_cache_reset(CacheLayer layer);

/* Capacity of a layer in entries and bytes; 0 when absent. */
extern void decision_cache_capacity(CacheLayer layer, uint64 *entries, uint64 *bytes,
									uint64 *slot_bytes);

#endif							/* DECIDE_DECISION_CACHE_H */

/*
 * redis_cache.h — L3, decisions shared between servers through Redis.
 */
#ifndef DECIDE_REDIS_CACHE_H
#define DECIDE_REDIS_CACHE_H

#include "postgres.h"

#include "decision_cache.h"

extern void redis_cache_define_gucs(void);

/* Is decide.redis_url set (and valid)? */
extern bool redis_cache_configured(void);

/* Would this key be looked up in Redis? */
extern bool redis_cache_fits(const DecisionKey *key);

/* Never raise an error: failures count and read as misses. */
extern bool redis_cache_get(const DecisionKey *key, CachedDecision *decision);
extern void redis_cache_put(const DecisionKey *key, const CachedDecision *decision);

#endif							/* DECIDE_REDIS_CACHE_H */

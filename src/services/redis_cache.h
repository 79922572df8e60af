/*
 * redis_cache.h — L3, decisions shared between servers through Redis.
 */
#ifndef DECIDE_REDIS_CACHE_H
#define DECIDE_REDIS_CACHE_H

#include "postgres.h"

#include "decision_cache.h"

extern void redis_cache_define_gucs(void);

/* Would this key be looked up in Redis? */
extern bool redis_cache_fits(const DecisionKey *key);

typedef enum RedisLookup
{
	REDIS_NOT_ASKED,			/* breaker open, or no connection */
	REDIS_MISS,					/* asked: nothing usable (failures included) */
	REDIS_HIT
} RedisLookup;

/* Never raise an error: failures count and read as misses. */
extern RedisLookup redis_cache_get(const DecisionKey *key, CachedDecision *decision);
extern void redis_cache_put(const DecisionKey *key, const CachedDecision *decision);

#endif							/* DECIDE_REDIS_CACHE_H */

/*
 * listing_cache.h — this backend's cache of listings (decide_resources,
 * decide_actors) under the current policy-set version.
 */
#ifndef DECIDE_LISTING_CACHE_H
#define DECIDE_LISTING_CACHE_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "policy_set.h"

extern int	decide_listing_cache_kb;

extern void listing_cache_define_gucs(void);

/*
 * The rows cached for a request key under this set, or NULL.  Rows are
 * packed by listing_cache_append_row(); read them with
 * listing_cache_next_row().  Valid until the next call into this module.
 */
extern const StringInfoData *listing_cache_lookup(const PolicySet *set, const StringInfoData *key);

/* Keeps rows for a request key under this set, if the cache has room. */
extern void listing_cache_store(const PolicySet *set, const StringInfoData *key,
								const StringInfoData *rows);

extern void listing_cache_append_row(StringInfo rows, DecStr uid, int64 policy_id);

/* Reads the row at *offset and moves past it; false at the end. */
extern bool listing_cache_next_row(const StringInfoData *rows, int *offset, DecStr *uid,
								   int64 *policy_id);

/* Empties this backend's listing cache. */
extern void listing_cache_reset(void);

#endif							/* DECIDE_LISTING_CACHE_H */

/*
 * hot_keys.h — an approximate top-K of the requests decided most often, in
 * shared memory, so the worker can recompute them right after a policy
 * change.
 */
#ifndef DECIDE_HOT_KEYS_H
#define DECIDE_HOT_KEYS_H

#include "postgres.h"

#include "decision_cache.h"

typedef struct HotKey
{
	uint32		count;
	uint32		len;
	char	   *bytes;			/* request_key encoding */
} HotKey;

extern void hot_keys_shmem_request(void);
extern void hot_keys_shmem_startup(void);

/* Counts one decision (sampled: cheap enough for every call). */
extern void hot_keys_note(const DecisionKey *key);

/* The hottest keys of a database, most frequent first; palloc'd. */
extern int	hot_keys_top(Oid database, int max, HotKey **keys);

/* Halves every count, so the sketch follows recent traffic. */
extern void hot_keys_decay(void);

#endif							/* DECIDE_HOT_KEYS_H */

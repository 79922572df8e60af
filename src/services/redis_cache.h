/*
 * redis_cache.h — L3, decisions shared between servers through Redis.
 */
#ifndef DECIDE_REDIS_CACHE_H
#define DECIDE_REDIS_CACHE_H

#include "postgres.h"

#include "decision_cache.h"
#include "lib/stringinfo.h"

extern void redis_cache_define_gucs(void);

/* Is decide.redis_url set (and valid)? */
extern bool redis_cache_configured(void);

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

/* Decision-log forwarding from standbys (see redis_cache.c). */
extern char *redis_log_registry(const pg_uuid_t *store_id);
extern char *redis_log_stream_prefix(const pg_uuid_t *store_id);
extern char *redis_log_stream_name(const pg_uuid_t *store_id);
extern bool redis_log_forward(const pg_uuid_t *store_id, const char *stream,
							  const char *const *records, const size_t *lens,
							  const uint64 *positions, int n);
extern int	redis_log_streams(const pg_uuid_t *store_id, char ***streams);

/* One entry of a stream as read: bytes NULL when it is not shaped like ours. */
typedef struct RedisLogEntry
{
	char	   *id;
	const char *bytes;			/* unchecked */
	size_t		len;
} RedisLogEntry;

/* The entries after after_id (at most max), palloc'd; -1: failed. */
extern int	redis_log_read(const char *stream, const char *after_id, int max,
						   RedisLogEntry **entries);
extern void redis_log_trim(const char *stream, const char *upto_id);

#endif							/* DECIDE_REDIS_CACHE_H */

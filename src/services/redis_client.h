/*
 * redis_client.h — decide's connection to Redis (see redis_client.c).
 */
#ifndef DECIDE_REDIS_CLIENT_H
#define DECIDE_REDIS_CLIENT_H

#include "postgres.h"

#include <hiredis/hiredis.h>

extern void redis_client_define_gucs(void);

/* Is decide.redis_url set (and valid)? */
extern bool redis_client_configured(void);

/* decide.redis_prefix, which starts every key decide writes. */
extern const char *redis_client_prefix(void);

/*
 * This backend's connection, opened if needed; NULL when Redis is not
 * configured, the breaker is open (counted in redis_skipped) or connecting
 * failed (counted in redis_errors).
 */
extern redisContext *redis_client_connection(void);

/* After each command: a failure drops the connection and may open the breaker. */
extern void redis_client_failed(void);
extern void redis_client_succeeded(void);

#endif							/* DECIDE_REDIS_CLIENT_H */

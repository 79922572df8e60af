/*
 * worker_common.h — what the background worker's jobs share (worker.c runs
 * the loop; worker_flush.c, worker_standby.c, worker_maintain.c and
 * worker_warm.c are its jobs).
 */
#ifndef DECIDE_WORKER_COMMON_H
#define DECIDE_WORKER_COMMON_H

#include "postgres.h"

#include "utils/uuid.h"

/*
 * One batch read from the ring: up to about two seconds of records at the
 * rates a 2-core server decides at.  Each batch writes a row of
 * decide.decision_keys per key it holds (an actor, a policy), so the fewer
 * the batches, the fewer those random index inserts.
 */
#define FLUSH_BUFFER_BYTES (8 * 1024 * 1024)

/* A standby forwards at most this much of the ring in one pipeline to Redis. */
#define FORWARD_BATCH_BYTES (1024 * 1024)

/*
 * Runs fn in a transaction with SPI and a snapshot, and returns in the
 * caller's memory context (committing switches to TopMemoryContext).
 */
extern void worker_in_transaction(void (*fn) (void *), void *arg);

/*
 * What every decide process that runs SQL as a superuser sets first: a
 * lock_timeout of 500 ms, so that it gives way to DDL such as DROP
 * EXTENSION instead of risking a deadlock with it, and search_path
 * pg_catalog, pg_temp, so that nothing it names can be found in a schema
 * other roles create objects in.
 */
extern void worker_pin_session(void);

/* Is decide installed in this database?  In a transaction. */
extern bool worker_extension_installed(void);

/* Whether the schema decide has this relation (tables an older version lacks). */
extern bool worker_decide_table_exists(const char *name);

/* The relation decide.<name> of the decide extension, or InvalidOid. */
extern Oid	worker_decide_relation(const char *name);

/* The policy store's id; false if decide is not installed here. */
extern bool worker_store_id(pg_uuid_t *store_id);

#endif							/* DECIDE_WORKER_COMMON_H */

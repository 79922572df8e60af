/*
 * worker_internal.h — what the background worker's jobs share.  worker.c
 * runs the loop and calls each job in turn:
 *   worker_flush.c     the decision log ring into decide.decisions
 *   worker_standby.c   standbys' logs through Redis streams
 *   worker_maintain.c  partitions ahead, retention, ANALYZE
 *   worker_warm.c      recomputing hot requests after a policy change
 */
#ifndef DECIDE_WORKER_INTERNAL_H
#define DECIDE_WORKER_INTERNAL_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/uuid.h"

#include "log_record.h"

/* One batch read from the ring or a stream. */
#define FLUSH_BUFFER_BYTES (1024 * 1024)

/*
 * Runs fn in a transaction with SPI and a snapshot, and returns in the
 * caller's memory context (committing switches to TopMemoryContext).
 */
extern void worker_in_transaction(void (*fn) (void *), void *arg);

/* Is decide installed in this database?  In a transaction. */
extern bool worker_extension_installed(void);

/* The policy store's id; false if decide is not installed here. */
extern bool worker_store_id(pg_uuid_t *store_id);

/* worker_flush.c */
extern int32 log_day_of(TimestampTz t);
extern void log_ensure_partition(int32 day);
extern void log_forget_partitions(void);
/* Inserts records (contexts as jsonb or as checked JSON text); SPI connected. */
extern void log_insert_records(const LogRecord *records, int n);
extern bool log_flush_once(char *buf);
extern int64 log_rows_since_analyze;

/* worker_standby.c */
extern bool standby_forward_once(char *buf, const pg_uuid_t *store_id);
extern void standby_receive(const pg_uuid_t *store_id, TimestampTz deadline);
extern void standby_report_garbage(void);

/* worker_maintain.c */
extern void maintain(void *arg);

/* worker_warm.c */
extern void warm_init(void);
/* One bounded slice of warming; *pending when more is left. */
extern void warm_slice(bool *pending);
/* Queues, once, the most frequent requests of the recent log. */
extern void warm_plan_from_log(void);

#endif							/* DECIDE_WORKER_INTERNAL_H */

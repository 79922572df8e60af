/*
 * audit_log.h — the decision log: a ring per database in shared memory
 * that deciding backends append to, and that the database's worker drains
 * into its decide.decisions.
 */
#ifndef DECIDE_AUDIT_LOG_H
#define DECIDE_AUDIT_LOG_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "log_record.h"

extern int	decide_flush_interval_ms;
extern int	decide_log_retention_min;
extern int	decide_maintenance_interval_s;

extern void audit_log_define_gucs(void);

/* decide.max_databases: rings, and database workers, at most. */
extern int	audit_log_max_databases(void);
extern Size audit_log_shmem_size(void);
extern void audit_log_shmem_request(void);
extern void audit_log_shmem_startup(void);
extern bool audit_log_available(void);

/*
 * From the decision path: does decide.log want a decision of this outcome,
 * and can this backend log it (else counted as not logged)?
 */
extern bool audit_log_wanted(bool allowed);

/*
 * Appends a record, stamped now; its context (jsonb) is kept only with
 * decide.log_context and up to 8 kB.  A full ring drops it (counted).
 */
extern void audit_log_append(LogRecord *record);

/* Worker side. */
/* The worker, at start: takes its database's ring; false: none was free. */
extern bool audit_log_attach_worker(Oid database);

/*
 * Gives back a database's ring (its extension or the database is gone):
 * what it still held is dropped and counted.
 */
extern void audit_log_release(Oid database);

/* The launcher: no worker could be started for the database (or one is again). */
extern void audit_log_set_no_worker(Oid database, bool no_worker);

/* The databases that hold a ring (at most max). */
extern int	audit_log_databases(Oid *databases, int max);

/*
 * Moves the records appended since into staging (the worker, when woken);
 * returns the ring position just past them.
 */
extern uint64 audit_log_move(void);

/* The ring position up to which records were consumed (written). */
extern uint64 audit_log_consumed(void);

/* Should the worker write now: decide_flush() asked, or the ring is half full? */
extern bool audit_log_flush_wanted(void);

/*
 * Moves what was appended into staging, then copies whole records
 * (log_record.h) from the read position (*start) into buf (at most bufsize
 * bytes); returns the bytes copied, and the ring position just past them
 * in *end.  Records stay in the ring until audit_log_consume(end).
 */
extern Size audit_log_peek(char *buf, Size bufsize, uint64 *start, uint64 *end);
extern void audit_log_consume(uint64 end);

/* For decide_flush(): wakes the worker and waits until everything
 * appended so far in this database is in the table. */
extern void audit_log_wait_flushed(int timeout_ms);

/*
 * When this ring was created: ring positions restart with it, so it tells
 * apart the lifetimes of the shared memory (a crash restart makes a new one).
 */
extern TimestampTz audit_log_created(void);

/* Size of a ring in bytes. */
extern uint64 audit_log_capacity(void);

/* Bytes appended in this database and not yet written to the table. */
extern uint64 audit_log_pending_bytes(void);

/* Dropped records not yet reported in a WARNING. */
extern uint64 audit_log_take_unreported_drops(void);

#endif							/* DECIDE_AUDIT_LOG_H */

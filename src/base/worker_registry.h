/*
 * worker_registry.h — where decide's background processes are, for others
 * to wake or keep away: the launcher, and one worker per database.
 */
#ifndef DECIDE_WORKER_REGISTRY_H
#define DECIDE_WORKER_REGISTRY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"

/* Shared memory for the launcher and up to max_databases database workers. */
extern Size worker_registry_shmem_size(int max_databases);
extern void worker_registry_shmem_startup(int max_databases);

/* The launcher, at start; and anyone who needs it to look again. */
extern void worker_registry_attach_launcher(Latch *latch);
extern void worker_wake_launcher(void);

/*
 * A database's worker, at start and at exit.  Attaching fails when another
 * worker runs for the database or no entry is free.  At exit,
 * without_decide says that the database has no decide extension.
 */
extern bool worker_registry_attach(Oid database, Latch *latch);
extern void worker_registry_detach(Oid database, bool without_decide);

/* The PID of a database's worker; 0: none. */
extern int	worker_registry_pid(Oid database);

/* Is a worker running for this backend's database? */
extern bool worker_latch_attached(void);

/* Sets the latch of this backend's database's worker, if one runs. */
extern void worker_wake(void);

/*
 * Wakes this database's worker when this transaction commits (a policy or
 * entity change), once the commit is visible; nothing on abort.
 */
extern void worker_wake_at_commit(void);

/*
 * A backend decided in this database: it has decide, and wants a worker.
 * Wakes the launcher if none runs there.
 */
extern void worker_registry_note_decide(Oid database);

/* The same for this database when this transaction commits (decide created). */
extern void worker_registry_note_decide_at_commit(void);

/*
 * Keeps workers out of a database until the given time (database DDL that
 * cannot run while anyone is connected), and returns the PID of the worker
 * running there, for the caller to stop; 0: none.
 */
extern int	worker_registry_keep_away(Oid database, TimestampTz until);

/*
 * A database's ANALYZE helper analyzed its log; the worker takes (and
 * clears) that news before it counts the rows written since afresh.
 */
extern void worker_registry_note_log_analyzed(Oid database);
extern bool worker_registry_take_log_analyzed(Oid database);

/* For the launcher. */

/* The databases where backends decided since the last call (at most max). */
extern int	worker_registry_take_wanted(Oid *databases, int max);

/* Are workers kept out of the database at this time? */
extern bool worker_registry_kept_away(Oid database, TimestampTz now);

/*
 * The worker the launcher started for a database has stopped: did it find
 * no decide there?  Frees the database's entry unless it is still needed.
 */
extern bool worker_registry_stopped(Oid database);

/* The database is gone: its entry goes, unless a worker still runs there. */
extern void worker_registry_forget(Oid database);

#endif							/* DECIDE_WORKER_REGISTRY_H */

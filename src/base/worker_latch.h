/*
 * worker_latch.h — how backends wake the background worker: when they
 * commit a change to policies or entities (so that it warms at once), and
 * when decide_flush() waits for the log.
 */
#ifndef DECIDE_WORKER_LATCH_H
#define DECIDE_WORKER_LATCH_H

#include "postgres.h"

#include "storage/latch.h"

extern Size worker_latch_shmem_size(void);
extern void worker_latch_shmem_startup(void);

/* The worker, at start and at exit. */
extern void worker_latch_attach(Latch *latch);
extern void worker_latch_detach(void);

/* Is a worker attached? */
extern bool worker_latch_attached(void);

/* Sets the worker's latch, if a worker is attached. */
extern void worker_wake(void);

/*
 * Wakes the worker when this transaction commits (a policy or entity
 * change), once the commit is visible; nothing on abort.
 */
extern void worker_wake_at_commit(void);

#endif							/* DECIDE_WORKER_LATCH_H */

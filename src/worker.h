/*
 * worker.h — the decide background worker (see worker.c).
 */
#ifndef DECIDE_WORKER_H
#define DECIDE_WORKER_H

/* From _PG_init at preload. */
extern void worker_register(void);

/*
 * Wakes the worker when this transaction commits (a policy or entity
 * change), so that it starts warming at once rather than at its next tick.
 */
extern void worker_wake_at_commit(void);

#endif							/* DECIDE_WORKER_H */

/*
 * worker.h — the decide background worker (see worker.c).
 */
#ifndef DECIDE_WORKER_H
#define DECIDE_WORKER_H

/* From _PG_init at preload. */
extern void worker_register(void);

#endif							/* DECIDE_WORKER_H */

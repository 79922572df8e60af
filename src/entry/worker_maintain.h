/*
 * worker_maintain.h — the worker's maintenance (see worker_maintain.c).
 */
#ifndef DECIDE_WORKER_MAINTAIN_H
#define DECIDE_WORKER_MAINTAIN_H

/* Partitions ahead and retention, in a transaction of their own (a
 * failure is reported and left for the next interval); starts the ANALYZE
 * helper when an ANALYZE is due. */
extern void maintain(void);

/* Stops the ANALYZE helper this worker started, if it still runs. */
extern void maintain_stop_analyze(void);

#endif							/* DECIDE_WORKER_MAINTAIN_H */

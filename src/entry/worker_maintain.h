/*
 * worker_maintain.h — the worker's maintenance (see worker_maintain.c).
 */
#ifndef DECIDE_WORKER_MAINTAIN_H
#define DECIDE_WORKER_MAINTAIN_H

/* Partitions ahead, retention, ANALYZE, in a transaction of their own;
 * a failure is reported and left for the next interval. */
extern void maintain(void);

#endif							/* DECIDE_WORKER_MAINTAIN_H */

/*
 * worker_maintain.h — the worker's maintenance (see worker_maintain.c).
 */
#ifndef DECIDE_WORKER_MAINTAIN_H
#define DECIDE_WORKER_MAINTAIN_H

/* Partitions ahead, retention, ANALYZE; in a transaction with SPI. */
extern void maintain(void *arg);

#endif							/* DECIDE_WORKER_MAINTAIN_H */

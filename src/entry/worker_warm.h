/*
 * worker_warm.h — the worker's warming of the shared cache (see
 * worker_warm.c).
 */
#ifndef DECIDE_WORKER_WARM_H
#define DECIDE_WORKER_WARM_H

/* decide.warm: whether workers warm at all. */
extern bool decide_warm;

extern void warm_define_gucs(void);
extern void warm_init(void);

/* One bounded slice of warming; *pending when more is left. */
extern void warm_slice(bool *pending);

/* Queues, once, the most frequent requests of the recent log. */
extern void warm_plan_from_log(void);

#endif							/* DECIDE_WORKER_WARM_H */

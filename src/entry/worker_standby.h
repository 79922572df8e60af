/*
 * worker_standby.h — the worker's side of standbys' decision logs through
 * Redis (see worker_standby.c).
 */
#ifndef DECIDE_WORKER_STANDBY_H
#define DECIDE_WORKER_STANDBY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/uuid.h"

/* On a standby: one batch of the ring to this standby's stream; false when empty or failed. */
extern bool standby_forward_once(char *buf, const pg_uuid_t *store_id);

/* On the primary: writes what standbys forwarded, until the deadline. */
extern void standby_receive(const pg_uuid_t *store_id, TimestampTz deadline);

/* Reports skipped entries in the server log, at most once a minute. */
extern void standby_report_garbage(void);

#endif							/* DECIDE_WORKER_STANDBY_H */

/*
 * shared_sets.h — compiled policy sets kept once per server, in shared
 * memory (see shared_sets.c).
 */
#ifndef DECIDE_SHARED_SETS_H
#define DECIDE_SHARED_SETS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/uuid.h"

extern void shared_sets_define_gucs(void);
extern void shared_sets_shmem_request(void);
extern void shared_sets_shmem_startup(void);

typedef enum SharedSetLookup
{
	SHARED_SET_FOUND,			/* *image is the published set, pinned */
	SHARED_SET_BUILD,			/* the caller builds it, then publishes or abandons */
	SHARED_SET_UNAVAILABLE		/* not preloaded, switched off, or no slot: build privately */
} SharedSetLookup;

/*
 * The set of this database at this version: pinned if published; else the
 * right to build it, unless another process is building it, in which case
 * this waits for it (or takes over if that process died).
 */
extern SharedSetLookup shared_sets_acquire(const pg_uuid_t *version, int64 epoch,
										   const char **image, int *slot);

/*
 * Copies a built image into shared memory and pins it for the caller; false
 * when it does not fit within decide.shared_policy_memory (the caller keeps
 * its private copy; counted as a fallback).
 */
extern bool shared_sets_publish(int slot, const char *image, Size size, double build_ms,
								const char **shared_image);

/* The builder failed: others waiting build it themselves. */
extern void shared_sets_abandon(int slot);

/* Unpins a set; the last process to leave a superseded set frees it. */
extern void shared_sets_release(int slot);

/* What decide_stats shows of the shared set of this version (this backend's). */
typedef struct SharedSetReport
{
	bool		present;
	int64		epoch;
	uint64		bytes;
	TimestampTz built_at;
	double		build_ms;
	uint64		bytes_in_use;	/* every shared set of the server */
} SharedSetReport;

extern void shared_sets_report(const pg_uuid_t *version, SharedSetReport *report);

#endif							/* DECIDE_SHARED_SETS_H */

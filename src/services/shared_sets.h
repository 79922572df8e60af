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

/* What a slot holds: both are images built once per version of a database. */
typedef enum SharedSetKind
{
	SHARED_POLICY_SET,			/* policy_set.c, per policy-set version */
	SHARED_ENTITY_IMAGE			/* entity_images.c, per entities version */
} SharedSetKind;

typedef enum SharedSetLookup
{
	SHARED_SET_FOUND,			/* *image is the published set, pinned */
	SHARED_SET_BUILD,			/* the caller builds it, then publishes or abandons */
	SHARED_SET_UNAVAILABLE		/* not preloaded, switched off, or no slot: build privately */
} SharedSetLookup;

/*
 * The image of this kind of this database at this version: pinned if
 * published; else the right to build it, unless another process is
 * building it, in which case a policy set waits for it (or takes over if
 * that process died) and an entity image is unavailable for now.  An entity
 * image is not built again within nine times the last build's duration of
 * its end (building takes at most a tenth of the time).
 */
extern SharedSetLookup shared_sets_acquire(SharedSetKind kind, const pg_uuid_t *version,
										   int64 epoch, const char **image, int *slot);

/*
 * Copies a built image into shared memory and pins it for the caller; false
 * when it does not fit within decide.shared_policy_memory (the caller keeps
 * its private copy; counted as a fallback).
 */
extern bool shared_sets_publish(int slot, const char *image, Size size, double build_ms,
								const char **shared_image);

/* The builder failed: others waiting build it themselves. */
extern void shared_sets_abandon(int slot);

/* The builder found it too large: nobody builds this version. */
extern void shared_sets_give_up(int slot);

/* Bytes the images may take (decide.shared_policy_memory); 0: none. */
extern Size shared_sets_memory_limit(void);

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

extern void shared_sets_report(SharedSetKind kind, const pg_uuid_t *version,
							   SharedSetReport *report);

#endif							/* DECIDE_SHARED_SETS_H */

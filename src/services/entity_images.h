/*
 * entity_images.h — decide.entities once per entities version, in shared
 * memory (see entity_images.c).
 */
#ifndef DECIDE_ENTITY_IMAGES_H
#define DECIDE_ENTITY_IMAGES_H

#include "postgres.h"

#include "policy_set.h"

/*
 * Whether this process may build images (the worker does not: a build
 * would stall its log flushing and count against its warming budget).
 */
extern bool entity_images_may_build;

/*
 * The image of the entities under this set (src/core/entity_image.h),
 * pinned until the set's entities version changes, or NULL: read the table.
 * A set of an earlier epoch gives its own.
 */
extern const void *entity_images_get(const PolicySet *set);

/*
 * The image of every entity as it was at an epoch, from decide_entities_at()
 * in functions_schema (the caller is connected to SPI), built in context;
 * a set of that epoch (policy_set_as_of) carries it as its entities.
 */
extern const void *entity_images_as_of(int64 epoch, Oid functions_schema,
									   MemoryContext context);

#endif							/* DECIDE_ENTITY_IMAGES_H */

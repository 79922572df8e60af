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
 */
extern const void *entity_images_get(const PolicySet *set);

#endif							/* DECIDE_ENTITY_IMAGES_H */

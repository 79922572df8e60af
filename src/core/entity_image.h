/*
 * entity_image.h — every row of decide.entities in one block of memory:
 * uid, parents and attributes, in uid order (bytes, as collation "C"
 * orders them) and found by uid through a hash table.  The
 * block refers to itself by offsets only, so it can be copied into shared
 * memory and read there by every backend (entity_images.c).  Pure C.
 */
#ifndef DECIDE_ENTITY_IMAGE_H
#define DECIDE_ENTITY_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evaluator.h"

/* One entity as the builder takes it. */
typedef struct DecEntityRow
{
	DecStr		uid;
	const DecStr *parents;
	uint32_t	n_parents;
	const char *attrs;			/* the attributes' bytes (a jsonb, header included); NULL: none */
	uint32_t	attrs_len;
} DecEntityRow;

/* One entity as a lookup finds it; pointers into the image. */
typedef struct DecEntityView
{
	DecStr		uid;
	uint32_t	n_parents;
	const char *attrs;			/* 8-byte aligned; NULL: none; equal pointers for
								 * equal attributes */
	uint32_t	attrs_len;
	uint32_t	attrs_id;		/* 1 to dec_entity_image_attrs_count(): which
								 * distinct attributes; 0: none */
	uint32_t	index;			/* its place in uid order */
	uint32_t	parents_id;		/* equal for entities with equal parent lists */
} DecEntityView;

/*
 * Builds the image of n rows with distinct uids into memory from the
 * allocator (8-byte aligned).  NULL if it would exceed 4 GB.
 */
extern void *dec_entity_image_build(const DecEntityRow *rows, uint32_t n,
									const DecAllocator *allocator, size_t *size);

/* Finds an entity by uid; false: the image has no row for it. */
extern bool dec_entity_image_find(const void *image, const char *uid, uint32_t len,
								  DecEntityView *view);

/* Parent i (0 <= i < view->n_parents) of a found entity. */
extern DecStr dec_entity_image_parent(const void *image, const DecEntityView *view, uint32_t i);

extern uint32_t dec_entity_image_count(const void *image);

/* How many distinct attributes the entities have (the largest attrs_id). */
extern uint32_t dec_entity_image_attrs_count(const void *image);

/* The entity at a place in uid order (0 <= index < count). */
extern void dec_entity_image_at(const void *image, uint32_t index, DecEntityView *view);

/* The place of the first entity whose uid is not below the given bytes. */
extern uint32_t dec_entity_image_lower_bound(const void *image, const char *uid, uint32_t len);

/*
 * The entities whose uid is the prefix followed by an integer written as
 * int8out writes it ("0", "42", "-7"; no sign, zero or space before), by
 * that integer: places[k - *first] is the place + 1 of the entity with key
 * k, 0 if none, for *n keys from *first.  A table's rows find their
 * entities through it in the order of their keys, never in the order of
 * the hash.  NULL when no uid has that form, or when their keys spread over
 * more than four times as many integers as there are keys (plus 1024).
 */
extern uint32_t *dec_entity_image_number_index(const void *image, const char *prefix,
											   uint32_t prefix_len,
											   const DecAllocator *allocator,
											   int64_t *first, uint64_t *n);

#endif							/* DECIDE_ENTITY_IMAGE_H */

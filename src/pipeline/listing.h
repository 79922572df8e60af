/*
 * listing.h — authorized listing: the entities a request with one part
 * left free allows (decide_resources, decide_actors).
 */
#ifndef DECIDE_LISTING_H
#define DECIDE_LISTING_H

#include "postgres.h"

#include "evaluator.h"
#include "policy_set.h"
#include "utils/jsonb.h"

typedef struct ListingRequest
{
	DecDim		free_dim;		/* the part listed: DEC_RESOURCE or DEC_ACTOR */
	DecStr		uid[DEC_NDIMS];	/* the two other parts, validated */
	Jsonb	   *context;		/* validated */
	DecStr		prefix;			/* only uids that start with it ("": all) */
	bool		has_after;
	DecStr		after;			/* only uids after it (keyset pages) */
	int64		page_size;		/* at most this many rows; -1: all */
} ListingRequest;

/* One allowed entity, with the policy that allowed it (both transient). */
typedef void (*ListingEmitFn) (DecStr uid, const char *policy, void *arg);

/* Forgets every row emitted so far: the listing starts over. */
typedef void (*ListingDiscardFn) (void *arg);

/*
 * Emits, in uid order, every uid of decide.entities that starts with the
 * prefix, comes after the cursor, and for which the request with that uid
 * in its free part is allowed, as decide_allowed() would decide it, up to
 * page_size rows.  If policies or entities change during the listing, it
 * discards what it emitted and starts over under the new state.
 */
extern void listing_run(const ListingRequest *request, ListingEmitFn emit,
						ListingDiscardFn discard, void *arg);

/* A plan kept between checks (listing_check). */
typedef struct ListingCheck ListingCheck;

/*
 * Whether the request with uid in its free part is allowed, as
 * decide_allowed() would decide it, by the plan of a listing: *check (NULL
 * at first, then allocated in context) keeps it while the request's other
 * parts, its context and prefix (which uid starts with) stay the same
 * (same_request: listing_check_same_request() said so), and the policy
 * set too, so that checking many uids of one request costs little more
 * than finding each entity.  number, if not NULL, is the integer that
 * follows the prefix in uid (as int8out writes it).
 */
extern bool listing_check(ListingCheck **check, MemoryContext context,
						  const ListingRequest *request, bool same_request, DecStr uid,
						  const int64 *number);

/* Is the request that of the kept plan (the free uid aside)?  False if none. */
extern bool listing_check_same_request(const ListingCheck *check,
									   const ListingRequest *request);

#endif							/* DECIDE_LISTING_H */

/*
 * evaluator.c — compiles policies into an index and decides requests.
 *
 * Index.  Each pattern is reduced to a key in its dimension: an exact
 * pattern to the uid itself, a glob to its literal prefix (the bytes before
 * the first '*' or '?'; "" for '*').  Keys are interned to small integers per
 * dimension, and policies are grouped by their (actor, action, resource) key
 * triple in a hash table, each group in rank order.
 *
 * Lookup.  For each dimension the request's entity and ancestors are turned
 * into the keys they can meet: each uid as an exact key, and each of its
 * prefixes whose length some glob prefix has (a sorted list of distinct
 * lengths, so at most one probe per length).  Only triples of keys that exist
 * are visited (a pair table prunes actor x action first), so the cost of a
 * decision follows the number of policies that could match, not the number
 * of policies.  Globs are then checked in full on the few candidates.
 *
 * Image.  The compiled index is one block of memory that refers to itself
 * by offsets only (ImageHeader below), so that it can be copied anywhere —
 * into shared memory, mapped at a different address in every process — and
 * read there as it is.  It is built with pointer-based tables in scratch
 * memory, then written out flat.
 *
 * Everything is pure C over caller-provided memory; see evaluator.h.
 */
#include "evaluator.h"
#include "hash.h"

#include <stdlib.h>
#include <string.h>

typedef enum PatternKind
{
	PATTERN_EXACT,				/* a uid */
	PATTERN_ANY,				/* only stars: matches everything */
	PATTERN_GLOB				/* anything else with '*' or '?' */
} PatternKind;

/* ---- the image: offsets are bytes from the image's first byte ---- */

#define IMAGE_MAGIC 0x44504931	/* "DPI1" */
#define IMAGE_ALIGN 8

typedef struct ImagePolicy
{
	int64_t		id;
	int32_t		priority;
	uint32_t	rank;
	uint32_t	pattern_off[DEC_NDIMS];
	uint32_t	pattern_len[DEC_NDIMS];
	uint32_t	key[DEC_NDIMS];
	uint8_t		kind[DEC_NDIMS];
	uint8_t		effect;
	uint8_t		has_condition;
} ImagePolicy;

/* Open-addressing table from byte strings to key ids. */
typedef struct ImageKeySlot
{
	uint64_t	hash;
	uint32_t	str_off;
	uint32_t	len;
	uint32_t	id;				/* EMPTY_ID: empty */
	uint32_t	padding;
} ImageKeySlot;

typedef struct ImageKeyTable
{
	uint32_t	slots_off;
	uint32_t	mask;
	uint32_t	used;
} ImageKeyTable;

/* Open-addressing table from key tuples to a group of policies. */
typedef struct GroupSlot
{
	uint32_t	key[DEC_NDIMS];
	uint32_t	first;			/* into the members array */
	uint32_t	count;			/* 0: empty */
} GroupSlot;

typedef struct ImageGroupTable
{
	uint32_t	slots_off;
	uint32_t	mask;
} ImageGroupTable;

typedef struct ImageDimension
{
	ImageKeyTable exact;
	ImageKeyTable prefixes;
	uint32_t	prefix_lengths_off;	/* distinct glob prefix lengths, ascending */
	uint32_t	n_prefix_lengths;
} ImageDimension;

typedef struct ImageHeader
{
	uint32_t	magic;
	uint32_t	size;			/* of the whole image */
	uint32_t	n_policies;
	uint32_t	policies_off;	/* ImagePolicy[n_policies], by index */
	uint32_t	by_rank_off;	/* uint32[n_policies]: index at each rank */
	uint32_t	members_off;	/* uint32[n_policies]: indexes, grouped */
	ImageDimension dims[DEC_NDIMS];
	ImageGroupTable triples;	/* (actor, action, resource) keys -> policies */
	ImageGroupTable pairs;		/* (actor, action) keys -> exists */
} ImageHeader;

/* A process's view of an image: the image, and how to count characters. */
struct DecPolicySet
{
	const char *base;
	const ImageHeader *header;
	DecCharLenFn char_len;
};

#define EMPTY_ID UINT32_MAX

#define AT(set, type, off) ((const type *) ((set)->base + (off)))

/* ---- the build: pointer-based tables in scratch memory ---- */

typedef struct BuildKeySlot
{
	uint64_t	hash;
	const char *ptr;
	uint32_t	len;
	uint32_t	id;				/* EMPTY_ID: empty */
	uint32_t	policy;			/* whose pattern the bytes are a prefix of */
} BuildKeySlot;

typedef struct BuildKeyTable
{
	BuildKeySlot *slots;
	uint32_t	mask;
	uint32_t	used;
} BuildKeyTable;

typedef struct BuildGroupTable
{
	GroupSlot  *slots;
	uint32_t	mask;
} BuildGroupTable;

static void *
alloc_zero(const DecAllocator *a, size_t size)
{
	void	   *p = a->alloc(a->state, size ? size : 1);

	memset(p, 0, size);
	return p;
}

static uint64_t
hash_bytes(const char *ptr, uint32_t len)
{
	uint64_t	h = dec_fnv1a(ptr, len);

	return h ^ (h >> 29);
}

static uint64_t
hash_ids(const uint32_t *ids, int n)
{
	uint64_t	h = 0x9e3779b97f4a7c15ULL;
	int			i;

	for (i = 0; i < n; i++)
	{
		h ^= ids[i];
		h *= 0xbf58476d1ce4e5b9ULL;	/* splitmix64 finaliser steps */
		h ^= h >> 31;
	}
	return h;
}

static uint32_t
table_capacity(uint32_t entries)
{
	uint32_t	cap = 8;

	while (cap < entries * 2)
		cap <<= 1;
	return cap;
}

static void
build_table_init(BuildKeyTable *t, uint32_t capacity, const DecAllocator *a)
{
	uint32_t	i;

	t->slots = a->alloc(a->state, sizeof(BuildKeySlot) * capacity);
	for (i = 0; i < capacity; i++)
		t->slots[i].id = EMPTY_ID;
	t->mask = capacity - 1;
	t->used = 0;
}

static const BuildKeySlot *
build_table_find(const BuildKeyTable *t, const char *ptr, uint32_t len, uint64_t hash)
{
	uint32_t	i;

	for (i = (uint32_t) hash & t->mask;; i = (i + 1) & t->mask)
	{
		const BuildKeySlot *slot = &t->slots[i];

		if (slot->id == EMPTY_ID)
			return NULL;
		if (slot->hash == hash && slot->len == len && memcmp(slot->ptr, ptr, len) == 0)
			return slot;
	}
}

/*
 * Returns the key id of the first len bytes of a policy's pattern,
 * interning them with next_id if new.
 */
static uint32_t
build_table_intern(BuildKeyTable *t, const char *ptr, uint32_t len, uint32_t policy,
				   uint32_t *next_id, const DecAllocator *a)
{
	uint64_t	hash = hash_bytes(ptr, len);
	const BuildKeySlot *found = build_table_find(t, ptr, len, hash);
	uint32_t	i;

	if (found)
		return found->id;
	if ((t->used + 1) * 2 > t->mask + 1)
	{
		BuildKeyTable bigger;
		uint32_t	j;

		build_table_init(&bigger, (t->mask + 1) * 2, a);
		for (j = 0; j <= t->mask; j++)
		{
			BuildKeySlot *old = &t->slots[j];

			if (old->id == EMPTY_ID)
				continue;
			for (i = (uint32_t) old->hash & bigger.mask;
				 bigger.slots[i].id != EMPTY_ID;
				 i = (i + 1) & bigger.mask)
				;
			bigger.slots[i] = *old;
		}
		bigger.used = t->used;
		*t = bigger;
	}
	for (i = (uint32_t) hash & t->mask; t->slots[i].id != EMPTY_ID; i = (i + 1) & t->mask)
		;
	t->slots[i].hash = hash;
	t->slots[i].ptr = ptr;
	t->slots[i].len = len;
	t->slots[i].policy = policy;
	t->slots[i].id = (*next_id)++;
	t->used++;
	return t->slots[i].id;
}

static const GroupSlot *
group_find(const GroupSlot *slots, uint32_t mask, const uint32_t *key, int n)
{
	uint32_t	i;

	for (i = (uint32_t) hash_ids(key, n) & mask;; i = (i + 1) & mask)
	{
		const GroupSlot *slot = &slots[i];

		if (slot->count == 0)
			return NULL;
		if (memcmp(slot->key, key, sizeof(uint32_t) * n) == 0)
			return slot;
	}
}

/* Adds a group; the key must not be present yet and the table not full. */
static void
group_insert(BuildGroupTable *t, const uint32_t *key, int n, uint32_t first, uint32_t count)
{
	uint32_t	i;

	for (i = (uint32_t) hash_ids(key, n) & t->mask; t->slots[i].count != 0; i = (i + 1) & t->mask)
		;
	memcpy(t->slots[i].key, key, sizeof(uint32_t) * n);
	t->slots[i].first = first;
	t->slots[i].count = count;
}

static int
compare_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a;
	uint32_t	y = *(const uint32_t *) b;

	return (x > y) - (x < y);
}

typedef struct RankSortItem
{
	int32_t		priority;
	DecEffect	effect;
	int64_t		id;
	uint32_t	index;
} RankSortItem;

/* Rank order is the combining rule: priority desc, deny first, id asc. */
static int
compare_rank(const void *a, const void *b)
{
	const RankSortItem *x = a;
	const RankSortItem *y = b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	if (x->effect != y->effect)
		return x->effect == DEC_DENY ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

typedef struct GroupSortItem
{
	uint32_t	key[DEC_NDIMS];
	uint32_t	rank;
	uint32_t	index;
} GroupSortItem;

static int
compare_group(const void *a, const void *b)
{
	const GroupSortItem *x = a;
	const GroupSortItem *y = b;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
		if (x->key[d] != y->key[d])
			return x->key[d] < y->key[d] ? -1 : 1;
	return (x->rank > y->rank) - (x->rank < y->rank);
}

static PatternKind
classify(DecStr pattern)
{
	uint32_t	i;
	bool		only_stars = pattern.len > 0;

	for (i = 0; i < pattern.len; i++)
		if (pattern.ptr[i] != '*')
			only_stars = false;
	if (only_stars)
		return PATTERN_ANY;
	return dec_is_glob(pattern.ptr, pattern.len) ? PATTERN_GLOB : PATTERN_EXACT;
}

/* Reserves bytes in the image being laid out; returns their offset. */
static uint64_t
reserve(uint64_t *size, uint64_t bytes)
{
	uint64_t	off = (*size + IMAGE_ALIGN - 1) & ~(uint64_t) (IMAGE_ALIGN - 1);

	*size = off + bytes;
	return off;
}

/* The sizes and offsets of an image, computed before it is written. */
typedef struct ImageLayout
{
	uint64_t	size;
	uint64_t	policies_off;
	uint64_t	by_rank_off;
	uint64_t	members_off;
	uint64_t	exact_off[DEC_NDIMS];
	uint64_t	prefixes_off[DEC_NDIMS];
	uint64_t	lengths_off[DEC_NDIMS];
	uint64_t	triples_off;
	uint64_t	pairs_off;
	uint64_t	patterns_off;	/* every pattern, one after the other */
} ImageLayout;

static void
write_key_table(char *image, uint64_t off, const BuildKeyTable *t,
				const uint32_t (*pattern_off)[DEC_NDIMS], int d, ImageKeyTable *out)
{
	ImageKeySlot *slots = (ImageKeySlot *) (image + off);
	uint32_t	i;

	for (i = 0; i <= t->mask; i++)
	{
		slots[i].hash = t->slots[i].hash;
		slots[i].len = t->slots[i].len;
		slots[i].id = t->slots[i].id;
		slots[i].padding = 0;
		slots[i].str_off = t->slots[i].id == EMPTY_ID ? 0 : pattern_off[t->slots[i].policy][d];
	}
	out->slots_off = (uint32_t) off;
	out->mask = t->mask;
	out->used = t->used;
}

DecPolicySet *
dec_compile(const DecPolicyDef *defs, uint32_t count, DecCharLenFn char_len,
			const DecAllocator *a, const DecAllocator *scratch)
{
	RankSortItem *ranked = alloc_zero(scratch, sizeof(RankSortItem) * count);
	GroupSortItem *grouped = alloc_zero(scratch, sizeof(GroupSortItem) * count);
	uint32_t   *rank_of = alloc_zero(scratch, sizeof(uint32_t) * count);
	uint32_t   *by_rank = alloc_zero(scratch, sizeof(uint32_t) * count);
	uint32_t   *members = alloc_zero(scratch, sizeof(uint32_t) * count);
	uint32_t	(*key)[DEC_NDIMS] = alloc_zero(scratch, sizeof(uint32_t[DEC_NDIMS]) * count);
	uint8_t		(*kind)[DEC_NDIMS] = alloc_zero(scratch, sizeof(uint8_t[DEC_NDIMS]) * count);
	uint32_t	(*pattern_off)[DEC_NDIMS] = alloc_zero(scratch, sizeof(uint32_t[DEC_NDIMS]) * count);
	BuildKeyTable exact[DEC_NDIMS];
	BuildKeyTable prefixes[DEC_NDIMS];
	uint32_t   *lengths[DEC_NDIMS];
	uint32_t	n_lengths[DEC_NDIMS];
	uint32_t	n_keys[DEC_NDIMS] = {0};
	BuildGroupTable triples;
	BuildGroupTable pairs;
	ImageLayout layout;
	ImageHeader *header;
	char	   *image;
	uint64_t	pattern_bytes = 0;
	uint32_t	i,
				d,
				n_groups,
				n_pairs;

	for (i = 0; i < count; i++)
	{
		ranked[i].priority = defs[i].priority;
		ranked[i].effect = defs[i].effect;
		ranked[i].id = defs[i].id;
		ranked[i].index = i;
	}
	qsort(ranked, count, sizeof(RankSortItem), compare_rank);
	for (i = 0; i < count; i++)
	{
		by_rank[i] = ranked[i].index;
		rank_of[ranked[i].index] = i;
	}

	for (d = 0; d < DEC_NDIMS; d++)
	{
		build_table_init(&exact[d], 8, scratch);
		build_table_init(&prefixes[d], 8, scratch);
	}
	for (i = 0; i < count; i++)
	{
		for (d = 0; d < DEC_NDIMS; d++)
		{
			DecStr		pattern = defs[i].pattern[d];

			kind[i][d] = classify(pattern);
			if (kind[i][d] == PATTERN_EXACT)
				key[i][d] = build_table_intern(&exact[d], pattern.ptr, pattern.len, i,
											   &n_keys[d], scratch);
			else
				key[i][d] = build_table_intern(&prefixes[d], pattern.ptr,
											   kind[i][d] == PATTERN_ANY ? 0 :
											   (uint32_t) dec_glob_literal_prefix(pattern.ptr,
																				  pattern.len),
											   i, &n_keys[d], scratch);
			grouped[i].key[d] = key[i][d];
			pattern_bytes += pattern.len + 1;
		}
		grouped[i].rank = rank_of[i];
		grouped[i].index = i;
	}

	/* Distinct glob prefix lengths per dimension, ascending. */
	for (d = 0; d < DEC_NDIMS; d++)
	{
		uint32_t	n = 0;
		uint32_t	j;

		lengths[d] = alloc_zero(scratch, sizeof(uint32_t) * (prefixes[d].used + 1));
		for (j = 0; j <= prefixes[d].mask; j++)
			if (prefixes[d].slots[j].id != EMPTY_ID)
				lengths[d][n++] = prefixes[d].slots[j].len;
		qsort(lengths[d], n, sizeof(uint32_t), compare_u32);
		n_lengths[d] = 0;
		for (j = 0; j < n; j++)
			if (j == 0 || lengths[d][j] != lengths[d][j - 1])
				lengths[d][n_lengths[d]++] = lengths[d][j];
	}

	/* Group policies by key triple, rank order within each group. */
	qsort(grouped, count, sizeof(GroupSortItem), compare_group);
	n_groups = 0;
	n_pairs = 0;
	for (i = 0; i < count; i++)
	{
		if (i == 0 || memcmp(grouped[i].key, grouped[i - 1].key, sizeof(grouped[i].key)) != 0)
			n_groups++;
		if (i == 0 || memcmp(grouped[i].key, grouped[i - 1].key, sizeof(uint32_t) * 2) != 0)
			n_pairs++;
	}
	triples.mask = table_capacity(n_groups) - 1;
	triples.slots = alloc_zero(scratch, sizeof(GroupSlot) * (triples.mask + 1));
	pairs.mask = table_capacity(n_pairs) - 1;
	pairs.slots = alloc_zero(scratch, sizeof(GroupSlot) * (pairs.mask + 1));
	for (i = 0; i < count;)
	{
		uint32_t	j = i;

		while (j < count && memcmp(grouped[j].key, grouped[i].key, sizeof(grouped[i].key)) == 0)
		{
			members[j] = grouped[j].index;
			j++;
		}
		group_insert(&triples, grouped[i].key, DEC_NDIMS, i, j - i);
		if (i == 0 || memcmp(grouped[i].key, grouped[i - 1].key, sizeof(uint32_t) * 2) != 0)
			group_insert(&pairs, grouped[i].key, 2, i, 1);
		i = j;
	}

	/* Lay the image out, then write it. */
	memset(&layout, 0, sizeof(layout));
	layout.size = sizeof(ImageHeader);
	layout.policies_off = reserve(&layout.size, sizeof(ImagePolicy) * (uint64_t) count);
	layout.by_rank_off = reserve(&layout.size, sizeof(uint32_t) * (uint64_t) count);
	layout.members_off = reserve(&layout.size, sizeof(uint32_t) * (uint64_t) count);
	for (d = 0; d < DEC_NDIMS; d++)
	{
		layout.exact_off[d] = reserve(&layout.size, sizeof(ImageKeySlot) * ((uint64_t) exact[d].mask + 1));
		layout.prefixes_off[d] = reserve(&layout.size,
										 sizeof(ImageKeySlot) * ((uint64_t) prefixes[d].mask + 1));
		layout.lengths_off[d] = reserve(&layout.size, sizeof(uint32_t) * ((uint64_t) n_lengths[d] + 1));
	}
	layout.triples_off = reserve(&layout.size, sizeof(GroupSlot) * ((uint64_t) triples.mask + 1));
	layout.pairs_off = reserve(&layout.size, sizeof(GroupSlot) * ((uint64_t) pairs.mask + 1));
	layout.patterns_off = reserve(&layout.size, pattern_bytes);
	layout.size = reserve(&layout.size, 0);
	if (layout.size > UINT32_MAX)
		return NULL;			/* offsets are 32 bits: too large to compile */

	image = alloc_zero(a, layout.size);
	header = (ImageHeader *) image;
	header->magic = IMAGE_MAGIC;
	header->size = (uint32_t) layout.size;
	header->n_policies = count;
	header->policies_off = (uint32_t) layout.policies_off;
	header->by_rank_off = (uint32_t) layout.by_rank_off;
	header->members_off = (uint32_t) layout.members_off;
	{
		ImagePolicy *policies = (ImagePolicy *) (image + layout.policies_off);
		uint64_t	at = layout.patterns_off;

		for (i = 0; i < count; i++)
		{
			ImagePolicy *p = &policies[i];

			p->id = defs[i].id;
			p->priority = defs[i].priority;
			p->effect = (uint8_t) defs[i].effect;
			p->has_condition = defs[i].has_condition;
			p->rank = rank_of[i];
			for (d = 0; d < DEC_NDIMS; d++)
			{
				DecStr		pattern = defs[i].pattern[d];

				if (pattern.len > 0)
					memcpy(image + at, pattern.ptr, pattern.len);
				p->pattern_off[d] = (uint32_t) at;
				p->pattern_len[d] = pattern.len;
				pattern_off[i][d] = (uint32_t) at;
				at += pattern.len + 1;	/* NUL-terminated, zeroed already */
				p->kind[d] = kind[i][d];
				p->key[d] = key[i][d];
			}
		}
	}
	if (count > 0)
	{
		memcpy(image + layout.by_rank_off, by_rank, sizeof(uint32_t) * count);
		memcpy(image + layout.members_off, members, sizeof(uint32_t) * count);
	}
	for (d = 0; d < DEC_NDIMS; d++)
	{
		ImageDimension *dim = &header->dims[d];

		write_key_table(image, layout.exact_off[d], &exact[d],
						(const uint32_t (*)[DEC_NDIMS]) pattern_off, d, &dim->exact);
		write_key_table(image, layout.prefixes_off[d], &prefixes[d],
						(const uint32_t (*)[DEC_NDIMS]) pattern_off, d, &dim->prefixes);
		memcpy(image + layout.lengths_off[d], lengths[d], sizeof(uint32_t) * n_lengths[d]);
		dim->prefix_lengths_off = (uint32_t) layout.lengths_off[d];
		dim->n_prefix_lengths = n_lengths[d];
	}
	memcpy(image + layout.triples_off, triples.slots, sizeof(GroupSlot) * (triples.mask + 1));
	header->triples.slots_off = (uint32_t) layout.triples_off;
	header->triples.mask = triples.mask;
	memcpy(image + layout.pairs_off, pairs.slots, sizeof(GroupSlot) * (pairs.mask + 1));
	header->pairs.slots_off = (uint32_t) layout.pairs_off;
	header->pairs.mask = pairs.mask;

	return dec_policy_set_open(image, char_len, a);
}

DecPolicySet *
dec_policy_set_open(const void *image, DecCharLenFn char_len, const DecAllocator *a)
{
	DecPolicySet *set = alloc_zero(a, sizeof(DecPolicySet));

	set->base = image;
	set->header = image;
	set->char_len = char_len ? char_len : dec_utf8_char_len;
	return set;
}

const void *
dec_policy_set_image(const DecPolicySet *set, size_t *size)
{
	*size = set->header->size;
	return set->base;
}

uint32_t
dec_policy_count(const DecPolicySet *set)
{
	return set->header->n_policies;
}

static const ImagePolicy *
policy_at(const DecPolicySet *set, uint32_t index)
{
	return AT(set, ImagePolicy, set->header->policies_off) + index;
}

uint32_t
dec_policy_at_rank(const DecPolicySet *set, uint32_t rank)
{
	return AT(set, uint32_t, set->header->by_rank_off)[rank];
}

static const ImageKeySlot *
key_find(const DecPolicySet *set, const ImageKeyTable *t, const char *ptr, uint32_t len,
		 uint64_t hash)
{
	const ImageKeySlot *slots = AT(set, ImageKeySlot, t->slots_off);
	uint32_t	i;

	if (t->used == 0)
		return NULL;
	for (i = (uint32_t) hash & t->mask;; i = (i + 1) & t->mask)
	{
		const ImageKeySlot *slot = &slots[i];

		if (slot->id == EMPTY_ID)
			return NULL;
		if (slot->hash == hash && slot->len == len &&
			memcmp(set->base + slot->str_off, ptr, len) == 0)
			return slot;
	}
}

/* Does the pattern of one dimension match the entity or an ancestor? */
static bool
pattern_matches(const DecPolicySet *set, const ImagePolicy *p, int d,
				const DecEntitySet *entities)
{
	const char *pattern = set->base + p->pattern_off[d];
	uint32_t	pattern_len = p->pattern_len[d];
	uint32_t	i;

	if (p->kind[d] == PATTERN_ANY)
		return true;
	for (i = 0; i < entities->count; i++)
	{
		const DecStr *uid = &entities->uids[i];

		if (p->kind[d] == PATTERN_EXACT)
		{
			if (uid->len == pattern_len && memcmp(uid->ptr, pattern, uid->len) == 0)
				return true;
		}
		else if (dec_glob_match(pattern, pattern_len, uid->ptr, uid->len, set->char_len))
			return true;
	}
	return false;
}

void
dec_match_patterns(const DecPolicySet *set, uint32_t policy,
				   const DecRequest *request, bool matched[DEC_NDIMS])
{
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
		matched[d] = pattern_matches(set, policy_at(set, policy), d, &request->dim[d]);
}

/*
 * The keys of one dimension that the request's entities can meet.  Exact
 * keys are distinct because uids are; a prefix key can be reached from
 * several uids, so those are de-duplicated.
 */
static uint32_t
collect_keys(const DecPolicySet *set, const ImageDimension *dim, const DecEntitySet *entities,
			 const DecAllocator *scratch, uint32_t **keys_out)
{
	const uint32_t *prefix_lengths = AT(set, uint32_t, dim->prefix_lengths_off);
	uint32_t   *keys = scratch->alloc(scratch->state,
									  sizeof(uint32_t) * entities->count *
									  (dim->n_prefix_lengths + 1) + 1);
	uint32_t	n = 0;
	uint32_t	first_prefix_key;
	uint32_t	i,
				l;

	for (i = 0; i < entities->count; i++)
	{
		const DecStr *uid = &entities->uids[i];
		const ImageKeySlot *slot = key_find(set, &dim->exact, uid->ptr, uid->len,
											hash_bytes(uid->ptr, uid->len));

		if (slot)
			keys[n++] = slot->id;
	}
	first_prefix_key = n;
	for (i = 0; i < entities->count; i++)
	{
		const DecStr *uid = &entities->uids[i];

		for (l = 0; l < dim->n_prefix_lengths && prefix_lengths[l] <= uid->len; l++)
		{
			uint32_t	len = prefix_lengths[l];
			const ImageKeySlot *slot = key_find(set, &dim->prefixes, uid->ptr, len,
												hash_bytes(uid->ptr, len));
			uint32_t	k;

			if (slot == NULL)
				continue;
			for (k = first_prefix_key; k < n && keys[k] != slot->id; k++)
				;
			if (k == n)
				keys[n++] = slot->id;
		}
	}
	*keys_out = keys;
	return n;
}

#define INTERRUPT_CHECK_INTERVAL 256

void
dec_evaluate(const DecPolicySet *set, const DecRequest *request,
			 DecConditionFn condition, void *condition_arg,
			 const DecAllocator *scratch, DecDecision *decision,
			 DecInterruptFn check_interrupts)
{
	const ImageHeader *h = set->header;
	const GroupSlot *triples = AT(set, GroupSlot, h->triples.slots_off);
	const GroupSlot *pairs = AT(set, GroupSlot, h->pairs.slots_off);
	const uint32_t *members = AT(set, uint32_t, h->members_off);
	const uint32_t *by_rank = AT(set, uint32_t, h->by_rank_off);
	uint32_t   *keys[DEC_NDIMS];
	uint32_t	n_keys[DEC_NDIMS];
	const GroupSlot **groups = NULL;
	uint32_t	n_groups = 0;
	uint32_t	max_groups = 0;
	uint32_t	n_candidates = 0;
	uint32_t   *candidates;
	uint32_t	a,
				c,
				r,
				i;
	int			d;

	decision->policy = -1;
	decision->allowed = false;
	decision->condition_unknown = false;
	decision->candidates = 0;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		n_keys[d] = collect_keys(set, &h->dims[d], &request->dim[d], scratch, &keys[d]);
		if (n_keys[d] == 0)
			return;				/* nothing can match: default deny */
	}

	for (a = 0; a < n_keys[DEC_ACTOR]; a++)
		for (c = 0; c < n_keys[DEC_ACTION]; c++)
		{
			uint32_t	triple[DEC_NDIMS] = {keys[DEC_ACTOR][a], keys[DEC_ACTION][c], 0};

			if (check_interrupts && (a * n_keys[DEC_ACTION] + c) % INTERRUPT_CHECK_INTERVAL == 0)
				check_interrupts();
			if (group_find(pairs, h->pairs.mask, triple, 2) == NULL)
				continue;
			for (r = 0; r < n_keys[DEC_RESOURCE]; r++)
			{
				const GroupSlot *group;

				triple[DEC_RESOURCE] = keys[DEC_RESOURCE][r];
				group = group_find(triples, h->triples.mask, triple, DEC_NDIMS);
				if (group)
				{
					if (n_groups == max_groups)
					{
						const GroupSlot **bigger;

						max_groups = max_groups ? max_groups * 2 : 16;
						bigger = scratch->alloc(scratch->state, sizeof(GroupSlot *) * max_groups);
						if (n_groups)
							memcpy(bigger, groups, sizeof(GroupSlot *) * n_groups);
						groups = bigger;
					}
					groups[n_groups++] = group;
					n_candidates += group->count;
				}
			}
		}
	if (n_candidates == 0)
		return;

	/* Candidates by rank: the first one that matches decides. */
	candidates = scratch->alloc(scratch->state, sizeof(uint32_t) * n_candidates);
	n_candidates = 0;
	for (i = 0; i < n_groups; i++)
	{
		uint32_t	m;

		for (m = 0; m < groups[i]->count; m++)
			candidates[n_candidates++] = policy_at(set, members[groups[i]->first + m])->rank;
	}
	qsort(candidates, n_candidates, sizeof(uint32_t), compare_u32);

	for (i = 0; i < n_candidates; i++)
	{
		uint32_t	index = by_rank[candidates[i]];
		const ImagePolicy *p = policy_at(set, index);
		bool		unknown = false;

		/* Glob checks over many ancestors can add up: stay cancellable. */
		if (check_interrupts && i % INTERRUPT_CHECK_INTERVAL == 0)
			check_interrupts();
		decision->candidates++;
		/* Exact keys matched already; globs are checked in full here. */
		for (d = 0; d < DEC_NDIMS; d++)
			if (p->kind[d] == PATTERN_GLOB && !pattern_matches(set, p, d, &request->dim[d]))
				break;
		if (d < DEC_NDIMS)
			continue;
		if (p->has_condition)
		{
			DecConditionResult result = condition(condition_arg, index);

			if (result == DEC_COND_FALSE)
				continue;
			if (result == DEC_COND_UNKNOWN)
			{
				if (p->effect == DEC_ALLOW)
					continue;	/* fail closed: an unknown never allows */
				unknown = true;
			}
		}
		decision->policy = (int32_t) index;
		decision->allowed = p->effect == DEC_ALLOW;
		decision->condition_unknown = unknown;
		return;
	}
}

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
 * Everything is pure C over caller-provided memory; see evaluator.h.
 */
#include "evaluator.h"

#include <stdlib.h>
#include <string.h>

typedef enum PatternKind
{
	PATTERN_EXACT,				/* a uid */
	PATTERN_ANY,				/* only stars: matches everything */
	PATTERN_GLOB				/* anything else with '*' or '?' */
} PatternKind;

typedef struct CompiledPolicy
{
	int64_t		id;
	int32_t		priority;
	DecEffect	effect;
	bool		has_condition;
	uint32_t	rank;
	DecStr		pattern[DEC_NDIMS];
	uint8_t		kind[DEC_NDIMS];
	uint32_t	key[DEC_NDIMS];
} CompiledPolicy;

/* Open-addressing table from byte strings to key ids. */
typedef struct KeySlot
{
	uint64_t	hash;
	const char *ptr;
	uint32_t	len;
	uint32_t	id;				/* UINT32_MAX: empty */
} KeySlot;

typedef struct KeyTable
{
	KeySlot    *slots;
	uint32_t	mask;
	uint32_t	used;
} KeyTable;

/* Open-addressing table from key tuples to a group of policies. */
typedef struct GroupSlot
{
	uint32_t	key[DEC_NDIMS];
	uint32_t	first;			/* into DecPolicySet.members */
	uint32_t	count;			/* 0: empty */
} GroupSlot;

typedef struct GroupTable
{
	GroupSlot  *slots;
	uint32_t	mask;
} GroupTable;

typedef struct DimensionIndex
{
	KeyTable	exact;
	KeyTable	prefixes;
	uint32_t   *prefix_lengths;	/* distinct glob prefix lengths, ascending */
	uint32_t	n_prefix_lengths;
	uint32_t	n_keys;
} DimensionIndex;

struct DecPolicySet
{
	uint32_t	n_policies;
	CompiledPolicy *policies;
	uint32_t   *by_rank;
	DimensionIndex dims[DEC_NDIMS];
	GroupTable	triples;		/* (actor, action, resource) keys -> policies */
	GroupTable	pairs;			/* (actor, action) keys -> exists */
	uint32_t   *members;
	DecCharLenFn char_len;
};

#define EMPTY_ID UINT32_MAX

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
	uint64_t	h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	uint32_t	i;

	for (i = 0; i < len; i++)
	{
		h ^= (unsigned char) ptr[i];
		h *= 0x100000001b3ULL;
	}
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
key_table_init(KeyTable *t, uint32_t capacity, const DecAllocator *a)
{
	uint32_t	i;

	t->slots = a->alloc(a->state, sizeof(KeySlot) * capacity);
	for (i = 0; i < capacity; i++)
		t->slots[i].id = EMPTY_ID;
	t->mask = capacity - 1;
	t->used = 0;
}

static const KeySlot *
key_table_find(const KeyTable *t, const char *ptr, uint32_t len, uint64_t hash)
{
	uint32_t	i;

	if (t->used == 0)
		return NULL;
	for (i = (uint32_t) hash & t->mask;; i = (i + 1) & t->mask)
	{
		const KeySlot *slot = &t->slots[i];

		if (slot->id == EMPTY_ID)
			return NULL;
		if (slot->hash == hash && slot->len == len && memcmp(slot->ptr, ptr, len) == 0)
			return slot;
	}
}

/* Returns the key id of the string, interning it with next_id if new. */
static uint32_t
key_table_intern(KeyTable *t, const char *ptr, uint32_t len, uint32_t *next_id,
				 const DecAllocator *a)
{
	uint64_t	hash = hash_bytes(ptr, len);
	const KeySlot *found = key_table_find(t, ptr, len, hash);
	uint32_t	i;

	if (found)
		return found->id;
	if ((t->used + 1) * 2 > t->mask + 1)
	{
		KeyTable	bigger;
		uint32_t	j;

		key_table_init(&bigger, (t->mask + 1) * 2, a);
		for (j = 0; j <= t->mask; j++)
		{
			KeySlot    *old = &t->slots[j];

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
	t->slots[i].id = (*next_id)++;
	t->used++;
	return t->slots[i].id;
}

static const GroupSlot *
group_find(const GroupTable *t, const uint32_t *key, int n)
{
	uint32_t	i;

	for (i = (uint32_t) hash_ids(key, n) & t->mask;; i = (i + 1) & t->mask)
	{
		const GroupSlot *slot = &t->slots[i];

		if (slot->count == 0)
			return NULL;
		if (memcmp(slot->key, key, sizeof(uint32_t) * n) == 0)
			return slot;
	}
}

/* Adds a group; the key must not be present yet and the table not full. */
static void
group_insert(GroupTable *t, const uint32_t *key, int n, uint32_t first, uint32_t count)
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

static DecStr
copy_str(DecStr s, const DecAllocator *a)
{
	char	   *p = a->alloc(a->state, s.len + 1);
	DecStr		r;

	memcpy(p, s.ptr, s.len);
	p[s.len] = '\0';
	r.ptr = p;
	r.len = s.len;
	return r;
}

DecPolicySet *
dec_compile(const DecPolicyDef *defs, uint32_t count, DecCharLenFn char_len,
			const DecAllocator *a, const DecAllocator *scratch)
{
	DecPolicySet *set = alloc_zero(a, sizeof(DecPolicySet));
	RankSortItem *ranked = alloc_zero(scratch, sizeof(RankSortItem) * count);
	GroupSortItem *grouped = alloc_zero(scratch, sizeof(GroupSortItem) * count);
	uint32_t	i,
				d,
				n_groups,
				n_pairs;

	set->n_policies = count;
	set->char_len = char_len ? char_len : dec_utf8_char_len;
	set->policies = alloc_zero(a, sizeof(CompiledPolicy) * count);
	set->by_rank = alloc_zero(a, sizeof(uint32_t) * count);
	set->members = alloc_zero(a, sizeof(uint32_t) * count);

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
		set->by_rank[i] = ranked[i].index;
		set->policies[ranked[i].index].rank = i;
	}

	for (d = 0; d < DEC_NDIMS; d++)
	{
		key_table_init(&set->dims[d].exact, 8, a);
		key_table_init(&set->dims[d].prefixes, 8, a);
	}

	for (i = 0; i < count; i++)
	{
		CompiledPolicy *p = &set->policies[i];

		p->id = defs[i].id;
		p->priority = defs[i].priority;
		p->effect = defs[i].effect;
		p->has_condition = defs[i].has_condition;
		for (d = 0; d < DEC_NDIMS; d++)
		{
			DimensionIndex *dim = &set->dims[d];

			p->pattern[d] = copy_str(defs[i].pattern[d], a);
			p->kind[d] = classify(p->pattern[d]);
			if (p->kind[d] == PATTERN_EXACT)
				p->key[d] = key_table_intern(&dim->exact, p->pattern[d].ptr,
											 p->pattern[d].len, &dim->n_keys, a);
			else
				p->key[d] = key_table_intern(&dim->prefixes, p->pattern[d].ptr,
											 p->kind[d] == PATTERN_ANY ? 0 :
											 (uint32_t) dec_glob_literal_prefix(p->pattern[d].ptr,
																				p->pattern[d].len),
											 &dim->n_keys, a);
			grouped[i].key[d] = p->key[d];
		}
		grouped[i].rank = p->rank;
		grouped[i].index = i;
	}

	/* Distinct glob prefix lengths per dimension, ascending. */
	for (d = 0; d < DEC_NDIMS; d++)
	{
		DimensionIndex *dim = &set->dims[d];
		uint32_t	n = 0;
		uint32_t	j;

		dim->prefix_lengths = alloc_zero(a, sizeof(uint32_t) * (dim->prefixes.used + 1));
		for (j = 0; j <= dim->prefixes.mask; j++)
			if (dim->prefixes.slots[j].id != EMPTY_ID)
				dim->prefix_lengths[n++] = dim->prefixes.slots[j].len;
		qsort(dim->prefix_lengths, n, sizeof(uint32_t), compare_u32);
		dim->n_prefix_lengths = 0;
		for (j = 0; j < n; j++)
			if (j == 0 || dim->prefix_lengths[j] != dim->prefix_lengths[j - 1])
				dim->prefix_lengths[dim->n_prefix_lengths++] = dim->prefix_lengths[j];
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
	set->triples.mask = table_capacity(n_groups) - 1;
	set->triples.slots = alloc_zero(a, sizeof(GroupSlot) * (set->triples.mask + 1));
	set->pairs.mask = table_capacity(n_pairs) - 1;
	set->pairs.slots = alloc_zero(a, sizeof(GroupSlot) * (set->pairs.mask + 1));
	for (i = 0; i < count;)
	{
		uint32_t	j = i;

		while (j < count && memcmp(grouped[j].key, grouped[i].key, sizeof(grouped[i].key)) == 0)
		{
			set->members[j] = grouped[j].index;
			j++;
		}
		group_insert(&set->triples, grouped[i].key, DEC_NDIMS, i, j - i);
		if (i == 0 || memcmp(grouped[i].key, grouped[i - 1].key, sizeof(uint32_t) * 2) != 0)
			group_insert(&set->pairs, grouped[i].key, 2, i, 1);
		i = j;
	}
	return set;
}

uint32_t
dec_policy_count(const DecPolicySet *set)
{
	return set->n_policies;
}

uint32_t
dec_policy_at_rank(const DecPolicySet *set, uint32_t rank)
{
	return set->by_rank[rank];
}

/* Does the pattern of one dimension match the entity or an ancestor? */
static bool
pattern_matches(const DecPolicySet *set, const CompiledPolicy *p, int d,
				const DecEntitySet *entities)
{
	uint32_t	i;

	if (p->kind[d] == PATTERN_ANY)
		return true;
	for (i = 0; i < entities->count; i++)
	{
		const DecStr *uid = &entities->uids[i];

		if (p->kind[d] == PATTERN_EXACT)
		{
			if (uid->len == p->pattern[d].len && memcmp(uid->ptr, p->pattern[d].ptr, uid->len) == 0)
				return true;
		}
		else if (dec_glob_match(p->pattern[d].ptr, p->pattern[d].len,
								uid->ptr, uid->len, set->char_len))
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
		matched[d] = pattern_matches(set, &set->policies[policy], d, &request->dim[d]);
}

/*
 * The keys of one dimension that the request's entities can meet.  Exact
 * keys are distinct because uids are; a prefix key can be reached from
 * several uids, so those are de-duplicated.
 */
static uint32_t
collect_keys(const DimensionIndex *dim, const DecEntitySet *entities,
			 const DecAllocator *scratch, uint32_t **keys_out)
{
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
		const KeySlot *slot = key_table_find(&dim->exact, uid->ptr, uid->len,
											 hash_bytes(uid->ptr, uid->len));

		if (slot)
			keys[n++] = slot->id;
	}
	first_prefix_key = n;
	for (i = 0; i < entities->count; i++)
	{
		const DecStr *uid = &entities->uids[i];

		for (l = 0; l < dim->n_prefix_lengths && dim->prefix_lengths[l] <= uid->len; l++)
		{
			uint32_t	len = dim->prefix_lengths[l];
			const KeySlot *slot = key_table_find(&dim->prefixes, uid->ptr, len,
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
		n_keys[d] = collect_keys(&set->dims[d], &request->dim[d], scratch, &keys[d]);
		if (n_keys[d] == 0)
			return;				/* nothing can match: default deny */
	}

	for (a = 0; a < n_keys[DEC_ACTOR]; a++)
		for (c = 0; c < n_keys[DEC_ACTION]; c++)
		{
			uint32_t	triple[DEC_NDIMS] = {keys[DEC_ACTOR][a], keys[DEC_ACTION][c], 0};

			if (check_interrupts && (a * n_keys[DEC_ACTION] + c) % INTERRUPT_CHECK_INTERVAL == 0)
				check_interrupts();
			if (group_find(&set->pairs, triple, 2) == NULL)
				continue;
			for (r = 0; r < n_keys[DEC_RESOURCE]; r++)
			{
				const GroupSlot *group;

				triple[DEC_RESOURCE] = keys[DEC_RESOURCE][r];
				group = group_find(&set->triples, triple, DEC_NDIMS);
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
			candidates[n_candidates++] = set->policies[set->members[groups[i]->first + m]].rank;
	}
	qsort(candidates, n_candidates, sizeof(uint32_t), compare_u32);

	for (i = 0; i < n_candidates; i++)
	{
		uint32_t	index = set->by_rank[candidates[i]];
		const CompiledPolicy *p = &set->policies[index];
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

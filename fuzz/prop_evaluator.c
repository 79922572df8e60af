/*
 * prop_evaluator.c — the compiled, indexed evaluator (src/core/evaluator.c)
 * against the linear-scan reference evaluator of reference.c, over random
 * policy sets and requests.
 *
 * Conditions are modelled by a table: each policy either has no condition
 * or one whose value is TRUE, FALSE or UNKNOWN for every request (UNKNOWN
 * is what an erroring condition yields in the server: it holds for a deny
 * and not for an allow).
 *
 * Input layout (every byte string is valid):
 *   byte 0   flags: bit 0 character semantics (1: UTF-8, 0: bytes),
 *            bit 1 many policies (up to 255), bit 2 wide 64-bit ids,
 *            bit 3 pass char_len = NULL (the evaluator's UTF-8 default),
 *            bit 4 allow empty patterns and uids
 *   byte 1   number of policies (mod 40 unless "many")
 *   per policy: priority, effect and condition, id, then three patterns,
 *            each a token count and tokens from a small vocabulary with
 *            '*' and '?', so that patterns and uids often meet
 *   then up to 6 requests: per dimension an entity and up to 3 ancestors,
 *            each uid made of tokens without glob characters
 *
 * Properties, for every request:
 *   1. the decision (policy, allowed, condition_unknown) is the reference's;
 *   2. dec_match_patterns() agrees with the reference for every policy;
 *   3. the condition callback is called only for policies with a condition
 *      whose three patterns match, at most once each, in rank order;
 *   4. dec_policy_at_rank() lists every policy once, in rank order;
 *   5. no memory error (AddressSanitizer; each allocation is its own block);
 *   6. all of the above hold for the compiled image copied to another
 *      address, the original scribbled over (it holds no pointer).
 */
#include "props.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQUESTS 6
#define MAX_ENTITIES 4

static const char *const pattern_vocabulary[16] = {
	"*", "?", "u", "r", ":", "a", "b", "\xC3\xA9", "*", "?", "ro", "le", "1",
	"\xE2\x82\xAC", "ab", ":*"
};
static const char *const uid_vocabulary[12] = {
	"u", "r", ":", "a", "b", "\xC3\xA9", "ro", "le", "1", "\xE2\x82\xAC", "ab", "x"
};

typedef struct ConditionCheck
{
	const RefPolicy *policies;
	uint32_t	n;
	const bool (*matches)[DEC_NDIMS];	/* the reference's, per policy */
	bool	   *called;
	int32_t		last;
	int			failed;
} ConditionCheck;

static DecConditionResult
condition_callback(void *arg, uint32_t index)
{
	ConditionCheck *c = arg;
	const RefPolicy *p;
	int			d;

	if (index >= c->n)
	{
		fprintf(stderr, "evaluator: condition callback for policy %u of %u\n", index, c->n);
		c->failed = 1;
		return DEC_COND_UNKNOWN;
	}
	p = &c->policies[index];
	if (!p->has_condition)
	{
		fprintf(stderr, "evaluator: condition callback for policy %u, which has none\n", index);
		c->failed = 1;
	}
	if (c->called[index])
	{
		fprintf(stderr, "evaluator: condition of policy %u evaluated twice\n", index);
		c->failed = 1;
	}
	c->called[index] = true;
	for (d = 0; d < DEC_NDIMS; d++)
		if (!c->matches[index][d])
		{
			fprintf(stderr, "evaluator: condition of policy %u evaluated though pattern %d does not match\n",
					index, d);
			c->failed = 1;
		}
	if (c->last >= 0 && !ref_outranks(&c->policies[c->last], p))
	{
		fprintf(stderr, "evaluator: condition of policy %u evaluated after that of policy %d, which it outranks\n",
				index, c->last);
		c->failed = 1;
	}
	c->last = (int32_t) index;
	return p->condition;
}

/* Appends tokens to an arena string; returns it. */
static DecStr
make_string(Arena *arena, Reader *r, const char *const *vocabulary, int vocabulary_size,
			int max_tokens, bool allow_empty)
{
	Buf			b;
	DecStr		s;
	char	   *copy;
	int			tokens = rd_u8(r) % (max_tokens + 1);
	int			i;

	if (tokens == 0 && !allow_empty)
		tokens = 1;
	buf_init(&b);
	buf_add(&b, "", 0);
	for (i = 0; i < tokens; i++)
	{
		const char *t = vocabulary[rd_u8(r) % vocabulary_size];

		buf_add(&b, t, strlen(t));
	}
	/* its own block, exactly the string's size: ASan sees any overread */
	copy = arena_alloc(arena, b.len ? b.len : 1);
	memcpy(copy, b.p, b.len);
	s.ptr = copy;
	s.len = (uint32_t) b.len;
	buf_free(&b);
	return s;
}

static bool
str_equal(DecStr a, DecStr b)
{
	return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static void
print_policy(const RefPolicy *p, uint32_t index)
{
	static const char *const cond[] = {"TRUE", "FALSE", "UNKNOWN"};
	int			d;

	fprintf(stderr, "  policy %u: id %lld priority %d %s condition %s\n", index,
			(long long) p->id, p->priority, p->effect == DEC_DENY ? "deny" : "allow",
			p->has_condition ? cond[p->condition] : "none");
	for (d = 0; d < DEC_NDIMS; d++)
		print_bytes("pattern", p->pattern[d].ptr, p->pattern[d].len, 80);
}

static void
print_request(const DecRequest *q)
{
	int			d;
	uint32_t	i;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		fprintf(stderr, "  request dimension %d:\n", d);
		for (i = 0; i < q->dim[d].count; i++)
			print_bytes(i == 0 ? "entity" : "ancestor", q->dim[d].uids[i].ptr,
						q->dim[d].uids[i].len, 80);
	}
}

int
prop_evaluator(const uint8_t *data, size_t size)
{
	Reader		r = {data, size};
	uint8_t		flags = rd_u8(&r);
	bool		utf8 = (flags & 1) != 0;
	bool		wide_ids = (flags & 4) != 0;
	bool		allow_empty = (flags & 16) != 0;
	uint32_t	n = (flags & 2) ? rd_u8(&r) : rd_u8(&r) % 40;
	DecCharLenFn char_len = utf8 ? ((flags & 8) ? NULL : dec_utf8_char_len) : byte_char_len;
	Arena		arena,
				scratch;
	DecAllocator allocator,
				scratch_allocator;
	RefPolicy  *policies = calloc(n ? n : 1, sizeof(RefPolicy));
	DecPolicyDef *defs = calloc(n ? n : 1, sizeof(DecPolicyDef));
	bool	   *seen_rank = calloc(n ? n : 1, sizeof(bool));
	bool	   *called = calloc(n ? n : 1, sizeof(bool));
	bool		(*matches)[DEC_NDIMS] = calloc(n ? n : 1, sizeof(bool[DEC_NDIMS]));
	DecPolicySet *set;
	uint32_t	i,
				j,
				q,
				n_requests;
	int			d;
	int			failed = 0;

	if (!policies || !defs || !seen_rank || !called || !matches)
		abort();
	arena_init(&arena);
	arena_init(&scratch);
	allocator = arena_allocator(&arena);
	scratch_allocator = arena_allocator(&scratch);

	for (i = 0; i < n; i++)
	{
		RefPolicy  *p = &policies[i];
		uint8_t		pri = rd_u8(&r) % 7;
		uint8_t		ec = rd_u8(&r);
		bool		unique;

		p->priority = pri == 5 ? INT32_MAX : pri == 6 ? INT32_MIN : (int32_t) pri - 2;
		p->effect = (ec & 1) ? DEC_DENY : DEC_ALLOW;
		p->has_condition = ((ec >> 1) & 3) != 0;
		p->condition = ((ec >> 1) & 3) == 1 ? DEC_COND_TRUE :
			((ec >> 1) & 3) == 2 ? DEC_COND_FALSE : DEC_COND_UNKNOWN;
		p->id = wide_ids ? (int64_t) rd_u64(&r) : (int64_t) rd_u8(&r) - 100;
		/* ids are unique (a primary key): a duplicate becomes max + 1 */
		for (;;)
		{
			int64_t		max = INT64_MIN;

			unique = true;
			for (j = 0; j < i; j++)
			{
				if (policies[j].id == p->id)
					unique = false;
				if (policies[j].id > max)
					max = policies[j].id;
			}
			if (unique)
				break;
			/* else probe upwards, wrapping (unsigned: no overflow) */
			p->id = max < INT64_MAX ? max + 1 : (int64_t) ((uint64_t) p->id + 1);
		}
		for (d = 0; d < DEC_NDIMS; d++)
			p->pattern[d] = make_string(&arena, &r, pattern_vocabulary, 16, 4, allow_empty);

		defs[i].id = p->id;
		defs[i].priority = p->priority;
		defs[i].effect = p->effect;
		defs[i].has_condition = p->has_condition;
		for (d = 0; d < DEC_NDIMS; d++)
			defs[i].pattern[d] = p->pattern[d];
	}

	set = dec_compile(defs, n, char_len, &allocator, &scratch_allocator);
	/* the definitions may be freed after compiling: scribble over them */
	memset(defs, 0x5A, sizeof(DecPolicyDef) * (n ? n : 1));
	arena_reset(&scratch);
	/* the image refers to itself by offsets only: move it, scribble over the original */
	{
		size_t		size;
		const void *image = dec_policy_set_image(set, &size);
		void	   *moved = arena_alloc(&arena, size);

		memcpy(moved, image, size);
		memset((void *) image, 0x5A, size);
		set = dec_policy_set_open(moved, char_len, &allocator);
	}

	if (dec_policy_count(set) != n)
	{
		fprintf(stderr, "evaluator: dec_policy_count %u, expected %u\n", dec_policy_count(set), n);
		failed = 1;
	}
	for (i = 0; i < n && !failed; i++)
	{
		uint32_t	index = dec_policy_at_rank(set, i);

		if (index >= n || seen_rank[index])
		{
			fprintf(stderr, "evaluator: rank %u holds policy %u twice or out of range\n", i, index);
			failed = 1;
			break;
		}
		seen_rank[index] = true;
		if (i > 0 && !ref_outranks(&policies[dec_policy_at_rank(set, i - 1)], &policies[index]))
		{
			fprintf(stderr, "evaluator: rank %u (policy %u) does not outrank rank %u (policy %u)\n",
					i - 1, dec_policy_at_rank(set, i - 1), i, index);
			print_policy(&policies[dec_policy_at_rank(set, i - 1)], dec_policy_at_rank(set, i - 1));
			print_policy(&policies[index], index);
			failed = 1;
		}
	}

	n_requests = 1 + rd_u8(&r) % MAX_REQUESTS;
	for (q = 0; q < n_requests && !failed; q++)
	{
		DecStr		uids[DEC_NDIMS][MAX_ENTITIES];
		DecRequest	request;
		DecDecision decision;
		RefDecision expected;
		ConditionCheck check;

		for (d = 0; d < DEC_NDIMS; d++)
		{
			uint32_t	want = 1 + rd_u8(&r) % MAX_ENTITIES;
			uint32_t	count = 0;

			while (count < want)
			{
				DecStr		uid = make_string(&arena, &r, uid_vocabulary, 12, 3, allow_empty);
				bool		duplicate = false;

				for (j = 0; j < count; j++)
					if (str_equal(uids[d][j], uid))
						duplicate = true;
				if (!duplicate)
					uids[d][count++] = uid;
				else if (rd_empty(&r))
					break;		/* no fresh bytes: settle for fewer */
			}
			if (count == 0)
				uids[d][count++] = make_string(&arena, &r, uid_vocabulary, 12, 3, false);
			request.dim[d].uids = uids[d];
			request.dim[d].count = count;
		}

		memset(called, 0, sizeof(bool) * (n ? n : 1));
		for (i = 0; i < n; i++)
			for (d = 0; d < DEC_NDIMS; d++)
				matches[i][d] = ref_pattern_matches(policies[i].pattern[d], &request.dim[d], utf8);
		check.policies = policies;
		check.n = n;
		check.matches = (const bool (*)[DEC_NDIMS]) matches;
		check.called = called;
		check.last = -1;
		check.failed = 0;
		dec_evaluate(set, &request, condition_callback, &check, &scratch_allocator, &decision, NULL);
		arena_reset(&scratch);
		expected = ref_decide(policies, n, &request, utf8);
		failed |= check.failed;

		if (decision.policy != expected.policy || decision.allowed != expected.allowed ||
			decision.condition_unknown != expected.condition_unknown)
		{
			fprintf(stderr, "evaluator: decided policy %d allowed %d unknown %d; the reference: policy %d allowed %d unknown %d\n",
					decision.policy, decision.allowed, decision.condition_unknown,
					expected.policy, expected.allowed, expected.condition_unknown);
			failed = 1;
		}
		if (decision.candidates > n)
		{
			fprintf(stderr, "evaluator: %u candidates of %u policies\n", decision.candidates, n);
			failed = 1;
		}
		for (i = 0; i < n; i++)
		{
			bool		matched[DEC_NDIMS];

			dec_match_patterns(set, i, &request, matched);
			for (d = 0; d < DEC_NDIMS; d++)
				if (matched[d] != matches[i][d])
				{
					fprintf(stderr, "evaluator: dec_match_patterns(policy %u, dimension %d) = %d, the reference %d\n",
							i, d, matched[d], !matched[d]);
					print_policy(&policies[i], i);
					failed = 1;
				}
		}
		if (failed)
		{
			fprintf(stderr, "  (%s semantics, %u policies, request %u)\n",
					utf8 ? "UTF-8" : "byte", n, q);
			print_request(&request);
			if (decision.policy >= 0 && (uint32_t) decision.policy < n)
				print_policy(&policies[decision.policy], (uint32_t) decision.policy);
			if (expected.policy >= 0 && expected.policy != decision.policy)
				print_policy(&policies[expected.policy], (uint32_t) expected.policy);
		}
	}

	arena_reset(&arena);
	arena_reset(&scratch);
	free(policies);
	free(defs);
	free(seen_rank);
	free(called);
	free(matches);
	return failed;
}

/*
 * reference.c — decide's semantics in the plainest C, as oracles for the
 * property checks: a recursive glob matcher and an evaluator that scans
 * every policy.  Nothing here is clever; it only has to be obviously right.
 *
 * The rules (docs/reference.md, "Semantics"; src/core/evaluator.h):
 *   - a pattern matches a request entity when it matches the entity or any
 *     of its ancestors; '*' matches any run of characters, '?' exactly one,
 *     anything else itself (so a pattern without '*'/'?' is an exact uid);
 *   - a policy applies when all three patterns match and its condition
 *     holds; a condition that is unknown holds for a deny, not for an allow;
 *   - among applicable policies the highest priority wins, then deny over
 *     allow, then the lowest id; no applicable policy: deny.
 */
#include "props.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* memo cells: 0 = not computed, 1 = false, 2 = true */

typedef struct SymbolMatch
{
	const uint32_t *p;
	size_t		pn;
	const uint32_t *s;
	size_t		sn;
	uint8_t    *memo;
} SymbolMatch;

static bool
symbols_match(SymbolMatch *m, size_t i, size_t j)
{
	uint8_t    *cell = &m->memo[i * (m->sn + 1) + j];
	bool		result;

	if (*cell)
		return *cell == 2;
	if (i == m->pn)
		result = j == m->sn;
	else if (m->p[i] == '*')
		result = symbols_match(m, i + 1, j) || (j < m->sn && symbols_match(m, i, j + 1));
	else if (j == m->sn)
		result = false;
	else if (m->p[i] == '?' || m->p[i] == m->s[j])
		result = symbols_match(m, i + 1, j + 1);
	else
		result = false;
	*cell = result ? 2 : 1;
	return result;
}

bool
ref_glob_symbols(const uint32_t *pattern, size_t pattern_len,
				 const uint32_t *subject, size_t subject_len)
{
	SymbolMatch m = {pattern, pattern_len, subject, subject_len, NULL};
	uint8_t		small[4096];
	size_t		cells = (pattern_len + 1) * (subject_len + 1);
	bool		result;

	m.memo = cells <= sizeof(small) ? small : malloc(cells);
	if (m.memo == NULL)
		abort();
	memset(m.memo, 0, cells);
	result = symbols_match(&m, 0, 0);
	if (m.memo != small)
		free(m.memo);
	return result;
}

typedef struct ByteMatch
{
	const char *p;
	size_t		pn;
	const char *s;
	size_t		sn;
	DecCharLenFn char_len;
	uint8_t    *memo;
} ByteMatch;

static bool
bytes_match(ByteMatch *m, size_t i, size_t j)
{
	uint8_t    *cell = &m->memo[i * (m->sn + 1) + j];
	bool		result;

	if (*cell)
		return *cell == 2;
	if (i == m->pn)
		result = j == m->sn;
	else if (m->p[i] == '*')
		result = bytes_match(m, i + 1, j) ||
			(j < m->sn && bytes_match(m, i, j + m->char_len(m->s + j, m->sn - j)));
	else if (j == m->sn)
		result = false;
	else if (m->p[i] == '?')
		result = bytes_match(m, i + 1, j + m->char_len(m->s + j, m->sn - j));
	else if (m->p[i] == m->s[j])
		result = bytes_match(m, i + 1, j + 1);
	else
		result = false;
	*cell = result ? 2 : 1;
	return result;
}

bool
ref_glob_bytes(const char *pattern, size_t pattern_len,
			   const char *subject, size_t subject_len, DecCharLenFn char_len)
{
	ByteMatch	m = {pattern, pattern_len, subject, subject_len, char_len, NULL};
	uint8_t		small[4096];
	size_t		cells = (pattern_len + 1) * (subject_len + 1);
	bool		result;

	m.memo = cells <= sizeof(small) ? small : malloc(cells);
	if (m.memo == NULL)
		abort();
	memset(m.memo, 0, cells);
	result = bytes_match(&m, 0, 0);
	if (m.memo != small)
		free(m.memo);
	return result;
}

bool
ref_pattern_matches(DecStr pattern, const DecEntitySet *entities, bool utf8)
{
	uint32_t	i;

	for (i = 0; i < entities->count; i++)
	{
		const DecStr *uid = &entities->uids[i];
		bool		match;

		if (utf8)
		{
			uint32_t	small_p[64],
						small_s[64];
			uint32_t   *p = pattern.len < 64 ? small_p : malloc(sizeof(uint32_t) * (pattern.len + 1));
			uint32_t   *s = uid->len < 64 ? small_s : malloc(sizeof(uint32_t) * (uid->len + 1));
			size_t		pn,
						sn;

			if (p == NULL || s == NULL)
				abort();
			pn = utf8_decode(pattern.ptr, pattern.len, p);
			sn = utf8_decode(uid->ptr, uid->len, s);
			match = ref_glob_symbols(p, pn, s, sn);
			if (p != small_p)
				free(p);
			if (s != small_s)
				free(s);
		}
		else
			match = ref_glob_bytes(pattern.ptr, pattern.len, uid->ptr, uid->len,
								   byte_char_len);
		if (match)
			return true;
	}
	return false;
}

bool
ref_outranks(const RefPolicy *a, const RefPolicy *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->effect != b->effect)
		return a->effect == DEC_DENY;
	return a->id < b->id;
}

RefDecision
ref_decide(const RefPolicy *policies, uint32_t n, const DecRequest *request, bool utf8)
{
	RefDecision decision = {-1, false, false};
	uint32_t	i;
	int			d;

	for (i = 0; i < n; i++)
	{
		const RefPolicy *p = &policies[i];
		DecConditionResult condition;
		bool		all_match = true;

		for (d = 0; d < DEC_NDIMS; d++)
			if (!ref_pattern_matches(p->pattern[d], &request->dim[d], utf8))
				all_match = false;
		if (!all_match)
			continue;
		condition = p->has_condition ? p->condition : DEC_COND_TRUE;
		if (condition == DEC_COND_FALSE)
			continue;
		if (condition == DEC_COND_UNKNOWN && p->effect == DEC_ALLOW)
			continue;
		if (decision.policy < 0 || ref_outranks(p, &policies[decision.policy]))
		{
			decision.policy = (int32_t) i;
			decision.allowed = p->effect == DEC_ALLOW;
			decision.condition_unknown = condition == DEC_COND_UNKNOWN;
		}
	}
	return decision;
}

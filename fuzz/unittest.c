/*
 * unittest.c — the fuzz properties, run deterministically without
 * libFuzzer: hand-written edge cases with expected answers, the committed
 * seed corpora (fuzz/corpus/<target>/), and a fixed number of
 * pseudo-random inputs from a fixed seed.  `make unittest` builds it with
 * gcc (AddressSanitizer and UndefinedBehaviorSanitizer on by default) and
 * runs it.
 *
 * Output: one "ok N - ..." or "not ok N - ..." line per test (the format
 * scripts/test.sh counts), then "N passed, N failed".  Exit status 1 if
 * anything failed.
 *
 * Usage: unittest [corpus-dir] [iterations-scale-percent]
 */
#include "props.h"
#include "cache_value.h"
#include "entity_image.h"
#include "log_chunk.h"
#include "log_record.h"
#include "request_key.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int	tests_run = 0;
static int	tests_failed = 0;

static void
report(bool ok, const char *fmt,...)
{
	va_list		ap;

	tests_run++;
	if (!ok)
		tests_failed++;
	printf("%s %d - ", ok ? "ok" : "not ok", tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* splitmix64: a fixed seed gives the same inputs on every machine */
static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	uint64_t	z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
print_hex(const uint8_t *data, size_t size)
{
	size_t		i;

	fprintf(stderr, "  input (%zu bytes, hex): ", size);
	for (i = 0; i < size && i < 512; i++)
		fprintf(stderr, "%02x", data[i]);
	fprintf(stderr, "%s\n", size > 512 ? "..." : "");
}

typedef int (*Property) (const uint8_t *data, size_t size);

/* Runs a property on random inputs; returns the number of failures. */
static int
run_random(Property property, uint64_t seed, int iterations, size_t max_len)
{
	uint8_t    *buf = malloc(max_len);
	int			failures = 0;
	int			i;

	rng_state = seed;
	for (i = 0; i < iterations; i++)
	{
		/* mostly short inputs, some long ones */
		size_t		len = (rng_next() % 4 == 0) ? rng_next() % max_len : rng_next() % 160;
		size_t		k;

		for (k = 0; k < len; k++)
			buf[k] = (uint8_t) rng_next();
		if (property(buf, len) != 0)
		{
			print_hex(buf, len);
			if (++failures >= 5)
				break;
		}
	}
	free(buf);
	return failures;
}

/* Runs a property on every file of a directory; -1 if there is none. */
static int
run_corpus(Property property, const char *dir, int *files)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			failures = 0;

	*files = 0;
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
	{
		char		path[4096];
		FILE	   *f;
		uint8_t    *data;
		long		size;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		if (f == NULL)
			continue;
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fseek(f, 0, SEEK_SET);
		data = malloc(size > 0 ? (size_t) size : 1);
		if (size > 0 && fread(data, 1, (size_t) size, f) != (size_t) size)
			size = 0;
		fclose(f);
		(*files)++;
		if (property(data, (size_t) size) != 0)
		{
			fprintf(stderr, "  corpus file: %s\n", path);
			failures++;
		}
		free(data);
	}
	closedir(d);
	return failures;
}

/* ------------------------------------------------------------------ */
/* glob */

typedef struct GlobCase
{
	const char *pattern;
	const char *subject;
	bool		utf8_match;		/* with UTF-8 characters */
	bool		byte_match;		/* with one-byte characters */
} GlobCase;

static const GlobCase glob_cases[] = {
	{"", "", true, true},
	{"", "a", false, false},
	{"*", "", true, true},
	{"*", "anything", true, true},
	{"?", "", false, false},
	{"?", "a", true, true},
	{"?", "\xC3\xA9", true, false},	/* é: one character, two bytes */
	{"??", "\xC3\xA9", false, true},
	{"?", "\xF0\x9D\x84\x9E", true, false},	/* 𝄞: four bytes */
	{"????", "\xF0\x9D\x84\x9E", false, true},
	{"a*", "a", true, true},
	{"*a", "ba", true, true},
	{"*a", "ab", false, false},
	{"a*b*c", "aXbYc", true, true},
	{"a*b*c", "aXbYcZ", false, false},
	{"*b*", "abc", true, true},
	{"a?c", "abc", true, true},
	{"a?c", "ac", false, false},
	{"doc:*", "doc:", true, true},
	{"doc:*", "doc", false, false},
	{"doc:*:draft", "doc:1:2:draft", true, true},
	{"*\x80", "\xC3\x80", false, true},	/* a star never splits a character */
	{"\xC3*", "\xC3\x80", true, true},	/* literal bytes compare as bytes */
	{"*?", "\xC3\xA9", true, true},
	{"?*?", "\xC3\xA9", false, true},
	{"***", "", true, true},
	{"*?*", "", false, false},
	{"user:*", "user:*", true, true},
	{"a", "A", false, false},
};

static void
test_glob_cases(void)
{
	size_t		i;
	int			bad = 0;

	for (i = 0; i < sizeof(glob_cases) / sizeof(glob_cases[0]); i++)
	{
		const GlobCase *c = &glob_cases[i];
		bool		u = dec_glob_match(c->pattern, strlen(c->pattern), c->subject,
									   strlen(c->subject), dec_utf8_char_len);
		bool		b = dec_glob_match(c->pattern, strlen(c->pattern), c->subject,
									   strlen(c->subject), byte_char_len);
		bool		ru = ref_glob_bytes(c->pattern, strlen(c->pattern), c->subject,
										strlen(c->subject), dec_utf8_char_len);
		bool		rb = ref_glob_bytes(c->pattern, strlen(c->pattern), c->subject,
										strlen(c->subject), byte_char_len);

		if (u != c->utf8_match || b != c->byte_match || ru != c->utf8_match || rb != c->byte_match)
		{
			fprintf(stderr, "glob case %zu: utf8 %d (ref %d, want %d), bytes %d (ref %d, want %d)\n",
					i, u, ru, c->utf8_match, b, rb, c->byte_match);
			print_bytes("pattern", c->pattern, strlen(c->pattern), 80);
			print_bytes("subject", c->subject, strlen(c->subject), 80);
			bad++;
		}
	}
	report(bad == 0, "glob: %zu hand-written cases with expected answers",
		   sizeof(glob_cases) / sizeof(glob_cases[0]));
}

static double
seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double) (now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Patterns of thousands of stars against subjects of the uid limit. */
static void
test_glob_stars(void)
{
	size_t		stars = 10000;
	char	   *pattern = malloc(3 * stars + 2);
	char		subject[513];
	struct timespec start;
	double		elapsed;
	bool		ok = true;
	size_t		i;

	memset(subject, 'a', 512);
	subject[512] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &start);

	/* 10,000 stars then 'b': no match, after at most 512 steps of the last star */
	memset(pattern, '*', stars);
	pattern[stars] = 'b';
	ok &= !dec_glob_match(pattern, stars + 1, subject, 512, dec_utf8_char_len);
	/* 10,000 stars alone match anything */
	ok &= dec_glob_match(pattern, stars, subject, 512, dec_utf8_char_len);
	/* "*a" x 5,000 then "b": the classic exponential case for backtracking */
	for (i = 0; i < stars / 2; i++)
	{
		pattern[2 * i] = '*';
		pattern[2 * i + 1] = 'a';
	}
	pattern[stars] = 'b';
	ok &= !dec_glob_match(pattern, stars + 1, subject, 512, dec_utf8_char_len);
	/* "*a" x 512 matches 512 a's; x 513 cannot */
	ok &= dec_glob_match(pattern, 1024, subject, 512, dec_utf8_char_len);
	ok &= !dec_glob_match(pattern, 1026, subject, 512, dec_utf8_char_len);
	/* "*?" x 10,000: needs 10,000 characters */
	for (i = 0; i < stars; i++)
	{
		pattern[2 * i] = '*';
		pattern[2 * i + 1] = '?';
	}
	ok &= !dec_glob_match(pattern, 2 * stars, subject, 512, dec_utf8_char_len);
	ok &= dec_glob_match(pattern, 2 * 512, subject, 512, dec_utf8_char_len);
	elapsed = seconds_since(&start);
	report(ok && elapsed < 2.0,
		   "glob: patterns of 10,000 stars against 512-byte subjects: right answers, quickly%s",
		   elapsed < 2.0 ? "" : " (too slow)");
	free(pattern);
}

/* ------------------------------------------------------------------ */
/* request keys */

/* Do two requests (uids a, b, c and a context) get different keys? */
typedef struct KeyRequest
{
	const char *field[4];
	size_t		len[4];
} KeyRequest;

static char *
key_of(const KeyRequest *q, size_t *len)
{
	DecStr		uids[DEC_NDIMS];
	char	   *out;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		uids[d].ptr = q->field[d];
		uids[d].len = (uint32_t) q->len[d];
	}
	out = malloc(request_key_size(uids, q->len[3]) + 1);
	*len = request_key_encode(uids, q->field[3], q->len[3], out);
	return out;
}

static bool
keys_differ(const KeyRequest *x, const KeyRequest *y)
{
	size_t		xl,
				yl;
	char	   *kx = key_of(x, &xl);
	char	   *ky = key_of(y, &yl);
	bool		differ = xl != yl || memcmp(kx, ky, xl) != 0;

	free(kx);
	free(ky);
	return differ;
}

static void
test_request_key_cases(void)
{
	char		fake[16];
	char		copy[8];
	uint32_t	four = 4;
	bool		ok = true;

	/* a field boundary moved: naive concatenation would collide */
	{
		KeyRequest	a = {{"ab", "c", "d", "{}"}, {2, 1, 1, 2}};
		KeyRequest	b = {{"a", "bc", "d", "{}"}, {1, 2, 1, 2}};

		ok &= keys_differ(&a, &b);
	}
	{
		KeyRequest	a = {{"a", "", "b", ""}, {1, 0, 1, 0}};
		KeyRequest	b = {{"a", "b", "", ""}, {1, 1, 0, 0}};

		ok &= keys_differ(&a, &b);
	}
	{
		/* the resource/context boundary: the context has no length prefix */
		KeyRequest	a = {{"u", "r", "d1", "x"}, {1, 1, 2, 1}};
		KeyRequest	b = {{"u", "r", "d", "1x"}, {1, 1, 1, 2}};

		ok &= keys_differ(&a, &b);
	}
	{
		/* delimiter-like bytes inside uids */
		KeyRequest	a = {{"a|b", "c", "d", ""}, {3, 1, 1, 0}};
		KeyRequest	b = {{"a", "b|c", "d", ""}, {1, 3, 1, 0}};

		ok &= keys_differ(&a, &b);
	}
	{
		/* a uid that spells a length prefix and the next field */
		KeyRequest	a = {{fake, "x", "d", ""}, {9, 1, 1, 0}};
		KeyRequest	b = {{"a", "read", "d", ""}, {1, 4, 1, 0}};

		memcpy(fake, "a", 1);
		memcpy(fake + 1, &four, 4);
		memcpy(fake + 5, "read", 4);
		ok &= keys_differ(&a, &b);
	}
	{
		/* equal requests in different memory: equal keys */
		KeyRequest	a = {{copy, "read", "doc:1", "{}"}, {6, 4, 5, 2}};
		KeyRequest	b = {{"user:a", "read", "doc:1", "{}"}, {6, 4, 5, 2}};

		memcpy(copy, "user:a", 6);
		ok &= !keys_differ(&a, &b);
	}
	report(ok, "request_key: boundary-shift, delimiter and fake-length-prefix collisions all distinct; equal requests equal");
}

/* ------------------------------------------------------------------ */
/* evaluator: scenarios of the combining rules (docs/reference.md, "Semantics"),
 * with the answers written down */

typedef struct Scenario
{
	const char *name;
	int			n;
	struct
	{
		int64_t		id;
		int32_t		priority;
		DecEffect	effect;
		const char *actor,
				   *action,
				   *resource;
		int			condition;	/* 0 none, 1 true, 2 false, 3 unknown */
	}			policy[4];
	const char *actor[3];		/* entity then ancestors; NULL ends */
	const char *action[3];
	const char *resource[3];
	int32_t		expect_policy;	/* index or -1 */
	bool		expect_allowed;
	bool		expect_unknown;
} Scenario;

static const Scenario scenarios[] = {
	{"no policy: deny", 0, {{0}}, {"user:a"}, {"read"}, {"doc:1"}, -1, false, false},
	{"no match: deny", 1, {{1, 0, DEC_ALLOW, "user:b", "read", "doc:1", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, -1, false, false},
	{"exact allow", 1, {{1, 0, DEC_ALLOW, "user:a", "read", "doc:1", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, 0, true, false},
	{"match through an ancestor", 1, {{1, 0, DEC_ALLOW, "role:r", "read", "folder:f", 0}},
	{"user:a", "group:g", "role:r"}, {"read"}, {"doc:1", "folder:f"}, 0, true, false},
	{"glob on an ancestor", 1, {{1, 0, DEC_ALLOW, "role:*", "re?d", "folder:*", 0}},
	{"user:a", "role:r"}, {"read"}, {"doc:1", "folder:f"}, 0, true, false},
	{"deny beats allow at equal priority", 2,
		{{1, 0, DEC_ALLOW, "*", "*", "*", 0}, {2, 0, DEC_DENY, "*", "*", "*", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, 1, false, false},
	{"higher priority allow beats deny", 2,
		{{1, 5, DEC_ALLOW, "user:a", "*", "*", 0}, {2, 0, DEC_DENY, "*", "*", "*", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, 0, true, false},
	{"lowest id on ties", 3,
		{{30, 1, DEC_DENY, "*", "*", "*", 0}, {10, 1, DEC_DENY, "*", "read", "*", 0},
		{20, 1, DEC_DENY, "user:*", "*", "*", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, 1, false, false},
	{"false condition: next policy", 2,
		{{1, 1, DEC_DENY, "*", "*", "*", 2}, {2, 0, DEC_ALLOW, "*", "*", "*", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, 1, true, false},
	{"unknown condition: a deny applies", 2,
		{{1, 1, DEC_DENY, "*", "*", "*", 3}, {2, 0, DEC_ALLOW, "*", "*", "*", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, 0, false, true},
	{"unknown condition: an allow does not", 2,
		{{1, 1, DEC_ALLOW, "*", "*", "*", 3}, {2, 0, DEC_ALLOW, "user:a", "*", "*", 1}},
	{"user:a"}, {"read"}, {"doc:1"}, 1, true, false},
	{"unknown allow alone: default deny", 1, {{1, 0, DEC_ALLOW, "*", "*", "*", 3}},
	{"user:a"}, {"read"}, {"doc:1"}, -1, false, false},
	{"a uid is not a prefix pattern", 1, {{1, 0, DEC_ALLOW, "doc", "*", "*", 0}},
	{"doc:1"}, {"read"}, {"doc:1"}, -1, false, false},
	{"extreme priorities", 2,
		{{1, INT32_MIN, DEC_DENY, "*", "*", "*", 0}, {2, INT32_MAX, DEC_ALLOW, "*", "*", "*", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, 1, true, false},
	{"extreme ids", 2,
		{{INT64_MAX, 0, DEC_DENY, "*", "*", "*", 0}, {INT64_MIN, 0, DEC_DENY, "*", "*", "*", 0}},
	{"user:a"}, {"read"}, {"doc:1"}, 1, false, false},
};

static DecConditionResult
scenario_condition(void *arg, uint32_t index)
{
	const Scenario *s = arg;

	switch (s->policy[index].condition)
	{
		case 1:
			return DEC_COND_TRUE;
		case 2:
			return DEC_COND_FALSE;
		default:
			return DEC_COND_UNKNOWN;
	}
}

static void
fill_set(DecEntitySet *set, DecStr *uids, const char *const *names)
{
	uint32_t	n = 0;

	while (n < 3 && names[n])
	{
		uids[n].ptr = names[n];
		uids[n].len = (uint32_t) strlen(names[n]);
		n++;
	}
	set->uids = uids;
	set->count = n;
}

static void
test_evaluator_scenarios(void)
{
	size_t		k;

	for (k = 0; k < sizeof(scenarios) / sizeof(scenarios[0]); k++)
	{
		const Scenario *s = &scenarios[k];
		DecPolicyDef defs[4];
		RefPolicy	refs[4];
		DecStr		uids[DEC_NDIMS][3];
		DecRequest	request;
		DecDecision decision;
		RefDecision expected;
		Arena		arena,
					scratch;
		DecAllocator a,
					sa;
		DecPolicySet *set;
		int			i;

		arena_init(&arena);
		arena_init(&scratch);
		a = arena_allocator(&arena);
		sa = arena_allocator(&scratch);
		memset(defs, 0, sizeof(defs));
		memset(refs, 0, sizeof(refs));
		for (i = 0; i < s->n; i++)
		{
			const char *pat[DEC_NDIMS] = {s->policy[i].actor, s->policy[i].action, s->policy[i].resource};
			int			d;

			defs[i].id = refs[i].id = s->policy[i].id;
			defs[i].priority = refs[i].priority = s->policy[i].priority;
			defs[i].effect = refs[i].effect = s->policy[i].effect;
			defs[i].has_condition = refs[i].has_condition = s->policy[i].condition != 0;
			refs[i].condition = scenario_condition((void *) s, (uint32_t) i);
			for (d = 0; d < DEC_NDIMS; d++)
			{
				defs[i].pattern[d].ptr = pat[d];
				defs[i].pattern[d].len = (uint32_t) strlen(pat[d]);
				refs[i].pattern[d] = defs[i].pattern[d];
			}
		}
		fill_set(&request.dim[DEC_ACTOR], uids[DEC_ACTOR], s->actor);
		fill_set(&request.dim[DEC_ACTION], uids[DEC_ACTION], s->action);
		fill_set(&request.dim[DEC_RESOURCE], uids[DEC_RESOURCE], s->resource);
		set = dec_compile(defs, (uint32_t) s->n, dec_utf8_char_len, &a, &sa);
		dec_evaluate(set, &request, scenario_condition, (void *) s, &sa, &decision, NULL);
		expected = ref_decide(refs, (uint32_t) s->n, &request, true);
		report(decision.policy == s->expect_policy && decision.allowed == s->expect_allowed &&
			   decision.condition_unknown == s->expect_unknown &&
			   expected.policy == s->expect_policy && expected.allowed == s->expect_allowed &&
			   expected.condition_unknown == s->expect_unknown,
			   "evaluator: %s (got policy %d allowed %d; reference policy %d)",
			   s->name, decision.policy, decision.allowed, expected.policy);
		arena_reset(&arena);
		arena_reset(&scratch);
	}
}

/* ------------------------------------------------------------------ */
/* cached values */

static void
test_cache_value_cases(void)
{
	static const CacheValue values[] = {
		{false, false, false, 0, 0},
		{true, true, false, INT64_MAX, INT64_MAX},
		{true, false, true, INT64_MIN, -1},
		{true, false, false, 42, 1},
	};
	CacheValue	got;
	char		bytes[CACHE_VALUE_BYTES];
	bool		ok = true;
	size_t		i;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++)
	{
		cache_value_encode(&values[i], 0x0123456789abcdefULL, bytes);
		ok &= cache_value_decode(bytes, CACHE_VALUE_BYTES, 0x0123456789abcdefULL, &got) &&
			got.has_policy == values[i].has_policy && got.allowed == values[i].allowed &&
			got.condition_unknown == values[i].condition_unknown &&
			got.policy_id == values[i].policy_id && got.expires == values[i].expires;
		ok &= !cache_value_decode(bytes, CACHE_VALUE_BYTES, 0x0123456789abcdeeULL, &got);
		ok &= !cache_value_decode(bytes, CACHE_VALUE_BYTES - 1, 0x0123456789abcdefULL, &got);
	}
	/* an allow that names no policy is never trusted */
	{
		CacheValue	bad = {false, true, false, 0, 0};

		cache_value_encode(&bad, 7, bytes);
		ok &= !cache_value_decode(bytes, CACHE_VALUE_BYTES, 7, &got);
	}
	/* empty, short and all-zero replies */
	memset(bytes, 0, sizeof(bytes));
	ok &= !cache_value_decode(bytes, 0, 0, &got) && !cache_value_decode(bytes, 4, 0, &got) &&
		!cache_value_decode(bytes, CACHE_VALUE_BYTES, 0, &got);
	report(ok, "cache_value: extreme values round-trip under their key only; allow-without-policy, short and zero replies refused");
}

/* ------------------------------------------------------------------ */
/* entity images */

static void
test_entity_image(void)
{
	enum
	{
		N = 5000
	};
	static char uids[N][24];
	static char parent_bytes[N][3][24];
	static DecStr parents[N][3];
	static char attrs[N][16];
	DecEntityRow *rows = calloc(N, sizeof(DecEntityRow));
	Arena		arena;
	DecAllocator allocator;
	size_t		size = 0;
	void	   *image;
	DecEntityView view;
	bool		ok = true;
	int			i,
				p;

	arena_init(&arena);
	allocator = arena_allocator(&arena);
	for (i = 0; i < N; i++)
	{
		rows[i].uid.len = (uint32_t) snprintf(uids[i], sizeof(uids[i]), "doc:%d", i * 7919);
		rows[i].uid.ptr = uids[i];
		rows[i].n_parents = (uint32_t) (i % 4 == 3 ? 0 : i % 4);
		for (p = 0; p < (int) rows[i].n_parents; p++)
		{
			parents[i][p].len = (uint32_t) snprintf(parent_bytes[i][p], sizeof(parent_bytes[i][p]),
													"folder:%d", (i + p) % 97);
			parents[i][p].ptr = parent_bytes[i][p];
		}
		rows[i].parents = parents[i];
		if (i % 5 != 0)
		{
			memset(attrs[i], 'a' + i % 26, sizeof(attrs[i]));
			rows[i].attrs = attrs[i];
			rows[i].attrs_len = 1 + i % 16;
		}
	}
	image = dec_entity_image_build(rows, N, &allocator, &size);
	ok &= image != NULL && dec_entity_image_count(image) == N && size > 0;
	for (i = 0; ok && i < N; i++)
	{
		ok &= dec_entity_image_find(image, uids[i], rows[i].uid.len, &view) &&
			view.uid.len == rows[i].uid.len && memcmp(view.uid.ptr, uids[i], view.uid.len) == 0 &&
			view.n_parents == rows[i].n_parents;
		for (p = 0; ok && p < (int) view.n_parents; p++)
		{
			DecStr		parent = dec_entity_image_parent(image, &view, (uint32_t) p);

			ok &= parent.len == parents[i][p].len &&
				memcmp(parent.ptr, parents[i][p].ptr, parent.len) == 0;
		}
		if (rows[i].attrs)
			ok &= view.attrs != NULL && view.attrs_len == rows[i].attrs_len &&
				((uintptr_t) view.attrs % 8) == 0 &&
				memcmp(view.attrs, rows[i].attrs, view.attrs_len) == 0;
		else
			ok &= view.attrs == NULL;
	}
	/* uid order, and equal parent lists named alike */
	{
		DecEntityView prev,
					cur;
		uint32_t	k;

		dec_entity_image_at(image, 0, &prev);
		for (k = 1; ok && k < N; k++, prev = cur)
		{
			dec_entity_image_at(image, k, &cur);
			ok &= memcmp(prev.uid.ptr, cur.uid.ptr, prev.uid.len < cur.uid.len ? prev.uid.len : cur.uid.len) < 0 ||
				(memcmp(prev.uid.ptr, cur.uid.ptr, prev.uid.len < cur.uid.len ? prev.uid.len : cur.uid.len) == 0 &&
				 prev.uid.len < cur.uid.len);
		}
		ok &= dec_entity_image_lower_bound(image, "", 0) == 0 &&
			dec_entity_image_lower_bound(image, "zzz", 3) == N &&
			dec_entity_image_find(image, "doc:7919", 8, &cur) &&
			dec_entity_image_lower_bound(image, "doc:7919", 8) == cur.index &&
			dec_entity_image_lower_bound(image, "doc:7918", 8) == cur.index;
		/* rows 1 and 389 have the parent list (folder:1), row 5 (folder:5); rows 3 and 7 none; row 2 two */
		{
			DecEntityView a,
						b,
						c,
						d,
						e;

			ok &= dec_entity_image_find(image, uids[1], rows[1].uid.len, &a) &&
				dec_entity_image_find(image, uids[389], rows[389].uid.len, &b) &&
				dec_entity_image_find(image, uids[3], rows[3].uid.len, &c) &&
				dec_entity_image_find(image, uids[7], rows[7].uid.len, &d) &&
				dec_entity_image_find(image, uids[2], rows[2].uid.len, &e);
			ok &= a.parents_id == b.parents_id && c.parents_id == d.parents_id &&
				c.parents_id != e.parents_id && a.parents_id != c.parents_id;
			ok &= dec_entity_image_find(image, uids[5], rows[5].uid.len, &b) &&
				a.parents_id != b.parents_id;
		}
	}
	/* equal attributes stored once: the same bytes, the same place and attrs_id */
	{
		DecEntityView a,
					b;
		int			j;

		for (i = 0; ok && i < 600; i++)
			for (j = i + 1; ok && j < 600; j++)
			{
				bool		same;

				ok &= dec_entity_image_find(image, uids[i], rows[i].uid.len, &a) &&
					dec_entity_image_find(image, uids[j], rows[j].uid.len, &b);
				same = (rows[i].attrs == NULL && rows[j].attrs == NULL) ||
					(rows[i].attrs && rows[j].attrs && rows[i].attrs_len == rows[j].attrs_len &&
					 memcmp(rows[i].attrs, rows[j].attrs, rows[i].attrs_len) == 0);
				ok &= same == (a.attrs == b.attrs) && same == (a.attrs_id == b.attrs_id) &&
					(a.attrs_id == 0) == (a.attrs == NULL) &&
					a.attrs_id <= dec_entity_image_attrs_count(image);
			}
		/* rows with attributes take i % 26 and i % 16 apart: 208 distinct */
		ok &= dec_entity_image_attrs_count(image) == 208;
	}
	/* its doc:<7919 i> uids spread too far for a number index */
	{
		int64_t		first;
		uint64_t	n;

		ok &= dec_entity_image_number_index(image, "doc:", 4, &allocator, &first, &n) == NULL;
	}
	/* uids with no row, a prefix and an extension of one that has */
	ok &= !dec_entity_image_find(image, "doc:1", 5, &view) &&
		!dec_entity_image_find(image, "doc:79191", 9, &view) &&
		!dec_entity_image_find(image, "doc:", 4, &view) && !dec_entity_image_find(image, "", 0, &view);
	/* an empty table */
	image = dec_entity_image_build(rows, 0, &allocator, &size);
	ok &= image != NULL && dec_entity_image_count(image) == 0 &&
		!dec_entity_image_find(image, "doc:0", 5, &view);
	arena_reset(&arena);
	free(rows);
	report(ok, "entity_image: 5,000 entities in uid order, found with their parents and aligned attributes, equal parent lists and attributes shared; absent uids not found; an empty image");
}

/* The number index: n:<integer> uids as int8out writes them, by integer. */
static void
test_entity_image_number_index(void)
{
	enum
	{
		N = 1000
	};
	static const char *const others[] = {"n:007", "n:-0", "n:+3", "n:", "n:x1", "n:1x", "m:3", "n:-5",
	"n:99999999999999999999", "o:1"};
	static char uids[N + 10][32];
	DecEntityRow rows[N + 10];
	Arena		arena;
	DecAllocator allocator;
	size_t		size = 0;
	void	   *image;
	uint32_t   *places;
	int64_t		first = 0;
	uint64_t	n = 0;
	bool		ok = true;
	int			i;
	int			count = 0;

	arena_init(&arena);
	allocator = arena_allocator(&arena);
	memset(rows, 0, sizeof(rows));
	/* every third integer from 0 (gaps), then the uids that are not numbers */
	for (i = 0; i < N; i++)
		snprintf(uids[count++], sizeof(uids[0]), "n:%d", i * 3);
	for (i = 0; i < 10; i++)
		snprintf(uids[count++], sizeof(uids[0]), "%s", others[i]);
	for (i = 0; i < count; i++)
	{
		rows[i].uid.ptr = uids[i];
		rows[i].uid.len = (uint32_t) strlen(uids[i]);
	}
	image = dec_entity_image_build(rows, (uint32_t) count, &allocator, &size);
	places = dec_entity_image_number_index(image, "n:", 2, &allocator, &first, &n);
	/* keys -5 (n:-5) to 2997; n:007, n:-0, n:+3 and the rest are not int8out's */
	ok &= places != NULL && first == -5 && n == 2997 + 5 + 1;
	for (i = -5; ok && i <= 2997; i++)
	{
		uint32_t	place = places[i - first];
		bool		expected = i == -5 || (i >= 0 && i % 3 == 0);

		ok &= (place != 0) == expected;
		if (place != 0)
		{
			DecEntityView view;
			char		uid[32];

			dec_entity_image_at(image, place - 1, &view);
			snprintf(uid, sizeof(uid), "n:%d", i);
			ok &= view.uid.len == strlen(uid) && memcmp(view.uid.ptr, uid, view.uid.len) == 0;
		}
	}
	/* a prefix no uid has */
	ok &= dec_entity_image_number_index(image, "p:", 2, &allocator, &first, &n) == NULL;
	arena_reset(&arena);
	report(ok, "entity_image: the number index finds n:<integer> uids by integer, skips other spellings");
}

static void
test_log_record_json_subset(void)
{
	static const struct
	{
		const char *text;
		bool		safe;
	}			cases[] = {
		{"{}", true},
		{" { \"a\" : [ 1 , -0.5 , true , false , null ] } ", true},
		{"{\"a\": \"\\u001f\\n\\t\\\"\\\\\\/\"}", true},
		{"{\"a\": {\"b\": {}}, \"a\": 0}", true},
		{"[]", false},
		{"\"s\"", false},
		{"{\"a\": 1e5}", false},
		{"{\"a\": 1E5}", false},
		{"{\"a\": 01}", false},
		{"{\"a\": .5}", false},
		{"{\"a\": 1.}", false},
		{"{\"a\": -}", false},
		{"{\"a\": \"\\u0000\"}", false},
		{"{\"a\": \"\\u00e9\"}", false},
		{"{\"a\": \"\\ud800\"}", false},
		{"{\"a\": \"\\x\"}", false},
		{"{\"a\": \"\t\"}", false},
		{"{\"a\": \"x}", false},
		{"{\"a\": 1} x", false},
		{"{\"a\": 1,}", false},
		{"{a: 1}", false},
		{"{\"a\": tru}", false},
		{"", false},
	};
	bool		ok = true;
	size_t		i;
	Buf			deep;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (log_json_object_is_safe(cases[i].text, strlen(cases[i].text)) != cases[i].safe)
		{
			fprintf(stderr, "  json %s: expected %s\n", cases[i].text,
					cases[i].safe ? "safe" : "refused");
			ok = false;
		}
	/* a NUL byte inside a string */
	ok &= !log_json_object_is_safe("{\"a\": \"x\0y\"}", 12);
	/* nesting: LOG_MAX_JSON_DEPTH levels pass, one more does not */
	buf_init(&deep);
	for (i = 0; i < LOG_MAX_JSON_DEPTH; i++)
		buf_add(&deep, i == 0 ? "{\"a\": " : "[", i == 0 ? 6 : 1);
	for (i = 1; i < LOG_MAX_JSON_DEPTH; i++)
		buf_addc(&deep, ']');
	buf_addc(&deep, '}');
	ok &= log_json_object_is_safe(deep.p, deep.len);
	deep.len -= LOG_MAX_JSON_DEPTH;
	buf_add(&deep, "[]", 2);
	for (i = 1; i < LOG_MAX_JSON_DEPTH; i++)
		buf_addc(&deep, ']');
	buf_addc(&deep, '}');
	ok &= !log_json_object_is_safe(deep.p, deep.len);
	buf_free(&deep);
	report(ok, "log_record: the JSON subset takes what the server writes and nothing jsonb_in could fail on");
}

static void
test_log_record_cases(void)
{
	/* 0.6.0's attack: header lengths add up, the context claims 1 GB of jsonb */
	char		attack[51];
	uint32_t	size = sizeof(attack);
	uint16_t	one = 1;
	uint32_t	context_len = 8;
	LogRecord	r;
	LogRecord	got;
	char		entry[256];
	size_t		len;
	bool		ok = true;

	memset(attack, 0, sizeof(attack));
	memcpy(attack, &size, 4);
	memcpy(attack + 24, &one, 2);
	memcpy(attack + 26, &one, 2);
	memcpy(attack + 28, &one, 2);
	memcpy(attack + 32, &context_len, 4);
	memcpy(attack + 40, "abc\xfc\xff\xff\xff\0\0\0\0", 11);
	ok &= log_stream_entry_check(attack, sizeof(attack), &got) != LOG_ENTRY_OK;

	/* the same as a padded 0.6.0 record: still refused, for its context */
	memset(&r, 0, sizeof(r));
	r.actor.ptr = "a";
	r.actor.len = 1;
	r.action.ptr = "b";
	r.action.len = 1;
	r.resource.ptr = "c";
	r.resource.len = 1;
	r.context.ptr = "\xfc\xff\xff\xff\0\0\0\0";
	r.context.len = 8;
	r.context_format = LOG_CONTEXT_JSONB;
	len = log_record_encode(&r, entry);
	ok &= log_stream_entry_check(entry, len, &got) == LOG_ENTRY_UNCHECKABLE_CONTEXT;

	/* a 0.6.0 record without a context is taken */
	r.context.len = 0;
	len = log_record_encode(&r, entry);
	ok &= log_stream_entry_check(entry, len, &got) == LOG_ENTRY_OK && got.actor.len == 1;

	/* ours, with a context */
	r.context.ptr = "{\"ip\": \"10.0.0.7\"}";
	r.context.len = strlen(r.context.ptr);
	r.context_format = LOG_CONTEXT_JSON_TEXT;
	len = log_stream_entry_encode(&r, entry);
	ok &= log_stream_entry_check(entry, len, &got) == LOG_ENTRY_OK &&
		got.context.len == r.context.len;
	/* ... but not as a plain record, nor with a jsonb header for a context */
	ok &= log_stream_entry_check(entry + LOG_STREAM_MAGIC_BYTES, len - LOG_STREAM_MAGIC_BYTES,
								 &got) != LOG_ENTRY_OK;
	r.context.ptr = "\xfc\xff\xff\xff\0\0\0\0";
	r.context.len = 8;
	len = log_stream_entry_encode(&r, entry);
	ok &= log_stream_entry_check(entry, len, &got) == LOG_ENTRY_BAD_CONTEXT;
	report(ok, "log_record: the 0.6.0 crash record and binary contexts refused; plain 0.6.0 records and ours taken");
}

/* log_record_count() counts whole records only, as a batch lays them out. */
static void
test_log_record_count(void)
{
	LogRecord	r;
	char		batch[512];
	size_t		size;
	bool		ok = true;

	memset(&r, 0, sizeof(r));
	r.actor.ptr = "user:alice";
	r.actor.len = 10;
	r.action.ptr = "read";
	r.action.len = 4;
	r.resource.ptr = "doc:42";
	r.resource.len = 6;
	size = log_record_encode(&r, batch);
	ok &= 3 * size <= sizeof(batch);
	ok &= log_record_encode(&r, batch + size) == size;
	ok &= log_record_encode(&r, batch + 2 * size) == size;
	ok &= log_record_count(batch, 3 * size) == 3;
	ok &= log_record_count(batch, 3 * size - 1) == 2;	/* the last cut short */
	ok &= log_record_count(batch, size) == 1;
	ok &= log_record_count(batch, 0) == 0;
	memset(batch + size, 0, size);						/* a size word of zero */
	ok &= log_record_count(batch, 3 * size) == 1;
	report(ok, "log_record: log_record_count() counts whole records and stops at one cut short or sized zero");
}


/* A random record: its strings point into pool, which it fills from *used. */
static void
random_chunk_record(LogRecord *r, char *pool, size_t *used)
{
	static const char *const contexts[] = {"{\"ip\": \"10.0.0.7\"}", "{}", "{\"a\": [1, 2.5, null]}"};
	DecStr	   *fields[3];
	int			f;

	memset(r, 0, sizeof(*r));
	r->decided_at = (int64_t) (rng_next() % 1000000000000ULL) - 500000000000LL;
	r->epoch = (int64_t) (rng_next() % 5);
	r->source = (LogSource) (rng_next() % LOG_SOURCES);
	r->has_policy = rng_next() % 4 != 0;
	r->allowed = r->has_policy && rng_next() % 2;
	r->condition_unknown = r->has_policy && !r->allowed && rng_next() % 5 == 0;
	r->priority = r->has_policy ? (int32_t) (rng_next() % 2001) - 1000 : 0;
	r->context_format = LOG_CONTEXT_JSON_TEXT;
	/* Now and then one logged before 0.7.0: a stored reason, no priority. */
	if (r->has_policy && !r->condition_unknown && rng_next() % 8 == 0)
	{
		r->priority_unknown = true;
		r->priority = 0;
	}
	if (rng_next() % 8 == 0)
	{
		r->has_reason = true;
		r->reason.ptr = rng_next() % 2 ? "matched by readers" : "";
		r->reason.len = (uint32_t) strlen(r->reason.ptr);
	}
	fields[0] = &r->actor;
	fields[1] = &r->action;
	fields[2] = &r->resource;
	for (f = 0; f < 3; f++)
	{
		int			len = snprintf(pool + *used, 64, "%s:%llu", f == 1 ? "act" : "user",
								   (unsigned long long) (rng_next() % 100000));

		fields[f]->ptr = pool + *used;
		fields[f]->len = (uint32_t) len;
		*used += (size_t) len;
	}
	if (r->has_policy)
	{
		r->policy.ptr = "readers";
		r->policy.len = 7;
		r->risk_level.ptr = "high";
		r->risk_level.len = 4;
	}
	if (rng_next() % 3 == 0)
	{
		r->context.ptr = contexts[rng_next() % 3];
		r->context.len = (uint32_t) strlen(r->context.ptr);
	}
}

/*
 * Chunks: what is encoded decodes to the same records, in order; a chunk
 * cut short anywhere or with any byte changed is read to its end or
 * refused, never past its bytes (AddressSanitizer watches), and what it
 * yields passes the field checks.
 */
static void
test_log_chunk(void)
{
	enum {RECORDS = 200};
	LogRecord	records[RECORDS];
	int			order[RECORDS];
	int64_t		ids[RECORDS];
	char	   *pool = malloc(RECORDS * 3 * 64);
	size_t		used = 0;
	size_t		bound;
	size_t		size;
	char	   *chunk;
	LogChunkReader reader;
	LogRecord	got;
	size_t		empty;
	int			i;
	int			n = 0;
	int			round;
	bool		ok = true;

	rng_state = 0x5EED0C40ULL;
	for (i = 0; i < RECORDS; i++)
	{
		random_chunk_record(&records[i], pool, &used);
		order[i] = RECORDS - 1 - i;
		/* mostly consecutive, with gaps and steps back */
		ids[i] = i == 0 ? 1000 : ids[i - 1] + (rng_next() % 10 == 0 ? (int64_t) (rng_next() % 50) - 20 : 1);
	}
	bound = log_chunk_bound(records, order, RECORDS);
	chunk = malloc(bound);
	size = log_chunk_encode(records, order, ids, RECORDS, chunk);
	ok &= size <= bound;
	ok &= log_chunk_open(&reader, chunk, size) && log_chunk_count(&reader) == RECORDS;
	while (log_chunk_next(&reader, &got))
	{
		ok &= n < RECORDS && reader.id == ids[n] && same_log_record(&got, &records[order[n]]);
		n++;
	}
	ok &= n == RECORDS && reader.failure == LOG_ENTRY_OK;

	/*
	 * Skimming reads the same records; a record whose actor is not a uid
	 * is skimmed past (its fields are not checked) but refused by reading.
	 */
	size = log_chunk_encode(records, order, ids, RECORDS, chunk);
	n = 0;
	log_chunk_open(&reader, chunk, size);
	while (log_chunk_skim(&reader, &got))
	{
		ok &= n < RECORDS && reader.id == ids[n] && same_log_record(&got, &records[order[n]]);
		n++;
	}
	ok &= n == RECORDS && reader.failure == LOG_ENTRY_OK;
	{
		LogRecord	bad = records[order[0]];
		int			first = 0;
		int			skimmed = 0;

		bad.actor.ptr = "user:*";	/* a glob is no uid */
		bad.actor.len = 6;
		size = log_chunk_encode(&bad, &first, ids, 1, chunk);
		log_chunk_open(&reader, chunk, size);
		while (log_chunk_skim(&reader, &got))
			skimmed++;
		ok &= skimmed == 1 && reader.failure == LOG_ENTRY_OK &&
			log_record_check_fields(&got) == LOG_ENTRY_BAD_UID;
		log_chunk_open(&reader, chunk, size);
		ok &= !log_chunk_next(&reader, &got) && reader.failure == LOG_ENTRY_BAD_UID;
	}

	/* an empty chunk */
	empty = log_chunk_encode(records, order, ids, 0, chunk);
	ok &= empty == LOG_CHUNK_HEADER_BYTES && log_chunk_open(&reader, chunk, empty) &&
		!log_chunk_next(&reader, &got) && reader.failure == LOG_ENTRY_OK;

	/* cut short, grown by a byte, and changed bytes */
	size = log_chunk_encode(records, order, ids, 20, chunk);
	for (i = 0; (size_t) i < size; i++)
	{
		char	   *cut = malloc(i > 0 ? (size_t) i : 1);

		memcpy(cut, chunk, (size_t) i);
		if (log_chunk_open(&reader, cut, (size_t) i))
		{
			while (log_chunk_next(&reader, &got))
				ok &= log_record_check_fields(&got) == LOG_ENTRY_OK;
			ok &= reader.failure != LOG_ENTRY_OK;
		}
		free(cut);
	}
	for (round = 0; round < 20000; round++)
	{
		char	   *bad = malloc(size);
		int			flips = 1 + (int) (rng_next() % 3);

		memcpy(bad, chunk, size);
		while (flips-- > 0)
			bad[rng_next() % size] ^= (char) (1 + rng_next() % 255);
		if (log_chunk_open(&reader, bad, size))
			while (log_chunk_next(&reader, &got))
				ok &= log_record_check_fields(&got) == LOG_ENTRY_OK;
		free(bad);
	}
	free(chunk);
	free(pool);
	report(ok, "log_chunk: 200 random records (some logged before 0.7.0) round-trip with their ids, read or skimmed; a record skimmed past is not checked, one read is; cut short, or with bytes changed, a chunk is read within its bytes and yields only checked records");
}

/* ------------------------------------------------------------------ */

typedef struct Target
{
	const char *name;
	Property	property;
	int			iterations;
	size_t		max_len;
} Target;

int
main(int argc, char **argv)
{
	static const Target targets[] = {
		{"glob", prop_glob, 20000, 2048},
		{"request_key", prop_request_key, 30000, 2048},
		{"evaluator", prop_evaluator, 6000, 4096},
		{"cache_value", prop_cache_value, 30000, 256},
		{"log_record", prop_log_record, 30000, 1024},
		{"log_chunk", prop_log_chunk, 30000, 1024},
	};
	const char *corpus_root = argc > 1 ? argv[1] : "fuzz/corpus";
	int			scale = argc > 2 ? atoi(argv[2]) : 100;
	size_t		t;

	if (scale <= 0)
		scale = 100;
	test_glob_cases();
	test_glob_stars();
	test_request_key_cases();
	test_evaluator_scenarios();
	test_cache_value_cases();
	test_entity_image();
	test_entity_image_number_index();
	test_log_record_json_subset();
	test_log_record_cases();
	test_log_record_count();
	test_log_chunk();

	for (t = 0; t < sizeof(targets) / sizeof(targets[0]); t++)
	{
		const Target *target = &targets[t];
		char		dir[1024];
		int			files;
		int			failures;
		int			iterations = (int) ((long) target->iterations * scale / 100);
		struct timespec start;

		snprintf(dir, sizeof(dir), "%s/%s", corpus_root, target->name);
		failures = run_corpus(target->property, dir, &files);
		if (failures < 0)
			report(false, "%s: seed corpus %s not found", target->name, dir);
		else
			report(failures == 0 && files > 0, "%s: %d seed corpus inputs (%d failed)",
				   target->name, files, failures);

		clock_gettime(CLOCK_MONOTONIC, &start);
		failures = run_random(target->property, 0x5EED0000ULL + t, iterations, target->max_len);
		report(failures == 0, "%s: %d pseudo-random inputs, seed %#llx (%.1f s)%s",
			   target->name, iterations, 0x5EED0000ULL + t, seconds_since(&start),
			   failures ? ", failures above" : "");
	}

	printf("%d passed, %d failed\n", tests_run - tests_failed, tests_failed);
	return tests_failed ? 1 : 0;
}

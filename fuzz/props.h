/*
 * props.h — property checks over decide's pure-C core (src/core/: glob.c,
 * request_key.c, evaluator.c, cache_value.c, log_record.c), shared by the libFuzzer targets
 * (fuzz_target.c, built with clang) and the deterministic unit tests
 * (unittest.c, built with gcc).
 *
 * Every check takes an arbitrary byte string, derives its test case from it
 * (every byte string is a valid input: reading past the end yields zeros),
 * runs the code under test next to a reference, and returns 0 when every
 * property holds.  On a violation it prints what went wrong to stderr and
 * returns 1; the fuzz target then aborts, which makes libFuzzer save the
 * input as a crash artifact.
 */
#ifndef DECIDE_FUZZ_PROPS_H
#define DECIDE_FUZZ_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evaluator.h"
#include "log_record.h"

/* ---- the three properties (prop_*.c) ---- */

/* glob matching agrees with a recursive reference; bounded work */
extern int	prop_glob(const uint8_t *data, size_t size);

/* request-key encoding: equal encodings iff equal requests; decodes back */
extern int	prop_request_key(const uint8_t *data, size_t size);

/* compiled evaluator agrees with a linear-scan reference evaluator */
extern int	prop_evaluator(const uint8_t *data, size_t size);

/* cached-value codec: untrusted bytes never decode to anything but a
 * canonical value of the right key */
extern int	prop_cache_value(const uint8_t *data, size_t size);

/* log stream entries: untrusted bytes are refused or decode to a sound
 * record; built records round-trip */
extern int	prop_log_record(const uint8_t *data, size_t size);

/* chunks of the decision log: untrusted bytes are read within themselves
 * and yield only sound records, which round-trip */
extern int	prop_log_chunk(const uint8_t *data, size_t size);

/* ---- support.c ---- */

/* Reads an input byte by byte; past the end every read yields 0. */
typedef struct Reader
{
	const uint8_t *p;
	size_t		n;
} Reader;

extern uint8_t rd_u8(Reader *r);
extern uint16_t rd_u16(Reader *r);
extern uint64_t rd_u64(Reader *r);
extern bool rd_empty(const Reader *r);

/*
 * Memory for the evaluator: every allocation is its own malloc() (so that
 * AddressSanitizer sees the exact bounds of each), all freed at once.
 */
typedef struct Arena
{
	void	  **blocks;
	size_t		n;
	size_t		cap;
	size_t		bytes;
} Arena;

extern void arena_init(Arena *a);
extern void *arena_alloc(Arena *a, size_t size);
extern void arena_reset(Arena *a);
extern DecAllocator arena_allocator(Arena *a);

/* A growable byte string. */
typedef struct Buf
{
	char	   *p;
	size_t		len;
	size_t		cap;
} Buf;

extern void buf_init(Buf *b);
extern void buf_add(Buf *b, const void *bytes, size_t len);
extern void buf_addc(Buf *b, char c);
extern void buf_free(Buf *b);

/* Appends the UTF-8 encoding of a code point (which must be valid). */
extern void buf_add_utf8(Buf *b, uint32_t cp);

/* Decodes valid UTF-8 into code points; returns the count. */
extern size_t utf8_decode(const char *s, size_t len, uint32_t *out);

/* Character length of one byte: the server's SQL_ASCII behaviour. */
extern size_t byte_char_len(const char *s, size_t remaining);

/* Do two strings hold the same bytes? */
extern bool same_dec_str(DecStr a, DecStr b);

/* Does a string lie within [base, base + len) (an empty one always does)? */
extern bool dec_str_within(DecStr s, const char *base, size_t len);

/* Does every string of a decoded record lie within [base, base + len)? */
extern bool log_record_within(const LogRecord *r, const char *base, size_t len);

/* Are two logged decisions the same, field by field? */
extern bool same_log_record(const LogRecord *a, const LogRecord *b);

/* Prints a byte string escaped, at most limit bytes. */
extern void print_bytes(const char *label, const char *s, size_t len, size_t limit);

/* ---- reference.c: the plainest implementations of the semantics ---- */

/*
 * Does the subject match the pattern?  The textbook recursion, on symbols
 * (bytes or code points): '*' matches zero symbols or one more; '?' exactly
 * one; anything else itself.  A memo table keeps it polynomial.
 */
extern bool ref_glob_symbols(const uint32_t *pattern, size_t pattern_len,
							 const uint32_t *subject, size_t subject_len);

/*
 * The same recursion on bytes, with '*' and '?' stepping over one
 * character as char_len measures it and other pattern bytes matching one
 * byte: the definition dec_glob_match() implements, for arbitrary bytes.
 */
extern bool ref_glob_bytes(const char *pattern, size_t pattern_len,
						   const char *subject, size_t subject_len,
						   DecCharLenFn char_len);

/* One policy as the reference evaluator sees it. */
typedef struct RefPolicy
{
	int64_t		id;
	int32_t		priority;
	DecEffect	effect;
	DecStr		pattern[DEC_NDIMS];
	bool		has_condition;
	DecConditionResult condition;	/* its value for every request */
} RefPolicy;

typedef struct RefDecision
{
	int32_t		policy;			/* index, or -1 */
	bool		allowed;
	bool		condition_unknown;
} RefDecision;

/* Does pattern (of one dimension) match one of the entities? */
extern bool ref_pattern_matches(DecStr pattern, const DecEntitySet *entities,
								bool utf8);

/*
 * Decides by scanning every policy: the combining rules of docs/reference.md, written
 * out without an index.  utf8 picks the character semantics of '?'/'*'.
 */
extern RefDecision ref_decide(const RefPolicy *policies, uint32_t n,
							  const DecRequest *request, bool utf8);

/* Does policy a outrank policy b (priority desc, deny first, id asc)? */
extern bool ref_outranks(const RefPolicy *a, const RefPolicy *b);

/* ---- request_key_decode.c ---- */

/*
 * The test's own decoder of request_key_encode()'s layout, written from its
 * documentation: parses an encoding back into its parts (pointers into
 * key).  Returns false if key is not a well-formed encoding.
 */
extern bool ref_request_key_decode(const char *key, size_t key_len, DecStr uids[DEC_NDIMS],
								   const char **context, size_t *context_len);

/*
 * src/core/request_key.c's own decoder, where the tree has one (weak: the
 * property checks it only when it is linked in).
 */
extern bool request_key_decode(const char *key, size_t len, DecStr uids[DEC_NDIMS],
							   const char **context, size_t *context_len)
			__attribute__((weak));

#endif							/* DECIDE_FUZZ_PROPS_H */

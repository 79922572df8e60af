/*
 * glob.h — the pattern language of policies: '*' matches any run of
 * characters, '?' exactly one character, everything else itself.
 *
 * Pure C (no PostgreSQL headers) so that the matcher can be fuzzed alone.
 */
#ifndef DECIDE_GLOB_H
#define DECIDE_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Length in bytes of the character starting at s (at most remaining, at least 1). */
typedef size_t (*DecCharLenFn) (const char *s, size_t remaining);

/* UTF-8 character length; the default for callers outside the server. */
extern size_t dec_utf8_char_len(const char *s, size_t remaining);

/* Does the pattern contain '*' or '?'? */
extern bool dec_is_glob(const char *pattern, size_t len);

/* Bytes before the first glob character: every match starts with them. */
extern size_t dec_glob_literal_prefix(const char *pattern, size_t len);

/*
 * Does the whole subject match the whole pattern?  Time is O(len(pattern) *
 * len(subject)) at worst, with no recursion, whatever the pattern.
 */
extern bool dec_glob_match(const char *pattern, size_t pattern_len,
						   const char *subject, size_t subject_len,
						   DecCharLenFn char_len);

#endif							/* DECIDE_GLOB_H */

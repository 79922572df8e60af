/*
 * glob.c — glob matching for policy patterns.
 *
 * The matcher is the classic one-backtrack-point algorithm: on a mismatch it
 * returns to the most recent '*' and lets it swallow one more character.
 * Earlier stars never need revisiting, which bounds the work by the product
 * of the two lengths even for patterns made of thousands of stars.
 */
#include "glob.h"

#include <stdint.h>

size_t
dec_utf8_char_len(const char *s, size_t remaining)
{
	unsigned char lead = (unsigned char) s[0];
	size_t		len;

	if (lead < 0x80)
		len = 1;
	else if ((lead & 0xE0) == 0xC0)
		len = 2;
	else if ((lead & 0xF0) == 0xE0)
		len = 3;
	else if ((lead & 0xF8) == 0xF0)
		len = 4;
	else
		len = 1;				/* not valid UTF-8: step one byte */
	return len <= remaining ? len : remaining;
}

bool
dec_is_glob(const char *pattern, size_t len)
{
	return dec_glob_literal_prefix(pattern, len) < len;
}

size_t
dec_glob_literal_prefix(const char *pattern, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
		if (pattern[i] == '*' || pattern[i] == '?')
			break;
	return i;
}

bool
dec_glob_match(const char *pattern, size_t pattern_len,
			   const char *subject, size_t subject_len,
			   DecCharLenFn char_len)
{
	size_t		p = 0;
	size_t		s = 0;
	size_t		star_p = SIZE_MAX;	/* pattern position just after the last '*' */
	size_t		star_s = 0;		/* subject position that star swallowed up to */

	while (s < subject_len)
	{
		if (p < pattern_len && pattern[p] == '*')
		{
			while (p < pattern_len && pattern[p] == '*')
				p++;
			if (p == pattern_len)
				return true;	/* a trailing star swallows the rest */
			star_p = p;
			star_s = s;
			continue;
		}
		if (p < pattern_len && pattern[p] == '?')
		{
			p++;
			s += char_len(subject + s, subject_len - s);
			continue;
		}
		if (p < pattern_len && pattern[p] == subject[s])
		{
			p++;
			s++;
			continue;
		}
		if (star_p == SIZE_MAX)
			return false;
		/* Let the last star swallow one more character and retry. */
		star_s += char_len(subject + star_s, subject_len - star_s);
		s = star_s;
		p = star_p;
	}
	while (p < pattern_len && pattern[p] == '*')
		p++;
	return p == pattern_len;
}

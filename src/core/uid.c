/*
 * uid.c — the validity rule of uids and patterns (see uid.h).
 */
#include "uid.h"

#include <string.h>

DecUidProblem
dec_uid_problem(const char *text, size_t len, bool allow_glob, size_t *at)
{
	size_t		i;

	if (len == 0)
		return DEC_UID_EMPTY;
	if (len > DEC_MAX_UID_BYTES)
		return DEC_UID_TOO_LONG;
	for (i = 0; i < len; i++)
	{
		unsigned char ch = (unsigned char) text[i];

		*at = i;
		if (ch < 0x20 || ch == 0x7f)
			return DEC_UID_CONTROL_CHARACTER;
		if (!allow_glob && (ch == '*' || ch == '?'))
			return DEC_UID_GLOB_CHARACTER;
	}
	return DEC_UID_OK;
}

int
dec_uid_compare(const char *a, size_t a_len, const char *b, size_t b_len)
{
	int			c = memcmp(a, b, a_len < b_len ? a_len : b_len);

	if (c != 0)
		return c;
	return (a_len > b_len) - (a_len < b_len);
}

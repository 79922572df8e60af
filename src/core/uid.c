/*
 * uid.c — the validity rule of uids and patterns (see uid.h).
 */
#include "uid.h"

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

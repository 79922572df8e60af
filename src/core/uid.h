/*
 * uid.h — what a uid and a policy pattern may contain.
 *
 * Pure C, so that the same rule serves the SQL checks (input.c) and the
 * validation of log records received from other servers (log_record.c).
 * A uid is 1 to DEC_MAX_UID_BYTES bytes with no control characters and no
 * glob characters ('*', '?'): a pattern without glob characters is a uid,
 * so a uid containing them could never be named exactly.  A pattern follows
 * the same rules but may contain glob characters.
 */
#ifndef DECIDE_UID_H
#define DECIDE_UID_H

#include <stdbool.h>
#include <stddef.h>

#define DEC_MAX_UID_BYTES 512

typedef enum DecUidProblem
{
	DEC_UID_OK = 0,
	DEC_UID_EMPTY,
	DEC_UID_TOO_LONG,
	DEC_UID_CONTROL_CHARACTER,
	DEC_UID_GLOB_CHARACTER
} DecUidProblem;

/*
 * What is wrong with a uid (allow_glob false) or a pattern (true); for a
 * problem at a byte, its 0-based offset goes to *at.
 */
extern DecUidProblem dec_uid_problem(const char *text, size_t len, bool allow_glob, size_t *at);

/*
 * The order of uids: their bytes, as the uid columns' collation "C" orders
 * them (a prefix first).  Negative, zero or positive, as memcmp.
 */
extern int	dec_uid_compare(const char *a, size_t a_len, const char *b, size_t b_len);

#endif							/* DECIDE_UID_H */

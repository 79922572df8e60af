/*
 * input.h — limits and validity rules for everything a caller or an admin
 * hands to decide: uids, patterns, parents, attributes and contexts.
 *
 * The same checks serve the table constraints (decide.check_*) and the
 * arguments of the decision functions, so a value is valid in both or in
 * neither.
 */
#ifndef DECIDE_INPUT_H
#define DECIDE_INPUT_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "evaluator.h"
#include "uid.h"

#define DECIDE_MAX_UID_BYTES		DEC_MAX_UID_BYTES
#define DECIDE_MAX_PARENTS			64
#define DECIDE_MAX_ATTRS_BYTES		(64 * 1024)
#define DECIDE_MAX_CONTEXT_BYTES	(1024 * 1024)
#define DECIDE_MAX_BATCH			100000

/* "what" names the argument or column in error messages. */
extern void decide_validate_uid(const char *what, const char *uid, int len);
extern void decide_validate_pattern(const char *what, const char *pattern, int len);
extern void decide_validate_context(Jsonb *context);

/* A text value's bytes as a DecStr (no copy: valid while the value is). */
static inline DecStr
decide_text_str(text *value)
{
	DecStr		s = {VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)};

	return s;
}

#endif							/* DECIDE_INPUT_H */

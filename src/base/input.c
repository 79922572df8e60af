/*
 * input.c — validity rules for uids, patterns, parents, attributes and
 * contexts, and the SQL-callable checkers used by the table constraints.
 * The rule for uids and patterns is uid.c's; this file reports it.
 */
#include "input.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "uid.h"

static void
validate_text(const char *what, const char *value, int len, bool allow_glob)
{
	size_t		at = 0;

	switch (dec_uid_problem(value, len, allow_glob, &at))
	{
		case DEC_UID_OK:
			break;
		case DEC_UID_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not be empty", what)));
			break;
		case DEC_UID_TOO_LONG:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("%s is too long", what),
					 errdetail("It has %d bytes; the limit is %d.", len, DECIDE_MAX_UID_BYTES)));
			break;
		case DEC_UID_CONTROL_CHARACTER:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", what),
					 errdetail("Byte %d is 0x%02x.", (int) at + 1, (unsigned char) value[at])));
			break;
		case DEC_UID_GLOB_CHARACTER:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain the glob characters \"*\" or \"?\"", what),
					 errhint("Glob characters belong in policy patterns, not in uids.")));
			break;
	}
}

void
decide_validate_uid(const char *what, const char *uid, int len)
{
	validate_text(what, uid, len, false);
}

void
decide_validate_pattern(const char *what, const char *pattern, int len)
{
	validate_text(what, pattern, len, true);
}

static void
validate_object(const char *what, Jsonb *value, Size max_bytes)
{
	if (!JB_ROOT_IS_OBJECT(value) || JB_ROOT_IS_SCALAR(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what)));
	if (VARSIZE(value) > max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", what),
				 errdetail("It takes %zu bytes; the limit is %zu.",
						   (Size) VARSIZE(value), max_bytes)));
}

void
decide_validate_context(Jsonb *context)
{
	validate_object("context", context, DECIDE_MAX_CONTEXT_BYTES);
}

PG_FUNCTION_INFO_V1(decide_check_uid);
Datum
decide_check_uid(PG_FUNCTION_ARGS)
{
	text	   *uid = PG_GETARG_TEXT_PP(0);

	decide_validate_uid("uid", VARDATA_ANY(uid), VARSIZE_ANY_EXHDR(uid));
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(decide_check_pattern);
Datum
decide_check_pattern(PG_FUNCTION_ARGS)
{
	text	   *pattern = PG_GETARG_TEXT_PP(0);

	decide_validate_pattern("pattern", VARDATA_ANY(pattern), VARSIZE_ANY_EXHDR(pattern));
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(decide_check_parents);
Datum
decide_check_parents(PG_FUNCTION_ARGS)
{
	ArrayType  *parents = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (ARR_NDIM(parents) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("parents must be a one-dimensional array")));
	deconstruct_array(parents, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n > DECIDE_MAX_PARENTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("an entity may have at most %d parents", DECIDE_MAX_PARENTS),
				 errdetail("It has %d.", n)));
	for (i = 0; i < n; i++)
	{
		text	   *parent;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("parents must not contain NULL")));
		parent = DatumGetTextPP(elems[i]);
		decide_validate_uid("parent uid", VARDATA_ANY(parent), VARSIZE_ANY_EXHDR(parent));
	}
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(decide_check_attrs);
Datum
decide_check_attrs(PG_FUNCTION_ARGS)
{
	validate_object("attrs", PG_GETARG_JSONB_P(0), DECIDE_MAX_ATTRS_BYTES);
	PG_RETURN_BOOL(true);
}

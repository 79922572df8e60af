/*
 * asan_canary.c — a server module with two deliberate bugs, for
 * fuzz/sanitize.sh's self-test: before the suites run, it loads this into a
 * scratch server built the same way and checks that AddressSanitizer and
 * UBSan report each bug (and that the run would fail on it).  Never
 * installed anywhere else.
 */
#include "postgres.h"

#include <stdlib.h>

#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(asan_canary_read);
PG_FUNCTION_INFO_V1(ubsan_canary_shift);

/* Reads byte n of an 8-byte malloc'd buffer: n = 8 overflows. */
Datum
asan_canary_read(PG_FUNCTION_ARGS)
{
	char	   *volatile buf = malloc(8);
	int32		n = PG_GETARG_INT32(0);
	int32		c;

	memset(buf, 'x', 8);
	c = buf[n];
	free(buf);
	PG_RETURN_INT32(c);
}

/* 1 << n: n >= 32 is undefined behaviour. */
Datum
ubsan_canary_shift(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);

	PG_RETURN_INT32(1 << n);
}

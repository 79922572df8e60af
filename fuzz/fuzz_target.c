/*
 * fuzz_target.c — the libFuzzer entry point.  Built once per property with
 * -DFUZZ_PROPERTY=prop_glob (or prop_request_key, prop_evaluator); a
 * violated property aborts, and libFuzzer saves the input that did it.
 */
#include "props.h"

#include <stdlib.h>

#ifndef FUZZ_PROPERTY
#error "define FUZZ_PROPERTY, e.g. -DFUZZ_PROPERTY=prop_glob"
#endif

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (FUZZ_PROPERTY(data, size) != 0)
		abort();
	return 0;
}

/*
 * request_key.h — the injective byte encoding of a decision request, shared
 * by every cache layer.
 *
 * Pure C, so it can be fuzzed alone: two requests get the same encoding
 * only if their actor, action, resource and context bytes are all equal.
 */
#ifndef DECIDE_REQUEST_KEY_H
#define DECIDE_REQUEST_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evaluator.h"

/*
 * Bytes needed for a request: three length-prefixed uids, then the context
 * bytes (the serialised jsonb, whose own header holds its length; the
 * last field needs no prefix of its own).
 */
extern size_t request_key_size(const DecStr uids[DEC_NDIMS], size_t context_len);

/* Writes the encoding into out (request_key_size bytes); returns that size. */
extern size_t request_key_encode(const DecStr uids[DEC_NDIMS], const void *context,
								 size_t context_len, char *out);

/*
 * Splits an encoding back into its uids (pointing into key) and context;
 * false if the bytes are not a well-formed encoding.
 */
extern bool request_key_decode(const char *key, size_t len, DecStr uids[DEC_NDIMS],
							   const char **context, size_t *context_len);

#endif							/* DECIDE_REQUEST_KEY_H */

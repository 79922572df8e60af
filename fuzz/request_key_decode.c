/*
 * request_key_decode.c — the inverse of request_key_encode()
 * (src/core/request_key.c), written from the layout its header describes:
 * for actor, action and resource a 4-byte length in host order and the
 * bytes, then the context bytes to the end.
 *
 * An encoding with a left inverse is injective: if decoding gives back
 * every request exactly, no two requests can share an encoding.  This
 * decoder is the test's own oracle; where src/core/request_key.c has a decoder
 * of its own (request_key_decode), prop_request_key.c checks that one
 * against this.
 */
#include "props.h"

#include <string.h>

bool
ref_request_key_decode(const char *key, size_t key_len, DecStr uids[DEC_NDIMS],
					   const char **context, size_t *context_len)
{
	size_t		pos = 0;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		uint32_t	len;

		if (key_len - pos < sizeof(uint32_t))
			return false;
		memcpy(&len, key + pos, sizeof(uint32_t));
		pos += sizeof(uint32_t);
		if (key_len - pos < len)
			return false;
		uids[d].ptr = key + pos;
		uids[d].len = len;
		pos += len;
	}
	*context = key + pos;
	*context_len = key_len - pos;
	return true;
}

/*
 * request_key.c — injective encoding of decision requests for cache keys.
 *
 * Layout: for actor, action and resource a 4-byte length (host order: keys
 * never leave the machine) then the bytes; then the context bytes to the
 * end.  Decoding the layout is unambiguous, so equal encodings mean equal
 * requests: no delimiter in a uid can make one request read another's
 * decision.
 */
#include "request_key.h"

#include <string.h>

size_t
request_key_size(const DecStr uids[DEC_NDIMS], size_t context_len)
{
	size_t		size = context_len;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
		size += sizeof(uint32_t) + uids[d].len;
	return size;
}

size_t
request_key_encode(const DecStr uids[DEC_NDIMS], const void *context, size_t context_len,
				   char *out)
{
	char	   *p = out;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		memcpy(p, &uids[d].len, sizeof(uint32_t));
		p += sizeof(uint32_t);
		memcpy(p, uids[d].ptr, uids[d].len);
		p += uids[d].len;
	}
	memcpy(p, context, context_len);
	p += context_len;
	return (size_t) (p - out);
}

bool
request_key_decode(const char *key, size_t len, DecStr uids[DEC_NDIMS],
				   const char **context, size_t *context_len)
{
	size_t		pos = 0;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		uint32_t	field_len;

		if (len - pos < sizeof(uint32_t))
			return false;
		memcpy(&field_len, key + pos, sizeof(uint32_t));
		pos += sizeof(uint32_t);
		if (field_len > len - pos)
			return false;
		uids[d].ptr = key + pos;
		uids[d].len = field_len;
		pos += field_len;
	}
	*context = key + pos;
	*context_len = len - pos;
	return true;
}

/*
 * prop_request_key.c — the cache-key encoding (src/core/request_key.c) is
 * injective: two requests share an encoding only if they are equal.
 *
 * Input layout:
 *   byte 0   how the second request B is made from the first, A:
 *              0  the same bytes with one field boundary moved (what a
 *                 delimiter attack does: the concatenation is unchanged)
 *              1  an equal request in other memory
 *              2  parsed independently from the rest of the input
 *              3  one byte changed, or one byte added to one field
 *   byte 1,2 parameters of the above
 *   then A: three uid lengths and a context length (one byte each; a
 *   length byte >= 0xF0 makes that field long, up to a few kB), the
 *   bytes of the fields; then B's source in mode 2.
 *
 * Properties:
 *   1. request_key_size() is what request_key_encode() writes (into a
 *      buffer of exactly that size: AddressSanitizer sees any overrun);
 *   2. decoding the encoding gives back the request, with the test's own
 *      decoder (request_key_decode.c) and with src's request_key_decode()
 *      where it exists;
 *   3. encode(A) == encode(B) exactly when A == B;
 *   4. src's request_key_decode() on the raw input bytes stays in bounds,
 *      agrees with the test's decoder, and what it accepts re-encodes to
 *      the very same bytes.
 */
#include "props.h"
#include "request_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NFIELDS (DEC_NDIMS + 1)	/* three uids and the context */

typedef struct Request
{
	Buf			field[NFIELDS];
} Request;

static void
request_init(Request *q)
{
	int			f;

	for (f = 0; f < NFIELDS; f++)
	{
		buf_init(&q->field[f]);
		buf_add(&q->field[f], "", 0);
	}
}

static void
request_free(Request *q)
{
	int			f;

	for (f = 0; f < NFIELDS; f++)
		buf_free(&q->field[f]);
}

static void
request_copy(Request *to, const Request *from)
{
	int			f;

	request_init(to);
	for (f = 0; f < NFIELDS; f++)
		buf_add(&to->field[f], from->field[f].p, from->field[f].len);
}

static void
request_parse(Request *q, Reader *r)
{
	size_t		len[NFIELDS];
	size_t		i;
	int			f;

	request_init(q);
	for (f = 0; f < NFIELDS; f++)
	{
		uint8_t		b = rd_u8(r);

		len[f] = b >= 0xF0 ? (size_t) (b - 0xEF) * 700 : b;
	}
	for (f = 0; f < NFIELDS; f++)
	{
		size_t		from_input = len[f] < r->n ? len[f] : r->n;
		char	   *filler;

		buf_add(&q->field[f], r->p, from_input);
		r->p += from_input;
		r->n -= from_input;
		if (from_input == len[f])
			continue;
		/* past the end of the input: a repeating, non-zero filler */
		filler = malloc(len[f] - from_input);
		if (filler == NULL)
			abort();
		for (i = 0; i < len[f] - from_input; i++)
			filler[i] = (char) ('A' + (i + f) % 3);
		buf_add(&q->field[f], filler, len[f] - from_input);
		free(filler);
	}
}

static bool
request_equal(const Request *a, const Request *b)
{
	int			f;

	for (f = 0; f < NFIELDS; f++)
		if (a->field[f].len != b->field[f].len ||
			memcmp(a->field[f].p, b->field[f].p, a->field[f].len) != 0)
			return false;
	return true;
}

static void
request_print(const char *name, const Request *q)
{
	static const char *const names[NFIELDS] = {"actor", "action", "resource", "context"};
	int			f;

	fprintf(stderr, "  request %s:\n", name);
	for (f = 0; f < NFIELDS; f++)
		print_bytes(names[f], q->field[f].p, q->field[f].len, 120);
}

/* Encodes into a buffer of exactly request_key_size() bytes. */
static char *
encode(const Request *q, size_t *len, int *failed)
{
	DecStr		uids[DEC_NDIMS];
	size_t		size,
				written;
	char	   *out;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
	{
		uids[d].ptr = q->field[d].p;
		uids[d].len = (uint32_t) q->field[d].len;
	}
	size = request_key_size(uids, q->field[DEC_NDIMS].len);
	out = malloc(size ? size : 1);
	if (out == NULL)
		abort();
	written = request_key_encode(uids, q->field[DEC_NDIMS].p, q->field[DEC_NDIMS].len, out);
	if (written != size)
	{
		fprintf(stderr, "request_key: encode wrote %zu bytes, request_key_size said %zu\n",
				written, size);
		*failed = 1;
	}
	*len = written;
	return out;
}

typedef bool (*DecodeFn) (const char *key, size_t len, DecStr uids[DEC_NDIMS],
						  const char **context, size_t *context_len);

static void
check_decodes_with(DecodeFn decode, const char *who, const Request *q,
				   const char *key, size_t key_len, int *failed)
{
	DecStr		uids[DEC_NDIMS];
	const char *context;
	size_t		context_len;
	int			d;

	if (!decode(key, key_len, uids, &context, &context_len))
	{
		fprintf(stderr, "request_key: the encoding does not decode (%s)\n", who);
		*failed = 1;
		return;
	}
	for (d = 0; d < DEC_NDIMS; d++)
		if (uids[d].len != q->field[d].len ||
			memcmp(uids[d].ptr, q->field[d].p, uids[d].len) != 0)
		{
			fprintf(stderr, "request_key: field %d decodes differently (%s)\n", d, who);
			*failed = 1;
		}
	if (context_len != q->field[DEC_NDIMS].len ||
		memcmp(context, q->field[DEC_NDIMS].p, context_len) != 0)
	{
		fprintf(stderr, "request_key: the context decodes differently (%s)\n", who);
		*failed = 1;
	}
}

static void
check_decodes(const Request *q, const char *key, size_t key_len, int *failed)
{
	check_decodes_with(ref_request_key_decode, "the test's decoder", q, key, key_len, failed);
	if (request_key_decode)
		check_decodes_with(request_key_decode, "request_key_decode", q, key, key_len, failed);
}

/*
 * src/core/request_key.c's decoder on arbitrary bytes (what a corrupted or
 * hostile cache could hold): it stays within the bytes (the copy has
 * exactly their size), agrees with the test's decoder on whether they are
 * an encoding and on the parts, and what it accepts re-encodes to the same
 * bytes.
 */
static void
check_raw_decode(const uint8_t *data, size_t size, int *failed)
{
	char	   *key;
	DecStr		uids[DEC_NDIMS],
				ref_uids[DEC_NDIMS];
	const char *context,
			   *ref_context;
	size_t		context_len,
				ref_context_len;
	bool		ok,
				ref_ok;
	int			d;

	if (!request_key_decode)
		return;
	key = malloc(size ? size : 1);
	if (key == NULL)
		abort();
	if (size)
		memcpy(key, data, size);
	ok = request_key_decode(key, size, uids, &context, &context_len);
	ref_ok = ref_request_key_decode(key, size, ref_uids, &ref_context, &ref_context_len);
	if (ok != ref_ok)
	{
		fprintf(stderr, "request_key: request_key_decode says %d, the test's decoder %d\n",
				ok, ref_ok);
		*failed = 1;
	}
	if (ok && ref_ok)
	{
		char	   *again = malloc(request_key_size(uids, context_len) + 1);
		size_t		again_len = request_key_encode(uids, context, context_len, again);

		for (d = 0; d < DEC_NDIMS; d++)
			if (uids[d].ptr != ref_uids[d].ptr || uids[d].len != ref_uids[d].len)
			{
				fprintf(stderr, "request_key: decoders disagree on field %d\n", d);
				*failed = 1;
			}
		if (context != ref_context || context_len != ref_context_len)
		{
			fprintf(stderr, "request_key: decoders disagree on the context\n");
			*failed = 1;
		}
		if (again_len != size || memcmp(again, key, size) != 0)
		{
			fprintf(stderr, "request_key: decoded bytes re-encode differently\n");
			*failed = 1;
		}
		free(again);
	}
	if (*failed)
		print_bytes("raw input as a key", key, size, 120);
	free(key);
}

int
prop_request_key(const uint8_t *data, size_t size)
{
	Reader		r = {data, size};
	uint8_t		mode = rd_u8(&r) % 4;
	uint8_t		x = rd_u8(&r);
	uint8_t		y = rd_u8(&r);
	Request		a,
				b;
	char	   *key_a,
			   *key_b;
	size_t		len_a,
				len_b;
	bool		same_request,
				same_key;
	int			failed = 0;

	request_parse(&a, &r);
	switch (mode)
	{
		case 0:
			{
				/* move k bytes across the boundary between fields f and f+1 */
				int			f = x % DEC_NDIMS;
				size_t		k = 1 + (y >> 1);
				Buf		   *left,
						   *right;
				Buf			moved;

				request_copy(&b, &a);
				left = &b.field[f];
				right = &b.field[f + 1];
				buf_init(&moved);
				if (y & 1)
				{
					/* the head of the right field joins the left one */
					if (k > right->len)
						k = right->len;
					buf_add(left, right->p, k);
					memmove(right->p, right->p + k, right->len - k);
					right->len -= k;
				}
				else
				{
					/* the tail of the left field joins the right one */
					if (k > left->len)
						k = left->len;
					buf_add(&moved, left->p + left->len - k, k);
					buf_add(&moved, right->p, right->len);
					left->len -= k;
					right->len = 0;
					buf_add(right, moved.p, moved.len);
				}
				buf_free(&moved);
				break;
			}
		case 1:
			request_copy(&b, &a);
			break;
		case 2:
			request_parse(&b, &r);
			break;
		default:
			{
				int			f = x % NFIELDS;

				request_copy(&b, &a);
				if (b.field[f].len > 0 && (y & 1))
					b.field[f].p[(y >> 1) % b.field[f].len] ^= (char) (1 + (x >> 2) % 255);
				else
					buf_addc(&b.field[f], (char) x);
				break;
			}
	}

	key_a = encode(&a, &len_a, &failed);
	key_b = encode(&b, &len_b, &failed);
	check_decodes(&a, key_a, len_a, &failed);
	check_decodes(&b, key_b, len_b, &failed);
	check_raw_decode(data, size, &failed);
	same_request = request_equal(&a, &b);
	same_key = len_a == len_b && memcmp(key_a, key_b, len_a) == 0;
	if (same_request != same_key)
	{
		fprintf(stderr, "request_key: requests %s but encodings %s (mode %d)\n",
				same_request ? "equal" : "differ", same_key ? "equal" : "differ", mode);
		failed = 1;
	}
	if (failed)
	{
		request_print("A", &a);
		request_print("B", &b);
	}
	free(key_a);
	free(key_b);
	request_free(&a);
	request_free(&b);
	return failed;
}

/*
 * support.c — input reader, per-allocation arena, byte buffers and UTF-8
 * helpers for the property checks.
 */
#include "props.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t
rd_u8(Reader *r)
{
	uint8_t		b;

	if (r->n == 0)
		return 0;
	b = r->p[0];
	r->p++;
	r->n--;
	return b;
}

uint16_t
rd_u16(Reader *r)
{
	uint16_t	hi = rd_u8(r);

	return (uint16_t) ((hi << 8) | rd_u8(r));
}

uint64_t
rd_u64(Reader *r)
{
	uint64_t	v = 0;
	int			i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | rd_u8(r);
	return v;
}

bool
rd_empty(const Reader *r)
{
	return r->n == 0;
}

static void *
xmalloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "out of memory (%zu bytes)\n", size);
		abort();
	}
	return p;
}

static void *
xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (p == NULL)
	{
		fprintf(stderr, "out of memory (%zu bytes)\n", size);
		abort();
	}
	return p;
}

void
arena_init(Arena *a)
{
	memset(a, 0, sizeof(*a));
}

void *
arena_alloc(Arena *a, size_t size)
{
	void	   *p;

	if (a->n == a->cap)
	{
		a->cap = a->cap ? a->cap * 2 : 64;
		a->blocks = xrealloc(a->blocks, sizeof(void *) * a->cap);
	}
	p = xmalloc(size);
	/* Garbage, not zeros: code that reads memory it never wrote shows up. */
	memset(p, 0xA5, size);
	a->blocks[a->n++] = p;
	a->bytes += size;
	return p;
}

void
arena_reset(Arena *a)
{
	size_t		i;

	for (i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
	memset(a, 0, sizeof(*a));
}

static void *
arena_alloc_cb(void *state, size_t size)
{
	return arena_alloc((Arena *) state, size);
}

DecAllocator
arena_allocator(Arena *a)
{
	DecAllocator alloc;

	alloc.alloc = arena_alloc_cb;
	alloc.state = a;
	return alloc;
}

void
buf_init(Buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
buf_add(Buf *b, const void *bytes, size_t len)
{
	if (b->len + len + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 32;

		while (cap < b->len + len + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, bytes, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void
buf_addc(Buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_free(Buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
buf_add_utf8(Buf *b, uint32_t cp)
{
	char		out[4];

	if (cp < 0x80)
	{
		out[0] = (char) cp;
		buf_add(b, out, 1);
	}
	else if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		buf_add(b, out, 2);
	}
	else if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		buf_add(b, out, 3);
	}
	else
	{
		out[0] = (char) (0xF0 | (cp >> 18));
		out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[3] = (char) (0x80 | (cp & 0x3F));
		buf_add(b, out, 4);
	}
}

size_t
utf8_decode(const char *s, size_t len, uint32_t *out)
{
	size_t		i = 0;
	size_t		n = 0;

	while (i < len)
	{
		unsigned char c = (unsigned char) s[i];
		uint32_t	cp;
		size_t		k,
					extra;

		if (c < 0x80)
		{
			cp = c;
			extra = 0;
		}
		else if ((c & 0xE0) == 0xC0)
		{
			cp = c & 0x1F;
			extra = 1;
		}
		else if ((c & 0xF0) == 0xE0)
		{
			cp = c & 0x0F;
			extra = 2;
		}
		else
		{
			cp = c & 0x07;
			extra = 3;
		}
		for (k = 1; k <= extra && i + k < len; k++)
			cp = (cp << 6) | ((unsigned char) s[i + k] & 0x3F);
		out[n++] = cp;
		i += extra + 1;
	}
	return n;
}

size_t
byte_char_len(const char *s, size_t remaining)
{
	(void) s;
	(void) remaining;
	return 1;
}

void
print_bytes(const char *label, const char *s, size_t len, size_t limit)
{
	size_t		i;

	fprintf(stderr, "  %s (%zu bytes): \"", label, len);
	for (i = 0; i < len && i < limit; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fprintf(stderr, "\"%s\n", len > limit ? "..." : "");
}

bool
same_dec_str(DecStr a, DecStr b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool
dec_str_within(DecStr s, const char *base, size_t len)
{
	return s.len == 0 || (s.ptr >= base && s.ptr + s.len <= base + len);
}

bool
log_record_within(const LogRecord *r, const char *base, size_t len)
{
	return dec_str_within(r->actor, base, len) && dec_str_within(r->action, base, len) &&
		dec_str_within(r->resource, base, len) && dec_str_within(r->policy, base, len) &&
		dec_str_within(r->risk_level, base, len) && dec_str_within(r->context, base, len) &&
		dec_str_within(r->reason, base, len);
}

bool
same_log_record(const LogRecord *a, const LogRecord *b)
{
	return a->decided_at == b->decided_at && a->epoch == b->epoch &&
		a->priority == b->priority && a->allowed == b->allowed &&
		a->has_policy == b->has_policy && a->condition_unknown == b->condition_unknown &&
		a->source == b->source && a->priority_unknown == b->priority_unknown &&
		a->has_reason == b->has_reason && same_dec_str(a->reason, b->reason) &&
		same_dec_str(a->actor, b->actor) && same_dec_str(a->action, b->action) &&
		same_dec_str(a->resource, b->resource) && same_dec_str(a->policy, b->policy) &&
		same_dec_str(a->risk_level, b->risk_level) && same_dec_str(a->context, b->context);
}

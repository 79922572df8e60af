/*
 * prop_glob.c — dec_glob_match() (src/core/glob.c) against the recursive
 * reference matchers of reference.c.
 *
 * Input layout (every byte string is valid):
 *   byte 0   flags: bits 0-1 mode (0: bytes; 1: valid UTF-8; 2: raw bytes
 *            with UTF-8 character lengths; 3: valid EUC-JP), bit 2 small
 *            alphabet, bit 3 stretch (runs of stars)
 *   byte 1   where the rest splits into pattern and subject (x/256)
 *   byte 2   stretch: 1 + 8 * byte stars before each pattern symbol
 *   rest     pattern source, then subject source
 *
 * Modes:
 *   bytes      '?' and '*' step one byte (SQL_ASCII); reference: the
 *              recursion on bytes.
 *   UTF-8      pattern and subject are valid UTF-8 (as the server
 *              guarantees for text); reference: the recursion on code
 *              points, and the byte recursion with UTF-8 lengths must agree.
 *   raw        arbitrary bytes with UTF-8 character lengths.  The server
 *              never passes invalid UTF-8 (PostgreSQL validates text on
 *              input), and on it the one-backtrack-point matcher and the
 *              recursive definition may differ (a literal byte can leave the
 *              matcher inside a character); so the answer is compared only
 *              when both strings are well-formed UTF-8, and otherwise only
 *              properties 2-5 are checked.
 *   EUC-JP     valid EUC-JP with pg_mblen()'s EUC-JP lengths: a server
 *              encoding whose second bytes look like first bytes, so a
 *              literal could match across a character boundary; reference:
 *              the recursion on whole characters.
 *
 * Properties:
 *   1. the answer equals the reference's;
 *   2. collapsing runs of stars changes nothing;
 *   3. bounded work: the matcher measures characters (calls char_len) at
 *      most (p + 1) * (s + 1) times, p the pattern length with star runs
 *      collapsed, s the subject length — however many stars there are;
 *   4. every character length it is given is between 1 and what remains;
 *   5. dec_is_glob() and dec_glob_literal_prefix() agree with a plain scan,
 *      and every match starts with the literal prefix.
 */
#include "props.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SOURCE 512			/* symbols of pattern and of subject */
#define MAX_PATTERN_BYTES 20000 /* after stretching */

/* A char_len that counts its calls and checks what it returns. */
static DecCharLenFn counted_inner;
static size_t counted_calls;
static bool counted_bad;

static size_t
counted_char_len(const char *s, size_t remaining)
{
	size_t		len = counted_inner(s, remaining);

	counted_calls++;
	if (remaining == 0 || len < 1 || len > remaining)
		counted_bad = true;
	return len;
}

/* pg_mblen() in an EUC_JP database (pg_eucjp_mblen). */
static size_t
eucjp_char_len(const char *s, size_t remaining)
{
	unsigned char c = (unsigned char) s[0];
	size_t		len = c == 0x8E ? 2 : c == 0x8F ? 3 : (c & 0x80) ? 2 : 1;

	return len <= remaining ? len : remaining;
}

/* Byte alphabet: ASCII, glob characters, lead and continuation bytes. */
static const char byte_alphabet[] = {'a', 'b', '*', '?', ':', 'a', '*', '\xC3', '\xA9', '\x80', '\xE2', 'b'};

/* UTF-8 alphabet: the same in whole characters. */
static const char *const utf8_alphabet[] = {
	"a", "b", "*", "?", ":", "a", "*", "\xC3\xA9" /* é */ , "\xE2\x82\xAC" /* € */ ,
	"\xF0\x9D\x84\x9E" /* 𝄞 */ , "\xC3\x80" /* À */ , "b"
};

/* EUC-JP alphabet: characters whose bytes overlap each other. */
static const char *const eucjp_alphabet[] = {
	"a", "b", "*", "?", ":", "\xA4\xA2" /* あ */ , "\xA2\xA4", "\xA4\xA4",
	"\x8E\xA4" /* half-width kana */ , "\x8F\xA4\xA2" /* JIS X 0212 */ , "\xA2\xA2", "*"
};

#define ALPHABET_SIZE 12

/* A valid EUC-JP character made from one input byte. */
static void
add_eucjp(Buf *out, uint8_t b)
{
	char		c[3];

	if (b < 0x80)
		buf_addc(out, (char) b);
	else if (b < 0xC0)
	{
		c[0] = (char) (0xA1 + b % 0x5E);
		c[1] = (char) (0xA1 + (b * 7) % 0x5E);
		buf_add(out, c, 2);
	}
	else if (b < 0xE0)
	{
		c[0] = (char) 0x8E;
		c[1] = (char) (0xA1 + b % 0x3F);
		buf_add(out, c, 2);
	}
	else
	{
		c[0] = (char) 0x8F;
		c[1] = (char) (0xA1 + b % 0x5E);
		c[2] = (char) (0xA1 + (b * 5) % 0x5E);
		buf_add(out, c, 3);
	}
}

/* Splits a string into characters by char_len, each as one symbol. */
static size_t
to_symbols(const char *s, size_t len, DecCharLenFn char_len, uint32_t *out)
{
	size_t		i = 0;
	size_t		n = 0;

	while (i < len)
	{
		size_t		l = char_len(s + i, len - i);
		uint32_t	sym = 0;
		size_t		k;

		for (k = 0; k < l; k++)
			sym = (sym << 8) | (unsigned char) s[i + k];
		if (l > 1)
			sym |= (uint32_t) l << 24;	/* never '*' or '?' */
		out[n++] = sym;
		i += l;
	}
	return n;
}

/* Well-formed UTF-8 (as far as character lengths go)? */
static bool
utf8_well_formed(const char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = (unsigned char) s[i];
		size_t		l = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 :
			(c & 0xF8) == 0xF0 ? 4 : 0;
		size_t		k;

		if (l == 0 || i + l > len)
			return false;
		for (k = 1; k < l; k++)
			if (((unsigned char) s[i + k] & 0xC0) != 0x80)
				return false;
		i += l;
	}
	return true;
}

/* A code point made from one input byte: all four UTF-8 lengths. */
static uint32_t
code_point_of(uint8_t b)
{
	uint32_t	cp;

	if (b < 0x80)
		return b;
	if (b < 0xE0)
		return 0x80 + (uint32_t) (b - 0x80) * 17;	/* 2 bytes */
	if (b < 0xF8)
	{
		cp = 0x800 + (uint32_t) (b - 0xE0) * 0x9F1; /* 3 bytes */
		if (cp >= 0xD800 && cp <= 0xDFFF)
			cp += 0x800;		/* no surrogates */
		return cp;
	}
	return 0x10000 + (uint32_t) (b - 0xF8) * 0x1F000;	/* 4 bytes */
}

static void
build(Buf *out, const uint8_t *src, size_t n, int mode, bool alphabet, size_t stars)
{
	size_t		i,
				k;

	static char star_run[2048];

	if (star_run[0] != '*')
		memset(star_run, '*', sizeof(star_run));
	for (i = 0; i < n; i++)
	{
		k = stars;
		if (out->len + k > MAX_PATTERN_BYTES)
			k = out->len < MAX_PATTERN_BYTES ? MAX_PATTERN_BYTES - out->len : 0;
		if (k > sizeof(star_run))
			k = sizeof(star_run);
		buf_add(out, star_run, k);
		if (mode == 1)
		{
			if (alphabet)
				buf_add(out, utf8_alphabet[src[i] % ALPHABET_SIZE],
						strlen(utf8_alphabet[src[i] % ALPHABET_SIZE]));
			else
				buf_add_utf8(out, code_point_of(src[i]));
		}
		else if (mode == 3)
		{
			if (alphabet)
				buf_add(out, eucjp_alphabet[src[i] % ALPHABET_SIZE],
						strlen(eucjp_alphabet[src[i] % ALPHABET_SIZE]));
			else
				add_eucjp(out, src[i]);
		}
		else if (alphabet)
			buf_addc(out, byte_alphabet[src[i] % ALPHABET_SIZE]);
		else
			buf_addc(out, (char) src[i]);
	}
}

/* Copies s without repeated stars. */
static void
collapse_stars(Buf *out, const char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		size_t		run = i;

		/* copy up to and including the next star, then skip its run */
		while (run < len && s[run] != '*')
			run++;
		buf_add(out, s + i, run < len ? run - i + 1 : run - i);
		i = run;
		while (i < len && s[i] == '*')
			i++;
	}
}

int
prop_glob(const uint8_t *data, size_t size)
{
	Reader		r = {data, size};
	uint8_t		flags = rd_u8(&r);
	uint8_t		split = rd_u8(&r);
	uint8_t		stretch = rd_u8(&r);
	int			mode = flags & 3;
	bool		alphabet = (flags & 4) != 0;
	size_t		stars = (flags & 8) ? 1 + (size_t) stretch * 8 : 0;
	size_t		pattern_src = r.n * split / 256;
	size_t		subject_src = r.n - pattern_src;
	Buf			pattern,
				subject,
				collapsed;
	DecCharLenFn char_len = mode == 0 ? byte_char_len :
		mode == 3 ? eucjp_char_len : dec_utf8_char_len;
	bool		compare = true;
	bool		got,
				got_collapsed,
				expected;
	size_t		calls,
				prefix,
				i;
	int			failed = 0;

	if (pattern_src > MAX_SOURCE)
		pattern_src = MAX_SOURCE;
	if (subject_src > MAX_SOURCE)
		subject_src = MAX_SOURCE;
	buf_init(&pattern);
	buf_init(&subject);
	buf_init(&collapsed);
	buf_add(&pattern, "", 0);
	buf_add(&subject, "", 0);
	build(&pattern, r.p, pattern_src, mode, alphabet, stars);
	build(&subject, r.p + (r.n - subject_src), subject_src, mode, alphabet, 0);
	collapse_stars(&collapsed, pattern.p, pattern.len);
	buf_add(&collapsed, "", 0);

	counted_inner = char_len;
	counted_calls = 0;
	counted_bad = false;
	got = dec_glob_match(pattern.p, pattern.len, subject.p, subject.len, counted_char_len);
	calls = counted_calls;
	got_collapsed = dec_glob_match(collapsed.p, collapsed.len, subject.p, subject.len,
								   counted_char_len);

	if (mode == 1 || mode == 3)
	{
		uint32_t   *p = malloc(sizeof(uint32_t) * (collapsed.len + 1));
		uint32_t   *s = malloc(sizeof(uint32_t) * (subject.len + 1));
		size_t		pn = mode == 1 ? utf8_decode(collapsed.p, collapsed.len, p) :
			to_symbols(collapsed.p, collapsed.len, char_len, p);
		size_t		sn = mode == 1 ? utf8_decode(subject.p, subject.len, s) :
			to_symbols(subject.p, subject.len, char_len, s);
		bool		by_bytes = ref_glob_bytes(collapsed.p, collapsed.len, subject.p,
											  subject.len, char_len);

		expected = ref_glob_symbols(p, pn, s, sn);
		free(p);
		free(s);
		if (by_bytes != expected)
		{
			fprintf(stderr, "glob: the byte reference (%d) and the character reference (%d) disagree on valid text\n",
					by_bytes, expected);
			failed = 1;
		}
	}
	else
	{
		expected = ref_glob_bytes(collapsed.p, collapsed.len, subject.p, subject.len, char_len);
		if (mode == 2)
			compare = utf8_well_formed(collapsed.p, collapsed.len) &&
				utf8_well_formed(subject.p, subject.len);
	}

	if (compare && got != expected)
	{
		fprintf(stderr, "glob: dec_glob_match says %d, the reference %d (mode %d)\n",
				got, expected, mode);
		failed = 1;
	}
	if (got != got_collapsed)
	{
		fprintf(stderr, "glob: collapsing star runs changed the answer (%d -> %d)\n",
				got, got_collapsed);
		failed = 1;
	}
	if (calls > (collapsed.len + 1) * (subject.len + 1))
	{
		fprintf(stderr, "glob: %zu character steps, more than (%zu + 1) * (%zu + 1)\n",
				calls, collapsed.len, subject.len);
		failed = 1;
	}
	if (counted_bad)
	{
		fprintf(stderr, "glob: a character length outside [1, remaining]\n");
		failed = 1;
	}

	for (prefix = 0; prefix < pattern.len; prefix++)
		if (pattern.p[prefix] == '*' || pattern.p[prefix] == '?')
			break;
	if (dec_glob_literal_prefix(pattern.p, pattern.len) != prefix ||
		dec_is_glob(pattern.p, pattern.len) != (prefix < pattern.len))
	{
		fprintf(stderr, "glob: literal prefix %zu / is_glob %d, expected %zu / %d\n",
				dec_glob_literal_prefix(pattern.p, pattern.len),
				dec_is_glob(pattern.p, pattern.len), prefix, prefix < pattern.len);
		failed = 1;
	}
	if (got && (subject.len < prefix || memcmp(subject.p, pattern.p, prefix) != 0))
	{
		fprintf(stderr, "glob: a match that does not start with the literal prefix\n");
		failed = 1;
	}
	for (i = 1; i <= 4; i++)
	{
		/* dec_utf8_char_len never runs past what remains */
		if (subject.len >= i && dec_utf8_char_len(subject.p + subject.len - i, i) > i)
		{
			fprintf(stderr, "glob: dec_utf8_char_len overruns\n");
			failed = 1;
		}
	}

	if (failed)
	{
		print_bytes("pattern (star runs collapsed)", collapsed.p, collapsed.len, 300);
		fprintf(stderr, "  pattern has %zu bytes before collapsing\n", pattern.len);
		print_bytes("subject", subject.p, subject.len, 300);
	}
	buf_free(&pattern);
	buf_free(&subject);
	buf_free(&collapsed);
	return failed;
}

/*
 * entity_image.c — decide.entities as one position-independent block (see
 * entity_image.h).
 *
 * Layout, offsets from the first byte:
 *   header | entries[n] | slots[mask + 1] | parent refs | strings | attrs
 * An entry names its uid, its parents (a run of parent refs: offset and
 * length of each parent's bytes) and its attributes (8-byte aligned, as a
 * jsonb must be).  Slots are an open-addressing table of entry indexes + 1
 * (0: empty), at most half full, probed linearly from the uid's FNV-1a hash.
 */
#include "entity_image.h"

#include <string.h>

#include "hash.h"

#define IMAGE_MAGIC 0x44454931	/* "DEI1" */
#define MAX_IMAGE_BYTES 0xFFFFFFF0ULL

typedef struct ImageHeader
{
	uint32_t	magic;
	uint32_t	n;
	uint32_t	size;
	uint32_t	mask;
	uint32_t	entries_off;
	uint32_t	slots_off;
} ImageHeader;

typedef struct ImageEntry
{
	uint32_t	uid_off;
	uint32_t	uid_len;
	uint32_t	parents_off;	/* n_parents ImageRef */
	uint32_t	n_parents;
	uint32_t	attrs_off;		/* 0: none */
	uint32_t	attrs_len;
} ImageEntry;

typedef struct ImageRef
{
	uint32_t	off;
	uint32_t	len;
} ImageRef;

static uint64_t
align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t) 7;
}

void *
dec_entity_image_build(const DecEntityRow *rows, uint32_t n, const DecAllocator *allocator,
					   size_t *size)
{
	uint64_t	mask = 1;
	uint64_t	refs = 0;
	uint64_t	strings = 0;
	uint64_t	attrs = 0;
	uint64_t	total;
	uint64_t	refs_off,
				strings_off,
				attrs_off;
	ImageHeader *header;
	ImageEntry *entries;
	uint32_t   *slots;
	ImageRef   *ref;
	char	   *base;
	char	   *string;
	char	   *attr;
	uint32_t	i,
				p;

	while (mask + 1 < (uint64_t) n * 2 || mask + 1 < 16)
		mask = mask * 2 + 1;
	for (i = 0; i < n; i++)
	{
		refs += rows[i].n_parents;
		strings += rows[i].uid.len;
		for (p = 0; p < rows[i].n_parents; p++)
			strings += rows[i].parents[p].len;
		if (rows[i].attrs)
			attrs += align8(rows[i].attrs_len);
	}
	refs_off = align8(sizeof(ImageHeader)) + align8((uint64_t) n * sizeof(ImageEntry)) +
		align8((mask + 1) * sizeof(uint32_t));
	strings_off = refs_off + refs * sizeof(ImageRef);
	attrs_off = align8(strings_off + strings);
	total = attrs_off + attrs;
	if (total > MAX_IMAGE_BYTES)
		return NULL;

	base = allocator->alloc(allocator->state, total);
	memset(base, 0, total);
	header = (ImageHeader *) base;
	header->magic = IMAGE_MAGIC;
	header->n = n;
	header->size = (uint32_t) total;
	header->mask = (uint32_t) mask;
	header->entries_off = (uint32_t) align8(sizeof(ImageHeader));
	header->slots_off = (uint32_t) (header->entries_off + align8((uint64_t) n * sizeof(ImageEntry)));
	entries = (ImageEntry *) (base + header->entries_off);
	slots = (uint32_t *) (base + header->slots_off);
	ref = (ImageRef *) (base + refs_off);
	string = base + strings_off;
	attr = base + attrs_off;

	for (i = 0; i < n; i++)
	{
		const DecEntityRow *row = &rows[i];
		ImageEntry *entry = &entries[i];
		uint64_t	slot = dec_fnv1a(row->uid.ptr, row->uid.len) & mask;

		entry->uid_off = (uint32_t) (string - base);
		entry->uid_len = row->uid.len;
		memcpy(string, row->uid.ptr, row->uid.len);
		string += row->uid.len;
		entry->parents_off = (uint32_t) ((char *) ref - base);
		entry->n_parents = row->n_parents;
		for (p = 0; p < row->n_parents; p++, ref++)
		{
			ref->off = (uint32_t) (string - base);
			ref->len = row->parents[p].len;
			memcpy(string, row->parents[p].ptr, row->parents[p].len);
			string += row->parents[p].len;
		}
		if (row->attrs)
		{
			entry->attrs_off = (uint32_t) (attr - base);
			entry->attrs_len = row->attrs_len;
			memcpy(attr, row->attrs, row->attrs_len);
			attr += align8(row->attrs_len);
		}
		while (slots[slot] != 0)
			slot = (slot + 1) & mask;
		slots[slot] = i + 1;
	}
	*size = (size_t) total;
	return base;
}

bool
dec_entity_image_find(const void *image, const char *uid, uint32_t len, DecEntityView *view)
{
	const char *base = image;
	const ImageHeader *header = image;
	const ImageEntry *entries = (const ImageEntry *) (base + header->entries_off);
	const uint32_t *slots = (const uint32_t *) (base + header->slots_off);
	uint64_t	slot = dec_fnv1a(uid, len) & header->mask;

	for (; slots[slot] != 0; slot = (slot + 1) & header->mask)
	{
		const ImageEntry *entry = &entries[slots[slot] - 1];

		if (entry->uid_len != len || memcmp(base + entry->uid_off, uid, len) != 0)
			continue;
		view->uid.ptr = base + entry->uid_off;
		view->uid.len = entry->uid_len;
		view->n_parents = entry->n_parents;
		view->attrs = entry->attrs_off ? base + entry->attrs_off : NULL;
		view->attrs_len = entry->attrs_len;
		view->index = slots[slot] - 1;
		return true;
	}
	return false;
}

DecStr
dec_entity_image_parent(const void *image, const DecEntityView *view, uint32_t i)
{
	const char *base = image;
	const ImageHeader *header = image;
	const ImageEntry *entry = (const ImageEntry *) (base + header->entries_off) + view->index;
	const ImageRef *ref = (const ImageRef *) (base + entry->parents_off) + i;
	DecStr		parent = {base + ref->off, ref->len};

	return parent;
}

uint32_t
dec_entity_image_count(const void *image)
{
	return ((const ImageHeader *) image)->n;
}

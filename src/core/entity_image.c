/*
 * entity_image.c — decide.entities as one position-independent block (see
 * entity_image.h).
 *
 * Layout, offsets from the first byte:
 *   header | entries[n] | slots[mask + 1] | parent refs | strings | attrs
 * Entries are in uid order.  An entry names its uid, its parents (a run of
 * parent refs: offset and length of each parent's bytes; entities with the
 * same parent list share one run) and its attributes (8-byte aligned, as a
 * jsonb must be; entities with the same attributes share them).  Slots are an open-addressing table, at most half full,
 * probed linearly from the uid's hash: each holds the entry's index + 1 in
 * its low half (0: empty) and the hash's high half in its high half, so a
 * probe reads an entry only when the hashes agree.
 */
#include "entity_image.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "uid.h"

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
	uint32_t	n_attrs;		/* distinct attributes */
} ImageHeader;

typedef struct ImageEntry
{
	uint32_t	uid_off;
	uint32_t	uid_len;
	uint32_t	parents_off;	/* n_parents ImageRef */
	uint32_t	n_parents;
	uint32_t	parents_id;		/* the same for the same parent list */
	uint32_t	attrs_off;		/* 0: none */
	uint32_t	attrs_len;
	uint32_t	attrs_id;		/* 1 + which distinct attributes; 0: none */
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

/*
 * FNV-1a, then mixed (MurmurHash3's finalizer): uids that differ only in
 * their last digits would otherwise fall into runs of neighbouring slots.
 */
static uint64_t
uid_hash(const char *uid, uint32_t len)
{
	uint64_t	h = dec_fnv1a(uid, len);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static int
uid_order(const void *a, const void *b)
{
	const DecEntityRow *x = *(const DecEntityRow *const *) a;
	const DecEntityRow *y = *(const DecEntityRow *const *) b;

	return dec_uid_compare(x->uid.ptr, x->uid.len, y->uid.ptr, y->uid.len);
}

static uint64_t
parents_hash(const DecEntityRow *row)
{
	uint64_t	h = 0x9e3779b97f4a7c15ULL;
	uint32_t	p;

	for (p = 0; p < row->n_parents; p++)
		h = (h ^ dec_fnv1a(row->parents[p].ptr, row->parents[p].len)) * 0x100000001b3ULL + p;
	return h;
}

static bool
same_parents(const DecEntityRow *a, const DecEntityRow *b)
{
	uint32_t	p;

	if (a->n_parents != b->n_parents)
		return false;
	for (p = 0; p < a->n_parents; p++)
		if (a->parents[p].len != b->parents[p].len ||
			memcmp(a->parents[p].ptr, b->parents[p].ptr, a->parents[p].len) != 0)
			return false;
	return true;
}

/* Distinct attributes: the first row that has them, where they are written. */
typedef struct AttrsBlob
{
	const DecEntityRow *row;	/* NULL: empty slot */
	uint32_t	off;
	uint32_t	id;
} AttrsBlob;

/* A distinct parent list: the first row that has it, where it is written. */
typedef struct ParentList
{
	const DecEntityRow *row;	/* NULL: empty slot */
	uint32_t	refs_off;
} ParentList;

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
	const DecEntityRow **order;
	ParentList *lists;
	uint32_t   *list_of;		/* per row in uid order: its slot in lists */
	AttrsBlob  *blobs;
	uint32_t   *blob_of;		/* per row in uid order: its slot in blobs */
	ImageHeader *header;
	ImageEntry *entries;
	uint64_t   *slots;
	ImageRef   *ref;
	char	   *base;
	char	   *string;
	char	   *attr;
	uint32_t	i,
				p;

	while (mask + 1 < (uint64_t) n * 2 || mask + 1 < 16)
		mask = mask * 2 + 1;

	/* uid order, and each distinct parent list once */
	order = allocator->alloc(allocator->state, sizeof(*order) * (n ? n : 1));
	for (i = 0; i < n; i++)
		order[i] = &rows[i];
	qsort(order, n, sizeof(*order), uid_order);
	lists = allocator->alloc(allocator->state, sizeof(ParentList) * (mask + 1));
	memset(lists, 0, sizeof(ParentList) * (mask + 1));
	list_of = allocator->alloc(allocator->state, sizeof(uint32_t) * (n ? n : 1));
	blobs = allocator->alloc(allocator->state, sizeof(AttrsBlob) * (mask + 1));
	memset(blobs, 0, sizeof(AttrsBlob) * (mask + 1));
	blob_of = allocator->alloc(allocator->state, sizeof(uint32_t) * (n ? n : 1));
	for (i = 0; i < n; i++)
	{
		const DecEntityRow *row = order[i];
		uint64_t	slot = parents_hash(row) & mask;

		while (lists[slot].row != NULL && !same_parents(lists[slot].row, row))
			slot = (slot + 1) & mask;
		if (lists[slot].row == NULL)
		{
			lists[slot].row = row;
			refs += row->n_parents;
			for (p = 0; p < row->n_parents; p++)
				strings += row->parents[p].len;
		}
		list_of[i] = (uint32_t) slot;
		strings += row->uid.len;
		if (row->attrs)
		{
			slot = dec_fnv1a(row->attrs, row->attrs_len) & mask;
			while (blobs[slot].row != NULL &&
				   (blobs[slot].row->attrs_len != row->attrs_len ||
					memcmp(blobs[slot].row->attrs, row->attrs, row->attrs_len) != 0))
				slot = (slot + 1) & mask;
			if (blobs[slot].row == NULL)
			{
				blobs[slot].row = row;
				attrs += align8(row->attrs_len);
			}
			blob_of[i] = (uint32_t) slot;
		}
	}
	refs_off = align8(sizeof(ImageHeader)) + align8((uint64_t) n * sizeof(ImageEntry)) +
		align8((mask + 1) * sizeof(uint64_t));
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
	slots = (uint64_t *) (base + header->slots_off);
	ref = (ImageRef *) (base + refs_off);
	string = base + strings_off;
	attr = base + attrs_off;

	for (i = 0; i < n; i++)
	{
		const DecEntityRow *row = order[i];
		ParentList *list = &lists[list_of[i]];
		ImageEntry *entry = &entries[i];
		uint64_t	hash = uid_hash(row->uid.ptr, row->uid.len);
		uint64_t	slot = hash & mask;

		entry->uid_off = (uint32_t) (string - base);
		entry->uid_len = row->uid.len;
		memcpy(string, row->uid.ptr, row->uid.len);
		string += row->uid.len;
		if (list->row == row)
		{
			/* the first of its list: the list is written here */
			list->refs_off = (uint32_t) ((char *) ref - base);
			for (p = 0; p < row->n_parents; p++, ref++)
			{
				ref->off = (uint32_t) (string - base);
				ref->len = row->parents[p].len;
				memcpy(string, row->parents[p].ptr, row->parents[p].len);
				string += row->parents[p].len;
			}
		}
		entry->parents_off = list->refs_off;
		entry->n_parents = row->n_parents;
		entry->parents_id = list_of[i];
		if (row->attrs)
		{
			AttrsBlob  *blob = &blobs[blob_of[i]];

			if (blob->off == 0)
			{
				/* the first with these attributes: they are written here */
				blob->off = (uint32_t) (attr - base);
				blob->id = ++header->n_attrs;
				memcpy(attr, row->attrs, row->attrs_len);
				attr += align8(row->attrs_len);
			}
			entry->attrs_off = blob->off;
			entry->attrs_len = row->attrs_len;
			entry->attrs_id = blob->id;
		}
		while (slots[slot] != 0)
			slot = (slot + 1) & mask;
		slots[slot] = (hash >> 32 << 32) | (i + 1);
	}
	*size = (size_t) total;
	return base;
}

static void
view_of(const char *base, uint32_t index, DecEntityView *view)
{
	const ImageHeader *header = (const ImageHeader *) base;
	const ImageEntry *entry = (const ImageEntry *) (base + header->entries_off) + index;

	view->uid.ptr = base + entry->uid_off;
	view->uid.len = entry->uid_len;
	view->n_parents = entry->n_parents;
	view->attrs = entry->attrs_off ? base + entry->attrs_off : NULL;
	view->attrs_len = entry->attrs_len;
	view->attrs_id = entry->attrs_id;
	view->index = index;
	view->parents_id = entry->parents_id;
}

bool
dec_entity_image_find(const void *image, const char *uid, uint32_t len, DecEntityView *view)
{
	const char *base = image;
	const ImageHeader *header = image;
	const ImageEntry *entries = (const ImageEntry *) (base + header->entries_off);
	const uint64_t *slots = (const uint64_t *) (base + header->slots_off);
	uint64_t	hash = uid_hash(uid, len);
	uint64_t	slot = hash & header->mask;
	uint64_t	taken;

	for (; (taken = slots[slot]) != 0; slot = (slot + 1) & header->mask)
	{
		uint32_t	index = (uint32_t) taken - 1;
		const ImageEntry *entry = &entries[index];

		/* the hash's high half is kept beside the index: most others differ there */
		if (taken >> 32 != hash >> 32 || entry->uid_len != len ||
			memcmp(base + entry->uid_off, uid, len) != 0)
			continue;
		view_of(base, index, view);
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

uint32_t
dec_entity_image_attrs_count(const void *image)
{
	return ((const ImageHeader *) image)->n_attrs;
}

void
dec_entity_image_at(const void *image, uint32_t index, DecEntityView *view)
{
	view_of(image, index, view);
}

uint32_t
dec_entity_image_lower_bound(const void *image, const char *uid, uint32_t len)
{
	const char *base = image;
	const ImageHeader *header = image;
	const ImageEntry *entries = (const ImageEntry *) (base + header->entries_off);
	uint32_t	low = 0;
	uint32_t	high = header->n;

	while (low < high)
	{
		uint32_t	mid = low + (high - low) / 2;
		const ImageEntry *entry = &entries[mid];

		if (dec_uid_compare(base + entry->uid_off, entry->uid_len, uid, len) < 0)
			low = mid + 1;
		else
			high = mid;
	}
	return low;
}

/* The integer a uid's tail writes, if it writes one as int8out does. */
static bool
parse_key(const char *digits, uint32_t len, int64_t *key)
{
	bool		negative = len > 0 && digits[0] == '-';
	uint64_t	magnitude = 0;
	uint32_t	i = negative ? 1 : 0;

	if (len == i || len - i > 19 || (digits[i] == '0' && (len - i > 1 || negative)))
		return false;
	for (; i < len; i++)
	{
		if (digits[i] < '0' || digits[i] > '9')
			return false;
		magnitude = magnitude * 10 + (uint64_t) (digits[i] - '0');
	}
	if (magnitude > (uint64_t) INT64_MAX + (negative ? 1 : 0))
		return false;
	*key = negative ? (int64_t) (0 - magnitude) : (int64_t) magnitude;
	return true;
}

/*
 * The next place from *i on whose uid is the prefix and a key, with the
 * key; false at the end of the prefix's range.
 */
static bool
next_keyed(const void *image, uint32_t *i, const char *prefix, uint32_t prefix_len,
		   int64_t *key)
{
	uint32_t	count = dec_entity_image_count(image);

	for (; *i < count; (*i)++)
	{
		DecEntityView view;

		view_of(image, *i, &view);
		if (view.uid.len < prefix_len || memcmp(view.uid.ptr, prefix, prefix_len) != 0)
			return false;
		if (parse_key(view.uid.ptr + prefix_len, view.uid.len - prefix_len, key))
			return true;
	}
	return false;
}

uint32_t *
dec_entity_image_number_index(const void *image, const char *prefix, uint32_t prefix_len,
							  const DecAllocator *allocator, int64_t *first, uint64_t *n)
{
	uint32_t	start = dec_entity_image_lower_bound(image, prefix, prefix_len);
	uint32_t	i;
	uint64_t	keys = 0;
	int64_t		low = INT64_MAX;
	int64_t		high = INT64_MIN;
	int64_t		key;
	uint64_t	span;
	uint32_t   *places;

	/* Two passes over the prefix's range: its bounds, then the places. */
	for (i = start; next_keyed(image, &i, prefix, prefix_len, &key); i++)
	{
		keys++;
		low = key < low ? key : low;
		high = key > high ? key : high;
	}
	if (keys == 0)
		return NULL;
	span = (uint64_t) high - (uint64_t) low + 1;
	if (span == 0 || span > keys * 4 + 1024 || span > UINT32_MAX)
		return NULL;
	places = allocator->alloc(allocator->state, span * sizeof(uint32_t));
	if (places == NULL)
		return NULL;
	memset(places, 0, span * sizeof(uint32_t));
	for (i = start; next_keyed(image, &i, prefix, prefix_len, &key); i++)
		places[(uint64_t) key - (uint64_t) low] = i + 1;
	*first = low;
	*n = span;
	return places;
}

/*
 * buf.c: output buffers and the scratch arena of the Liquid engine.
 *
 * Out-of-memory aborts (one place: lq_xmalloc); everything else returns
 * errors.  The arena never frees during a render: marks and releases bound
 * its size for loops, arena_reset recycles it between renders.
 */
#include <stdio.h>
#include <stdlib.h>
#include "liquid_int.h"

#define ARENA_CHUNK (64u << 10)
#define ARENA_KEEP (4u << 20) /* bytes kept across renders */

void *lq_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("herald: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *lq_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fputs("herald: out of memory\n", stderr);
		abort();
	}
	return q;
}

char *lq_xstrndup(const char *s, size_t n)
{
	char *p = lq_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void arena_init(struct arena *a)
{
	memset(a, 0, sizeof(*a));
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *c, *next, **pp = &a->head;
	size_t kept = 0;

	/* Keep the first few MiB so steady-state renders never allocate, and
	 * give back what one huge render took. */
	for (c = a->head; c; c = next) {
		next = c->next;
		if (kept + c->size <= ARENA_KEEP) {
			kept += c->size;
			c->used = 0;
			*pp = c;
			pp = &c->next;
		} else {
			free(c);
		}
	}
	*pp = NULL;
	a->cur = a->head;
	a->total = kept;
	a->over = 0;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c, *next;

	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	memset(a, 0, sizeof(*a));
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->cur, *nc;
	size_t sz;

	n = (n + 15) & ~(size_t)15;
	if (c && c->size - c->used >= n)
		goto take;
	/* walk the free chunks after cur (their content is dead) */
	while (c && c->next) {
		c = c->next;
		c->used = 0;
		if (c->size >= n)
			goto take;
	}
	sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;
	nc = lq_xmalloc(sizeof(*nc) + sz);
	nc->size = sz;
	nc->used = 0;
	nc->next = NULL;
	a->total += sz;
	if (a->limit && a->total > a->limit)
		a->over = 1;
	if (c)
		c->next = nc;
	else
		a->head = nc;
	c = nc;
take:
	a->cur = c;
	c->used += n;
	return c->data + c->used - n;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void lq_buf_grow(struct liquid_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;

	while (cap < b->len + need)
		cap *= 2;
	b->data = lq_xrealloc(b->data, cap);
	b->cap = cap;
}

void liquid_buf_init(struct liquid_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void liquid_buf_reset(struct liquid_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

void liquid_buf_free(struct liquid_buf *b)
{
	if (!b)
		return;
	free(b->data);
	if (b->scratch) {
		struct scratch *s = b->scratch;

		arena_free(&s->tmp);
		arena_free(&s->data);
		free(s);
	}
	memset(b, 0, sizeof(*b));
}

int liquid_error_format(const struct liquid_error *err, char *out, size_t size)
{
	return snprintf(out, size, "%s:%d:%d: %s",
			err->filename[0] ? err->filename : "<template>",
			err->line, err->column, err->message);
}

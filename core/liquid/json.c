/*
 * json.c: RFC 8259 JSON text straight into engine values in the render
 * arena (objects as LV_OBJECT, arrays as LV_ARRAY), for liquid_render_json.
 *
 * Why not jansson here: building a json_t tree costs a malloc per node and
 * a hash table per object, which measured at 3/4 of the time of a whole
 * `herald render --each` of an SMS.  Strings without escapes point into the
 * caller's text (borrowed for the render); nothing is ever freed but the
 * arena.  Depth is bounded; errors carry the byte offset.
 *
 * One loop with a local cursor and an explicit stack (members of every
 * open container on one shared stack, copied out when it closes): half
 * the instructions of a recursive descent with a call per value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "liquid_int.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define JSON_MAX_DEPTH 256


/* byte classes for skipping a container: 1 quote, 2 open, 3 close */
static const unsigned char skip_class[256] = {
	['"'] = 1, ['{'] = 2, ['['] = 2, ['}'] = 3, [']'] = 3,
};

/* Skipping is what lazy parsing spends its time on: 16 bytes at a time
 * with SSE2 where the compiler targets it (every x86-64). */

/* past the string starting at P (on its quote), or NULL */
static const char *skip_string(const char *p, const char *e)
{
	p++;
	for (;;) {
#ifdef __SSE2__
		while (e - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
			int m = _mm_movemask_epi8(_mm_or_si128(
				_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
				_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));

			if (m) {
				p += __builtin_ctz((unsigned)m);
				break;
			}
			p += 16;
		}
#endif
		while (p < e && *p != '"' && *p != '\\')
			p++;
		if (p >= e)
			return NULL;
		if (*p == '"')
			return p + 1;
		p += 2; /* backslash escape */
	}
}

/* past the container starting at P, checking only that brackets balance */
static const char *skip_container(const char *p, const char *e)
{
	int depth = 0;

	while (p < e) {
#ifdef __SSE2__
		while (e - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
			__m128i l = _mm_or_si128(v, _mm_set1_epi8(0x20));
			/* '{' '[' -> 0x7B, '}' ']' -> 0x7D once 0x20 is set */
			int m = _mm_movemask_epi8(_mm_or_si128(
				_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
				_mm_or_si128(_mm_cmpeq_epi8(l, _mm_set1_epi8(0x7B)),
					     _mm_cmpeq_epi8(l, _mm_set1_epi8(0x7D)))));

			if (m) {
				p += __builtin_ctz((unsigned)m);
				break;
			}
			p += 16;
		}
		if (p >= e)
			break;
#endif
		switch (skip_class[(unsigned char)*p]) {
		case 1:
			p = skip_string(p, e);
			if (!p)
				return NULL;
			continue;
		case 2:
			depth++;
			break;
		case 3:
			if (--depth == 0)
				return p + 1;
			if (depth < 0)
				return NULL;
			break;
		}
		p++;
	}
	return NULL;
}

static int hex4(const char *p, unsigned *u)
{
	int i;

	*u = 0;
	for (i = 0; i < 4; i++) {
		char c = p[i];

		*u <<= 4;
		if (c >= '0' && c <= '9')
			*u |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*u |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*u |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A string with escapes (ST just past its quote, Q on its first
 * backslash): decoded into the arena (never longer than the source).
 * Returns the end of the string (past its closing quote), or NULL with
 * *ERR_R set (the error is at ST).  Out of line: the no-escape path
 * stays small in the main loop. */
static __attribute__((noinline)) const char *
jstring_esc(struct arena *a, const char *st, const char *q, const char *e,
	    const char **s_r, size_t *n_r, const char **err_r)
{
	const char *end;
	char *o;
	size_t n;

	for (end = q; end < e && *end != '"'; end++)
		if (*end == '\\')
			end++;
	if (end >= e) {
		*err_r = "unterminated string";
		return NULL;
	}
	o = arena_alloc(a, (size_t)(end - st) + 4);
	/* the bytes before Q have no backslash; only a control character
	 * among them is an error */
	for (n = 0; st + n < q; n++) {
		if ((unsigned char)st[n] < 0x20) {
			*err_r = "control character in string";
			return NULL;
		}
		o[n] = st[n];
	}
	for (; *q != '"'; q++) {
		unsigned u, lo;

		if ((unsigned char)*q < 0x20) {
			*err_r = "control character in string";
			return NULL;
		}
		if (*q != '\\') {
			o[n++] = *q;
			continue;
		}
		q++;
		switch (*q) {
		case '"': o[n++] = '"'; break;
		case '\\': o[n++] = '\\'; break;
		case '/': o[n++] = '/'; break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'n': o[n++] = '\n'; break;
		case 'r': o[n++] = '\r'; break;
		case 't': o[n++] = '\t'; break;
		case 'u':
			if (e - q < 5 || hex4(q + 1, &u)) {
				*err_r = "bad \\u escape";
				return NULL;
			}
			q += 4;
			if (u >= 0xD800 && u < 0xDC00 && e - q >= 7 &&
			    q[1] == '\\' && q[2] == 'u' && !hex4(q + 3, &lo) &&
			    lo >= 0xDC00 && lo < 0xE000) {
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				q += 6;
			} else if (u >= 0xD800 && u < 0xE000) {
				u = 0xFFFD;
			}
			n += put_utf8(o + n, u);
			break;
		default:
			*err_r = "bad escape in string";
			return NULL;
		}
	}
	*s_r = o;
	*n_r = n;
	return q + 1;
}

/* ST just past an opening quote: the closing quote or the first
 * backslash, 16 bytes at a time (strings are short: two memchr calls
 * cost more), or E */
static inline const char *jstring_scan(const char *q, const char *e)
{
#ifdef __SSE2__
	while (e - q >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
		int m = _mm_movemask_epi8(_mm_or_si128(
			_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
			_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));

		if (m)
			return q + __builtin_ctz((unsigned)m);
		q += 16;
	}
#endif
	while (q < e && *q != '"' && *q != '\\')
		q++;
	return q;
}

/* the number at P (a '-' or a digit); returns its end, or NULL with
 * *ERR_R set (the error is at P) */
static const char *jnumber(struct arena *a, const char *p, const char *e,
			   struct lv *out, const char **err_r)
{
	const char *st = p;
	int neg = 0, isf = 0, fdigits = 0, hasexp = 0;
	uint64_t x = 0;
	int digits = 0;

	if (p < e && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= e || *p < '0' || *p > '9') {
		*err_r = "bad number";
		return NULL;
	}
	if (*p == '0' && p + 1 < e && p[1] >= '0' && p[1] <= '9') {
		*err_r = "leading zero in number";
		return NULL;
	}
	/* x wraps past 19 digits (unsigned: defined), and is then unused */
	while (p < e && (unsigned char)(*p - '0') < 10) {
		x = x * 10 + (uint64_t)(*p - '0');
		digits++;
		p++;
	}
	if (p < e && *p == '.') {
		isf = 1;
		p++;
		if (p >= e || *p < '0' || *p > '9') {
			*err_r = "bad number";
			return NULL;
		}
		while (p < e && (unsigned char)(*p - '0') < 10) {
			x = x * 10 + (uint64_t)(*p - '0');
			fdigits++;
			p++;
		}
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		isf = 1;
		hasexp = 1;
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9') {
			*err_r = "bad number";
			return NULL;
		}
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (!isf && digits < 19) {
		out->t = LV_INT;
		out->safe = 0;
		out->i = neg ? -(int64_t)x : (int64_t)x;
		return p;
	}
	if (!hasexp && digits + fdigits <= 15) {
		/* Clinger's fast path: both exactly representable, one
		 * correctly rounded division == strtod's result */
		static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6,
					      1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
					      1e13, 1e14, 1e15 };
		double f = (double)x / p10[fdigits];

		out->t = LV_FLOAT;
		out->safe = 0;
		out->f = neg ? -f : f;
		return p;
	}
	{
		char buf[64], *copy = buf;
		size_t n = (size_t)(p - st);
		double f;

		if (n >= sizeof(buf))
			copy = arena_alloc(a, n + 1);
		memcpy(copy, st, n);
		copy[n] = 0;
		if (!isf) {
			/* big integers: int64 when they fit, as jansson */
			char *end;
			long long ll;

			errno = 0;
			ll = strtoll(copy, &end, 10);
			if (!errno) {
				*out = lv_int(ll);
				return p;
			}
		}
		f = strtod(copy, NULL);
		*out = lv_float(f);
		return p;
	}
}

/* arena_alloc's common case inline (nine calls per customer line) */
static inline void *jalloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->cur;

	n = (n + 15) & ~(size_t)15;
	if (c && c->size - c->used >= n) {
		c->used += n;
		return c->data + c->used - n;
	}
	return arena_alloc(a, n);
}

/* members of the open containers, innermost last; entry 0 is the slot of
 * the top-level value.  Grown in the arena (twice the size, copied). */
static __attribute__((noinline)) struct lkv *
stack_grow(struct arena *a, struct lkv *stk, size_t *cap)
{
	struct lkv *n = arena_alloc(a, *cap * 2 * sizeof(*n));

	memcpy(n, stk, *cap * sizeof(*n));
	*cap *= 2;
	return n;
}

/* an open container: where its members start on the member stack */
struct jframe {
	size_t base;
	int obj;
};

/* most calls find no blank or one space: one compare for the first */
#define JSON_WS()                                                            \
	while (p < e && (unsigned char)*p <= ' ' &&                          \
	       (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))        \
		p++

/*
 * The value at S (blanks before it skipped, none after) into *OUT.
 * LAZY: containers below the top one become LV_LAZY.  Returns the end of
 * the value, or NULL with *ERR_R and *ERRP_R (where it failed: what the
 * recursive parser this replaced reported, kept byte for byte).
 */
static const char *json_value(struct arena *a, const char *s, const char *e,
			      int lazy, struct lv *out, const char **err_r,
			      const char **errp_r)
{
	struct lkv loc[64], *stk = loc;
	struct jframe fr[JSON_MAX_DEPTH];
	size_t top = 1, cap = sizeof(loc) / sizeof(loc[0]);
	int depth = 0;
	const char *p = s, *q, *msg;
	struct lv *dst = &stk[0].v;

value:
	JSON_WS();
	if (p >= e) {
		msg = "unexpected end of JSON";
		goto fail;
	}
	switch (*p) {
	case '"':
		q = jstring_scan(p + 1, e);
		if (q >= e) {
			p++;
			msg = "unterminated string";
			goto fail;
		}
		/* field stores, not a struct copy: the copy stalled on store
		 * forwarding and was a quarter of the parser's time */
		dst->t = LV_STR;
		dst->safe = 0;
		if (*q == '"') {
			dst->s.p = p + 1;
			dst->s.n = (size_t)(q - p - 1);
			p = q + 1;
		} else {
			q = jstring_esc(a, p + 1, q, e, &dst->s.p, &dst->s.n,
					&msg);
			if (!q) {
				p++;
				goto fail;
			}
			p = q;
		}
		goto next;
	case '{':
	case '[':
		if (lazy && depth >= 1) {
			struct lazy *z;
			const char *end = skip_container(p, e);

			if (!end) {
				msg = "unbalanced brackets or string";
				goto fail;
			}
			z = arena_alloc(a, sizeof(*z));
			z->p = p;
			z->e = end;
			z->a = a;
			z->state = 0;
			z->mat = lv_nil();
			memset(dst, 0, sizeof(*dst));
			dst->t = LV_LAZY;
			dst->lz = z;
			p = end;
			goto next;
		}
		if (depth >= JSON_MAX_DEPTH) {
			msg = "JSON nested too deeply";
			goto fail;
		}
		fr[depth].base = top;
		fr[depth].obj = *p == '{';
		depth++;
		p++;
		JSON_WS();
		if (fr[depth - 1].obj) {
			if (p < e && *p == '}') {
				p++;
				goto close;
			}
			goto key;
		}
		if (p < e && *p == ']') {
			p++;
			goto close;
		}
		goto element;
	case 't':
		if (e - p >= 4 && !memcmp(p, "true", 4)) {
			p += 4;
			*dst = lv_bool(1);
			goto next;
		}
		break;
	case 'f':
		if (e - p >= 5 && !memcmp(p, "false", 5)) {
			p += 5;
			*dst = lv_bool(0);
			goto next;
		}
		break;
	case 'n':
		if (e - p >= 4 && !memcmp(p, "null", 4)) {
			p += 4;
			*dst = lv_nil();
			goto next;
		}
		break;
	default:
		if (*p == '-' || (*p >= '0' && *p <= '9')) {
			q = jnumber(a, p, e, dst, &msg);
			if (!q)
				goto fail;
			p = q;
			goto next;
		}
	}
	msg = "unexpected character";
	goto fail;

next:
	/* a value is done: what follows it in its container */
	if (depth == 0) {
		*out = stk[0].v;
		return p;
	}
	if (fr[depth - 1].obj) {
		/* ', "' between members, as most encoders write them: the
		 * same steps as below, fewer tests */
		if (e - p >= 3 && p[0] == ',' && p[1] == ' ' && p[2] == '"') {
			p += 2;
			goto key_quote;
		}
		JSON_WS();
		if (p < e && *p == ',') {
			p++;
			goto key;
		}
		if (p < e && *p == '}') {
			p++;
			goto close;
		}
		msg = "expected ',' or '}'";
		goto fail;
	}
	JSON_WS();
	if (p < e && *p == ',') {
		p++;
		goto element;
	}
	if (p < e && *p == ']') {
		p++;
		goto close;
	}
	msg = "expected ',' or ']'";
	goto fail;

element:
	if (top == cap)
		stk = stack_grow(a, stk, &cap);
	dst = &stk[top++].v;
	goto value;

key:
	JSON_WS();
	if (p >= e || *p != '"') {
		msg = "expected a string key";
		goto fail;
	}
key_quote:
	if (top == cap)
		stk = stack_grow(a, stk, &cap);
	q = jstring_scan(p + 1, e);
	if (q >= e) {
		p++;
		msg = "unterminated string";
		goto fail;
	}
	if (*q == '"') {
		stk[top].k = p + 1;
		stk[top].kn = (size_t)(q - p - 1);
		p = q + 1;
	} else {
		q = jstring_esc(a, p + 1, q, e, &stk[top].k, &stk[top].kn,
				&msg);
		if (!q) {
			p++;
			goto fail;
		}
		p = q;
	}
	dst = &stk[top++].v;
	if (e - p >= 2 && p[0] == ':' && p[1] == ' ') {
		p += 2;
		goto value;
	}
	JSON_WS();
	if (p >= e || *p != ':') {
		msg = "expected ':'";
		goto fail;
	}
	p++;
	goto value;

close: {
	/* the innermost container is complete: out of the stack into the
	 * arena, as the value of the entry below its members */
	size_t base = fr[--depth].base, n = top - base;

	dst = &stk[base - 1].v;
	if (fr[depth].obj) {
		struct lobj *o = jalloc(a, sizeof(*o) +
						(n ? n : 1) * sizeof(*o->kv));

		o->kv = (struct lkv *)(o + 1);
		o->n = n;
		memcpy(o->kv, stk + base, n * sizeof(*o->kv));
		memset(dst, 0, sizeof(*dst));
		dst->t = LV_OBJECT;
		dst->o = o;
	} else {
		struct lv *v = jalloc(a, (n ? n : 1) * sizeof(*v));
		size_t i;

		for (i = 0; i < n; i++)
			v[i] = stk[base + i].v;
		memset(dst, 0, sizeof(*dst));
		dst->t = LV_ARRAY;
		dst->a.n = n;
		dst->a.v = v;
	}
	top = base;
	goto next;
}

fail:
	*err_r = msg;
	*errp_r = p;
	return NULL;
}

struct lv lq_force_lazy(const struct lv *v)
{
	struct lazy *z = v->lz;

	if (z->state == 0) {
		const char *err, *errp;
		struct lv m;

		/* one level: its own containers stay lazy */
		if (json_value(z->a, z->p, z->e, 1, &m, &err, &errp)) {
			z->mat = m;
			z->state = 1;
		} else {
			/* malformed inside a value: reads as nil */
			z->state = -1;
			z->mat = lv_nil();
		}
	}
	return z->mat;
}

int lq_json_parse(struct arena *a, const char *s, size_t n, int lazy,
		  struct lv *out, const char **err_r, size_t *off_r)
{
	const char *e = s + n, *p, *errp;

	p = json_value(a, s, e, lazy, out, err_r, &errp);
	if (p) {
		JSON_WS();
		if (p == e)
			return 0;
		*err_r = "trailing characters after JSON value";
		errp = p;
	}
	*off_r = (size_t)(errp - s);
	return -1;
}

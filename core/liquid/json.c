/*
 * json.c: RFC 8259 JSON text straight into engine values in the render
 * arena (objects as LV_OBJECT, arrays as LV_ARRAY), for liquid_render_json.
 *
 * Why not jansson here: building a json_t tree costs a malloc per node and
 * a hash table per object, which measured at 3/4 of the time of a whole
 * `herald render --each` of an SMS.  Strings without escapes point into the
 * caller's text (borrowed for the render); nothing is ever freed but the
 * arena.  Depth is bounded; errors carry the byte offset.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "liquid_int.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define JSON_MAX_DEPTH 256

struct jp {
	struct arena *a;
	const char *s, *p, *e;
	const char *err;
	int depth;
	int lazy;
};

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

/* most calls find no blank or one space: one compare for the first */
static inline void ws(struct jp *j)
{
	const char *p = j->p, *e = j->e;

	while (p < e && (unsigned char)*p <= ' ' &&
	       (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	j->p = p;
}

static int fail(struct jp *j, const char *msg)
{
	if (!j->err)
		j->err = msg;
	return -1;
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

/* a string with escapes (ST just past its quote): decoded into the arena
 * (never longer than the source).  Out of line: jstring's fast path
 * stays small enough to inline. */
static __attribute__((noinline)) int jstring_esc(struct jp *j, const char *st,
						  const char **s_r, size_t *n_r)
{
	const char *q;
	char *o;
	size_t n;

	for (q = st; q < j->e && *q != '"'; q++)
		if (*q == '\\')
			q++;
	if (q >= j->e)
		return fail(j, "unterminated string");
	o = arena_alloc(j->a, (size_t)(q - st) + 4);
	n = 0;
	for (q = st; *q != '"'; q++) {
		unsigned u, lo;

		if ((unsigned char)*q < 0x20)
			return fail(j, "control character in string");
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
			if (j->e - q < 5 || hex4(q + 1, &u))
				return fail(j, "bad \\u escape");
			q += 4;
			if (u >= 0xD800 && u < 0xDC00 && j->e - q >= 7 &&
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
			return fail(j, "bad escape in string");
		}
	}
	*s_r = o;
	*n_r = n;
	j->p = q + 1;
	return 0;
}

/* J->p on the opening quote.  Without escapes the string points into the
 * text (the common case, inlined: 64 strings per customer line). */
static inline int jstring(struct jp *j, const char **s_r, size_t *n_r)
{
	const char *st = j->p + 1, *q = st, *e = j->e;

	j->p = st;
	/* find the closing quote or the first backslash, 16 bytes at a
	 * time: strings are short, two memchr calls cost more */
#ifdef __SSE2__
	while (e - q >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
		int m = _mm_movemask_epi8(_mm_or_si128(
			_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
			_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));

		if (m) {
			q += __builtin_ctz((unsigned)m);
			goto found;
		}
		q += 16;
	}
#endif
	while (q < e && *q != '"' && *q != '\\')
		q++;
	if (q >= e)
		return fail(j, "unterminated string");
#ifdef __SSE2__
found:
#endif
	if (*q == '"') {
		*s_r = st;
		*n_r = (size_t)(q - st);
		j->p = q + 1;
		return 0;
	}
	return jstring_esc(j, st, s_r, n_r);
}

static int jvalue(struct jp *j, struct lv *out);

static int jarray(struct jp *j, struct lv *out)
{
	struct lv tmp[32], *v = tmp;
	size_t n = 0, cap = 32;

	j->p++;
	ws(j);
	if (j->p < j->e && *j->p == ']') {
		j->p++;
		goto done;
	}
	for (;;) {
		if (n == cap) {
			struct lv *nv = arena_alloc(j->a, cap * 2 * sizeof(*nv));

			memcpy(nv, v, n * sizeof(*nv));
			v = nv;
			cap *= 2;
		}
		if (jvalue(j, &v[n]))
			return -1;
		n++;
		ws(j);
		if (j->p < j->e && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->e && *j->p == ']') {
			j->p++;
			break;
		}
		return fail(j, "expected ',' or ']'");
	}
done:
	memset(out, 0, sizeof(*out));
	out->t = LV_ARRAY;
	out->a.n = n;
	out->a.v = arena_alloc(j->a, (n ? n : 1) * sizeof(*v));
	memcpy(out->a.v, v, n * sizeof(*v));
	return 0;
}

static int jobject(struct jp *j, struct lv *out)
{
	struct lkv tmp[32], *kv = tmp;
	size_t n = 0, cap = 32;
	struct lobj *o;

	j->p++;
	ws(j);
	if (j->p < j->e && *j->p == '}') {
		j->p++;
		goto done;
	}
	for (;;) {
		if (n == cap) {
			struct lkv *nk = arena_alloc(j->a, cap * 2 * sizeof(*nk));

			memcpy(nk, kv, n * sizeof(*nk));
			kv = nk;
			cap *= 2;
		}
		ws(j);
		if (j->p >= j->e || *j->p != '"')
			return fail(j, "expected a string key");
		if (jstring(j, &kv[n].k, &kv[n].kn))
			return -1;
		ws(j);
		if (j->p >= j->e || *j->p != ':')
			return fail(j, "expected ':'");
		j->p++;
		if (jvalue(j, &kv[n].v))
			return -1;
		n++;
		ws(j);
		if (j->p < j->e && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->e && *j->p == '}') {
			j->p++;
			break;
		}
		return fail(j, "expected ',' or '}'");
	}
done:
	o = arena_alloc(j->a, sizeof(*o));
	o->n = n;
	o->kv = arena_alloc(j->a, (n ? n : 1) * sizeof(*kv));
	memcpy(o->kv, kv, n * sizeof(*kv));
	memset(out, 0, sizeof(*out));
	out->t = LV_OBJECT;
	out->o = o;
	return 0;
}

static int jnumber(struct jp *j, struct lv *out)
{
	const char *p = j->p, *st = p;
	int neg = 0, isf = 0, fdigits = 0, hasexp = 0;
	uint64_t x = 0;
	int digits = 0;

	if (p < j->e && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= j->e || *p < '0' || *p > '9')
		return fail(j, "bad number");
	if (*p == '0' && p + 1 < j->e && p[1] >= '0' && p[1] <= '9')
		return fail(j, "leading zero in number");
	while (p < j->e && *p >= '0' && *p <= '9') {
		if (digits < 19)
			x = x * 10 + (uint64_t)(*p - '0');
		digits++;
		p++;
	}
	if (p < j->e && *p == '.') {
		isf = 1;
		p++;
		if (p >= j->e || *p < '0' || *p > '9')
			return fail(j, "bad number");
		while (p < j->e && *p >= '0' && *p <= '9') {
			if (digits + fdigits < 19)
				x = x * 10 + (uint64_t)(*p - '0');
			fdigits++;
			p++;
		}
	}
	if (p < j->e && (*p == 'e' || *p == 'E')) {
		isf = 1;
		hasexp = 1;
		p++;
		if (p < j->e && (*p == '+' || *p == '-'))
			p++;
		if (p >= j->e || *p < '0' || *p > '9')
			return fail(j, "bad number");
		while (p < j->e && *p >= '0' && *p <= '9')
			p++;
	}
	j->p = p;
	if (!isf && digits < 19) {
		out->t = LV_INT;
		out->safe = 0;
		out->i = neg ? -(int64_t)x : (int64_t)x;
		return 0;
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
		return 0;
	}
	{
		char buf[64], *copy = buf;
		size_t n = (size_t)(p - st);
		double f;

		if (n >= sizeof(buf))
			copy = arena_alloc(j->a, n + 1);
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
				return 0;
			}
		}
		f = strtod(copy, NULL);
		*out = lv_float(f);
		return 0;
	}
}

static int jvalue(struct jp *j, struct lv *out)
{
	int r;

	ws(j);
	if (j->p >= j->e)
		return fail(j, "unexpected end of JSON");
	switch (*j->p) {
	case '{':
	case '[':
		if (j->lazy && j->depth >= 1) {
			struct lazy *z;
			const char *end = skip_container(j->p, j->e);

			if (!end)
				return fail(j, "unbalanced brackets or string");
			z = arena_alloc(j->a, sizeof(*z));
			z->p = j->p;
			z->e = end;
			z->a = j->a;
			z->state = 0;
			z->mat = lv_nil();
			memset(out, 0, sizeof(*out));
			out->t = LV_LAZY;
			out->lz = z;
			j->p = end;
			return 0;
		}
		if (++j->depth > JSON_MAX_DEPTH)
			return fail(j, "JSON nested too deeply");
		r = *j->p == '{' ? jobject(j, out) : jarray(j, out);
		j->depth--;
		return r;
	case '"': {
		const char *s;
		size_t n;

		if (jstring(j, &s, &n))
			return -1;
		/* field stores, not a struct copy: the copy stalled on store
		 * forwarding and was a quarter of the parser's time */
		out->t = LV_STR;
		out->safe = 0;
		out->s.p = s;
		out->s.n = n;
		return 0;
	}
	case 't':
		if (j->e - j->p >= 4 && !memcmp(j->p, "true", 4)) {
			j->p += 4;
			*out = lv_bool(1);
			return 0;
		}
		break;
	case 'f':
		if (j->e - j->p >= 5 && !memcmp(j->p, "false", 5)) {
			j->p += 5;
			*out = lv_bool(0);
			return 0;
		}
		break;
	case 'n':
		if (j->e - j->p >= 4 && !memcmp(j->p, "null", 4)) {
			j->p += 4;
			*out = lv_nil();
			return 0;
		}
		break;
	default:
		if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
			return jnumber(j, out);
	}
	return fail(j, "unexpected character");
}

struct lv lq_force_lazy(const struct lv *v)
{
	struct lazy *z = v->lz;

	if (z->state == 0) {
		struct jp j = { z->a, z->p, z->p, z->e, NULL, 0, 1 };

		/* one level: its own containers stay lazy */
		if (jvalue(&j, &z->mat) == 0) {
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
	struct jp j = { a, s, s, s + n, NULL, 0, lazy };

	if (jvalue(&j, out) == 0) {
		ws(&j);
		if (j.p == j.e)
			return 0;
		fail(&j, "trailing characters after JSON value");
	}
	*err_r = j.err;
	*off_r = (size_t)(j.p - s);
	return -1;
}

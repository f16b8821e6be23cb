/*
 * filters.c: the standard Liquid filters (Shopify Liquid 5 semantics),
 * plus Herald's json and raw.
 *
 * Filters build their results in the render arena and never keep state;
 * text is UTF-8 and counted in characters, case mapping is ICU's full
 * mapping (ß -> SS, as Ruby does).  A filter reports an error through
 * lq_error at its own position and returns -1.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <ctype.h>
#include <strings.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unicode/ucasemap.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>
#include "liquid_int.h"

#define ARGS struct rstate *st, struct lv *in, struct lv *args, size_t nargs, \
	     struct lv *kwv, const struct kwarg *kw, size_t nkw, struct lv *out
#define UNUSED_KW (void)kwv, (void)kw, (void)nkw
#define A(st) lq_arena(st)
#define FERR(...) lq_error(st, lq_filter_pos(st), __VA_ARGS__)

/* ---- string builder in the arena ---------------------------------------- */

struct sb {
	struct arena *a;
	char *p;
	size_t n, cap;
};

static void sb_init(struct sb *b, struct arena *a, size_t hint)
{
	b->a = a;
	b->n = 0;
	b->cap = hint < 16 ? 16 : hint;
	b->p = arena_alloc(a, b->cap);
}

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->n + n > b->cap) {
		size_t nc = b->cap * 2;
		char *np;

		while (nc < b->n + n)
			nc *= 2;
		np = arena_alloc(b->a, nc);
		memcpy(np, b->p, b->n);
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void sb_adds(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static struct lv sb_lv(struct sb *b)
{
	return lv_str(b->p, b->n);
}

/* ---- conversions -------------------------------------------------------- */

static struct lv S(struct rstate *st, const struct lv *v)
{
	return lv_to_str(A(st), v);
}

/* Ruby Utils.to_number: strings "1.5" -> float, else leading integer. */
static struct lv to_num(const struct lv *v)
{
	char tmp[64], *end;
	size_t n, i;
	const char *p;

	switch (v->t) {
	case LV_INT:
	case LV_FLOAT:
		return *v;
	case LV_STR:
		p = v->s.p;
		n = v->s.n;
		while (n && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (n >= sizeof(tmp))
			n = sizeof(tmp) - 1;
		memcpy(tmp, p, n);
		tmp[n] = 0;
		i = tmp[0] == '-';
		if (isdigit((unsigned char)tmp[i])) {
			while (isdigit((unsigned char)tmp[i]))
				i++;
			if (tmp[i] == '.' && isdigit((unsigned char)tmp[i + 1])) {
				size_t j = i + 1;

				while (isdigit((unsigned char)tmp[j]))
					j++;
				if (!tmp[j])
					return lv_float(strtod(tmp, NULL));
			}
		}
		return lv_int(strtoll(tmp, &end, 10));
	default:
		return lv_int(0);
	}
}

/* Ruby Utils.to_integer: Integer(x.to_s), an error when not an integer */
static int to_integer(struct rstate *st, const struct lv *v, int64_t *r)
{
	char tmp[64], *end;
	size_t n;

	if (v->t == LV_INT) {
		*r = v->i;
		return 0;
	}
	if (v->t == LV_STR) {
		n = v->s.n < sizeof(tmp) - 1 ? v->s.n : sizeof(tmp) - 1;
		memcpy(tmp, v->s.p, n);
		tmp[n] = 0;
		*r = strtoll(tmp, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (end != tmp && !*end)
			return 0;
	}
	return FERR("invalid integer");
}

/* BigDecimal-ish: Ruby Liquid does float arithmetic in decimal */
static double dec_round(double f)
{
	char tmp[40];

	if (!isfinite(f) || (fabs(f) < 1e15 && f == (double)(int64_t)f))
		return f;
	if (fabs(f) > 1e-4 && fabs(f) < 1e9) {
		/* fast path: within 15 significant digits of a number with
		 * few decimals (11364.000000000002 -> 11364) */
		static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
		int k;

		for (k = 0; k <= 6; k++) {
			double x = f * p10[k], r = nearbyint(x);

			if (fabs(x - r) <= fabs(x) * 1e-15)
				return r / p10[k];
		}
	}
	snprintf(tmp, sizeof(tmp), "%.15g", f);
	return strtod(tmp, NULL);
}

static double nf(const struct lv *v)
{
	return v->t == LV_INT ? (double)v->i : v->f;
}

/* InputIterator: arrays flattened, a hash is one item, nil is none */
static void flatten_into(struct rstate *st, const struct lv *v, struct lv **items,
			 size_t *n, size_t *cap, int depth)
{
	size_t i, len;

	if (lv_is_array(v) && depth < 32) {
		len = lv_len(v);
		for (i = 0; i < len && !A(st)->over; i++) {
			struct lv e = lv_at(v, i);

			flatten_into(st, &e, items, n, cap, depth + 1);
		}
		return;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct lv *ni = arena_alloc(A(st), nc * sizeof(*ni));

		if (*n)
			memcpy(ni, *items, *n * sizeof(*ni));
		*items = ni;
		*cap = nc;
	}
	(*items)[(*n)++] = *v;
}

static struct lv to_list(struct rstate *st, const struct lv *v)
{
	struct lv r = { 0 };
	size_t cap = 0;

	r.t = LV_ARRAY;
	r.a.v = NULL;
	r.a.n = 0;
	if (v->t == LV_NIL)
		return r;
	if (v->t == LV_ARRAY) {
		size_t i;

		for (i = 0; i < v->a.n; i++)
			if (lv_is_array(&v->a.v[i]) || v->a.v[i].t == LV_LAZY)
				break;
		if (i == v->a.n)
			return *v;
	}
	flatten_into(st, v, &r.a.v, &r.a.n, &cap, 0);
	return r;
}

static struct lv mk_array(struct rstate *st, size_t n)
{
	struct lv r = { 0 };

	r.t = LV_ARRAY;
	r.a.n = 0;
	r.a.v = arena_alloc(A(st), (n ? n : 1) * sizeof(struct lv));
	return r;
}

static int prop_of(struct rstate *st, const struct lv *item, const struct lv *prop,
		   struct lv *out)
{
	struct lv p = S(st, prop);

	if (lv_is_object(item)) {
		if (!lv_obj_get(item, p.s.p, p.s.n, out))
			*out = lv_nil();
		return 0;
	}
	*out = lv_nil();
	if (item->t == LV_FORLOOP)
		lv_get(A(st), item, p.s.p, p.s.n, out);
	return 0;
}

/* ---- UTF-8 ------------------------------------------------------------- */

size_t lq_utf8_offset(const char *s, size_t n, int64_t chars)
{
	size_t i = 0;

	while (i < n && chars > 0) {
		i++;
		while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		chars--;
	}
	return i;
}

static int is_ascii(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

static pthread_once_t casemap_once = PTHREAD_ONCE_INIT;
static UCaseMap *casemap;

static void casemap_init(void)
{
	UErrorCode ec = U_ZERO_ERROR;

	casemap = ucasemap_open("", 0, &ec);
	if (U_FAILURE(ec))
		casemap = NULL;
}

/* full Unicode case mapping; upper = 1 up, 0 down */
static struct lv case_map(struct rstate *st, struct lv s, int upper)
{
	char *o;
	size_t i;
	int32_t cap, len;
	UErrorCode ec = U_ZERO_ERROR;

	if (is_ascii(s.s.p, s.s.n)) {
		o = arena_alloc(A(st), s.s.n + 1);
		for (i = 0; i < s.s.n; i++)
			o[i] = (char)(upper ? toupper((unsigned char)s.s.p[i])
					    : tolower((unsigned char)s.s.p[i]));
		return lv_str(o, s.s.n);
	}
	pthread_once(&casemap_once, casemap_init);
	if (!casemap || s.s.n > INT32_MAX / 4)
		return s;
	cap = (int32_t)s.s.n * 3 + 4;
	o = arena_alloc(A(st), (size_t)cap);
	len = upper ? ucasemap_utf8ToUpper(casemap, o, cap, s.s.p,
					   (int32_t)s.s.n, &ec)
		    : ucasemap_utf8ToLower(casemap, o, cap, s.s.p,
					   (int32_t)s.s.n, &ec);
	if (U_FAILURE(ec))
		return s;
	return lv_str(o, (size_t)len);
}

/* ---- string filters ----------------------------------------------------- */

static int f_upcase(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	*out = case_map(st, S(st, in), 1);
	return 0;
}

static int f_downcase(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	*out = case_map(st, S(st, in), 0);
	return 0;
}

/* The first character's simple title mapping (é -> É, ǆ -> ǅ), or
 * unchanged when titlecasing does not touch it; 0 when only the full
 * (multi-character) mapping will do.  Avoids a break iterator per call. */
static int fast_title(struct sb *b, const char *p, size_t n)
{
	UChar32 c = 0, t;
	int32_t i = 0;
	char o[4];

	U8_NEXT(p, i, (int32_t)n, c);
	if (c < 0)
		return 0;
	if (!u_hasBinaryProperty(c, UCHAR_CHANGES_WHEN_TITLECASED)) {
		sb_add(b, p, n);
		return 1;
	}
	t = u_totitle(c);
	if (t == c)
		return 0; /* full mapping only (ß, ŉ, ǰ ...) */
	i = 0;
	{
		UBool err = 0;

		U8_APPEND(o, i, 4, t, err);
		if (err)
			return 0;
	}
	sb_add(b, o, (size_t)i);
	return 1;
}

static int f_capitalize(ARGS)
{
	struct lv s = S(st, in), first, rest;
	size_t fl;
	struct sb b;

	UNUSED_KW; (void)args; (void)nargs;
	if (!s.s.n) {
		*out = s;
		return 0;
	}
	fl = lq_utf8_offset(s.s.p, s.s.n, 1);
	rest = case_map(st, lv_str(s.s.p + fl, s.s.n - fl), 0);
	sb_init(&b, A(st), s.s.n + 8);
	if (fl == 1) {
		char c = (char)toupper((unsigned char)s.s.p[0]);

		sb_add(&b, &c, 1);
	} else if (fast_title(&b, s.s.p, fl)) {
		/* done: simple title mapping */
	} else {
		/* full title case of the first character (ß -> Ss) */
		UChar u16[4], t16[8];
		char t8[32];
		int32_t ul = 0, tl, t8l = 0;
		UErrorCode ec = U_ZERO_ERROR;

		u_strFromUTF8(u16, 4, &ul, s.s.p, (int32_t)fl, &ec);
		if (U_SUCCESS(ec))
			tl = u_strToTitle(t16, 8, u16, ul, NULL, "", &ec);
		else
			tl = 0;
		if (U_SUCCESS(ec))
			u_strToUTF8(t8, sizeof(t8), &t8l, t16, tl, &ec);
		if (U_FAILURE(ec)) {
			first = case_map(st, lv_str(s.s.p, fl), 1);
			sb_add(&b, first.s.p, first.s.n);
		} else {
			sb_add(&b, t8, (size_t)t8l);
		}
	}
	sb_add(&b, rest.s.p, rest.s.n);
	*out = sb_lv(&b);
	return 0;
}

static int f_append(ARGS)
{
	struct lv a = S(st, in), c = S(st, &args[0]);
	struct sb b;

	UNUSED_KW; (void)nargs;
	sb_init(&b, A(st), a.s.n + c.s.n);
	sb_add(&b, a.s.p, a.s.n);
	sb_add(&b, c.s.p, c.s.n);
	*out = sb_lv(&b);
	return 0;
}

static int f_prepend(ARGS)
{
	struct lv a = S(st, in), c = S(st, &args[0]);
	struct sb b;

	UNUSED_KW; (void)nargs;
	sb_init(&b, A(st), a.s.n + c.s.n);
	sb_add(&b, c.s.p, c.s.n);
	sb_add(&b, a.s.p, a.s.n);
	*out = sb_lv(&b);
	return 0;
}

static int is_space_byte(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v' || c == 0;
}

static int strip_common(struct rstate *st, struct lv *in, struct lv *out,
			int left, int right)
{
	struct lv s = S(st, in);
	const char *p = s.s.p;
	size_t n = s.s.n;

	while (left && n && is_space_byte(*p)) {
		p++;
		n--;
	}
	while (right && n && is_space_byte(p[n - 1]))
		n--;
	*out = lv_str(p, n);
	return 0;
}

static int f_strip(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	return strip_common(st, in, out, 1, 1);
}

static int f_lstrip(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	return strip_common(st, in, out, 1, 0);
}

static int f_rstrip(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	return strip_common(st, in, out, 0, 1);
}

static int f_strip_newlines(ARGS)
{
	struct lv s = S(st, in);
	struct sb b;
	size_t i;

	UNUSED_KW; (void)args; (void)nargs;
	sb_init(&b, A(st), s.s.n);
	for (i = 0; i < s.s.n; i++) {
		if (s.s.p[i] == '\n')
			continue;
		if (s.s.p[i] == '\r' && i + 1 < s.s.n && s.s.p[i + 1] == '\n')
			continue;
		sb_add(&b, s.s.p + i, 1);
	}
	*out = sb_lv(&b);
	return 0;
}

static int f_newline_to_br(ARGS)
{
	struct lv s = S(st, in);
	struct sb b;
	size_t i;

	UNUSED_KW; (void)args; (void)nargs;
	sb_init(&b, A(st), s.s.n + 16);
	for (i = 0; i < s.s.n; i++) {
		if (s.s.p[i] == '\r' && i + 1 < s.s.n && s.s.p[i + 1] == '\n')
			continue;
		if (s.s.p[i] == '\n')
			sb_adds(&b, "<br />\n");
		else
			sb_add(&b, s.s.p + i, 1);
	}
	*out = sb_lv(&b);
	return 0;
}

static void escape_into(struct sb *b, const char *s, size_t n, int once)
{
	size_t i;

	for (i = 0; i < n; i++) {
		switch (s[i]) {
		case '&':
			if (once) {
				/* keep an existing entity: &name; or &#123; */
				size_t j = i + 1;

				if (j < n && s[j] == '#') {
					j++;
					while (j < n && isdigit((unsigned char)s[j]))
						j++;
					if (j > i + 2 && j < n && s[j] == ';') {
						sb_add(b, "&", 1);
						break;
					}
				} else {
					while (j < n && isalpha((unsigned char)s[j]))
						j++;
					if (j > i + 1 && j < n && s[j] == ';') {
						sb_add(b, "&", 1);
						break;
					}
				}
			}
			sb_adds(b, "&amp;");
			break;
		case '<': sb_adds(b, "&lt;"); break;
		case '>': sb_adds(b, "&gt;"); break;
		case '"': sb_adds(b, "&quot;"); break;
		case '\'': sb_adds(b, "&#39;"); break;
		default: sb_add(b, s + i, 1);
		}
	}
}

static int f_escape(ARGS)
{
	struct lv s;
	struct sb b;

	UNUSED_KW; (void)args; (void)nargs;
	if (in->t == LV_NIL) {
		*out = *in;
		return 0;
	}
	s = S(st, in);
	sb_init(&b, A(st), s.s.n + 16);
	escape_into(&b, s.s.p, s.s.n, 0);
	*out = sb_lv(&b);
	return 0;
}

static int f_escape_once(ARGS)
{
	struct lv s = S(st, in);
	struct sb b;

	UNUSED_KW; (void)args; (void)nargs;
	sb_init(&b, A(st), s.s.n + 16);
	escape_into(&b, s.s.p, s.s.n, 1);
	*out = sb_lv(&b);
	return 0;
}

static const char *memmem_ci(const char *h, size_t hn, const char *nd)
{
	size_t l = strlen(nd), i;

	for (i = 0; i + l <= hn; i++)
		if (!strncasecmp(h + i, nd, l))
			return h + i;
	return NULL;
}

static int f_strip_html(ARGS)
{
	struct lv s = S(st, in);
	struct sb b;
	const char *p = s.s.p, *e = s.s.p + s.s.n;

	UNUSED_KW; (void)args; (void)nargs;
	sb_init(&b, A(st), s.s.n);
	while (p < e) {
		const char *q;

		if (*p != '<') {
			sb_add(&b, p++, 1);
			continue;
		}
		if ((size_t)(e - p) >= 7 && !strncasecmp(p, "<script", 7) &&
		    (q = memmem_ci(p, (size_t)(e - p), "</script>"))) {
			p = q + 9;
			continue;
		}
		if ((size_t)(e - p) >= 6 && !strncasecmp(p, "<style", 6) &&
		    (q = memmem_ci(p, (size_t)(e - p), "</style>"))) {
			p = q + 8;
			continue;
		}
		if ((size_t)(e - p) >= 4 && !memcmp(p, "<!--", 4) &&
		    (q = memmem(p + 4, (size_t)(e - p - 4), "-->", 3))) {
			p = q + 3;
			continue;
		}
		q = memchr(p, '>', (size_t)(e - p));
		if (!q) {
			sb_add(&b, p, (size_t)(e - p));
			break;
		}
		p = q + 1;
	}
	*out = sb_lv(&b);
	return 0;
}

/* replace/remove: mode 0 all, 1 first, 2 last */
static int replace_common(struct rstate *st, struct lv *in, struct lv pat,
			  struct lv rep, int mode, struct lv *out)
{
	struct lv s = S(st, in);
	struct sb b;
	const char *p = s.s.p, *e = s.s.p + s.s.n, *q, *last = NULL;

	pat = S(st, &pat);
	rep = S(st, &rep);
	sb_init(&b, A(st), s.s.n + rep.s.n);
	if (pat.s.n == 0) {
		if (mode == 1) {
			sb_add(&b, rep.s.p, rep.s.n);
			sb_add(&b, s.s.p, s.s.n);
		} else if (mode == 2) {
			sb_add(&b, s.s.p, s.s.n);
			sb_add(&b, rep.s.p, rep.s.n);
		} else {
			/* Ruby gsub("") inserts at every character boundary */
			size_t i = 0, nx;

			sb_add(&b, rep.s.p, rep.s.n);
			while (i < s.s.n) {
				nx = i + lq_utf8_offset(s.s.p + i, s.s.n - i, 1);
				sb_add(&b, s.s.p + i, nx - i);
				sb_add(&b, rep.s.p, rep.s.n);
				i = nx;
			}
		}
		*out = sb_lv(&b);
		return 0;
	}
	if (mode == 2) {
		for (q = p; (q = memmem(q, (size_t)(e - q), pat.s.p, pat.s.n));
		     q++)
			last = q;
		if (!last) {
			*out = s;
			return 0;
		}
		sb_add(&b, p, (size_t)(last - p));
		sb_add(&b, rep.s.p, rep.s.n);
		sb_add(&b, last + pat.s.n, (size_t)(e - last - pat.s.n));
		*out = sb_lv(&b);
		return 0;
	}
	while ((q = memmem(p, (size_t)(e - p), pat.s.p, pat.s.n))) {
		sb_add(&b, p, (size_t)(q - p));
		sb_add(&b, rep.s.p, rep.s.n);
		p = q + pat.s.n;
		if (mode == 1)
			break;
	}
	sb_add(&b, p, (size_t)(e - p));
	*out = sb_lv(&b);
	return 0;
}

static int f_replace(ARGS)
{
	UNUSED_KW;
	return replace_common(st, in, args[0], nargs > 1 ? args[1] : lv_nil(),
			      0, out);
}

static int f_replace_first(ARGS)
{
	UNUSED_KW;
	return replace_common(st, in, args[0], nargs > 1 ? args[1] : lv_nil(),
			      1, out);
}

static int f_replace_last(ARGS)
{
	UNUSED_KW; (void)nargs;
	return replace_common(st, in, args[0], args[1], 2, out);
}

static int f_remove(ARGS)
{
	UNUSED_KW; (void)nargs;
	return replace_common(st, in, args[0], lv_str("", 0), 0, out);
}

static int f_remove_first(ARGS)
{
	UNUSED_KW; (void)nargs;
	return replace_common(st, in, args[0], lv_str("", 0), 1, out);
}

static int f_remove_last(ARGS)
{
	UNUSED_KW; (void)nargs;
	return replace_common(st, in, args[0], lv_str("", 0), 2, out);
}

static int f_truncate(ARGS)
{
	struct lv s, ell = lv_str("...", 3);
	int64_t len = 50, l;
	size_t chars, cut;
	struct sb b;

	UNUSED_KW;
	if (in->t == LV_NIL) {
		*out = *in;
		return 0;
	}
	s = S(st, in);
	if (nargs > 0 && to_integer(st, &args[0], &len))
		return -1;
	if (nargs > 1)
		ell = S(st, &args[1]);
	chars = lq_utf8_len(s.s.p, s.s.n);
	if ((int64_t)chars <= len) {
		*out = s;
		return 0;
	}
	l = len - (int64_t)lq_utf8_len(ell.s.p, ell.s.n);
	if (l < 0)
		l = 0;
	cut = lq_utf8_offset(s.s.p, s.s.n, l);
	sb_init(&b, A(st), cut + ell.s.n);
	sb_add(&b, s.s.p, cut);
	sb_add(&b, ell.s.p, ell.s.n);
	*out = sb_lv(&b);
	return 0;
}

static int f_truncatewords(ARGS)
{
	struct lv s, ell = lv_str("...", 3);
	int64_t words = 15, count = 0;
	const char *p, *e;
	struct sb b;

	UNUSED_KW;
	if (in->t == LV_NIL) {
		*out = *in;
		return 0;
	}
	s = S(st, in);
	if (nargs > 0 && to_integer(st, &args[0], &words))
		return -1;
	if (nargs > 1)
		ell = S(st, &args[1]);
	if (words <= 0)
		words = 1;
	p = s.s.p;
	e = p + s.s.n;
	sb_init(&b, A(st), s.s.n);
	while (p < e) {
		const char *w;

		while (p < e && is_space_byte(*p) && *p)
			p++;
		if (p >= e)
			break;
		w = p;
		while (p < e && !(is_space_byte(*p) && *p))
			p++;
		if (count == words) {
			/* more words than allowed */
			sb_add(&b, ell.s.p, ell.s.n);
			*out = sb_lv(&b);
			return 0;
		}
		if (count)
			sb_add(&b, " ", 1);
		sb_add(&b, w, (size_t)(p - w));
		count++;
	}
	*out = s;
	return 0;
}

static int f_split(ARGS)
{
	struct lv s = S(st, in), pat = S(st, &args[0]), r;
	const char *p = s.s.p, *e = s.s.p + s.s.n, *q;
	size_t cap = 16;

	UNUSED_KW; (void)nargs;
	r = mk_array(st, cap);
#define PUSH(ptr, len)                                                      \
	do {                                                                \
		if (r.a.n == cap) {                                         \
			struct lv *nv = arena_alloc(A(st), cap * 2 * sizeof(*nv)); \
			memcpy(nv, r.a.v, cap * sizeof(*nv));               \
			r.a.v = nv;                                         \
			cap *= 2;                                           \
		}                                                           \
		r.a.v[r.a.n++] = lv_str((ptr), (len));                      \
	} while (0)
	if (pat.s.n == 1 && pat.s.p[0] == ' ') {
		/* awk-style: runs of whitespace, no empty fields */
		while (p < e) {
			const char *w;

			while (p < e && is_space_byte(*p) && *p)
				p++;
			if (p >= e)
				break;
			w = p;
			while (p < e && !(is_space_byte(*p) && *p))
				p++;
			PUSH(w, (size_t)(p - w));
		}
	} else if (pat.s.n == 0) {
		while (p < e) {
			size_t l = lq_utf8_offset(p, (size_t)(e - p), 1);

			PUSH(p, l);
			p += l;
		}
	} else if (s.s.n) {
		for (;;) {
			q = memmem(p, (size_t)(e - p), pat.s.p, pat.s.n);
			if (!q) {
				PUSH(p, (size_t)(e - p));
				break;
			}
			PUSH(p, (size_t)(q - p));
			p = q + pat.s.n;
		}
		/* Ruby drops trailing empty fields */
		while (r.a.n && r.a.v[r.a.n - 1].s.n == 0)
			r.a.n--;
	}
#undef PUSH
	*out = r;
	return 0;
}

static int f_size(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs; (void)st;
	if (in->t == LV_STR)
		*out = lv_int((int64_t)lq_utf8_len(in->s.p, in->s.n));
	else if (lv_is_array(in) || lv_is_object(in))
		*out = lv_int((int64_t)lv_len(in));
	else
		*out = lv_int(0);
	return 0;
}

static int f_slice(ARGS)
{
	int64_t off, len = 1, n;

	UNUSED_KW;
	if (to_integer(st, &args[0], &off))
		return -1;
	if (nargs > 1 && args[1].t != LV_NIL && to_integer(st, &args[1], &len))
		return -1;
	if (lv_is_array(in)) {
		struct lv r;
		int64_t i;

		n = (int64_t)lv_len(in);
		if (off < 0)
			off += n;
		r = mk_array(st, 0);
		if (off < 0 || off > n || len < 0) {
			*out = r;
			return 0;
		}
		if (off + len > n)
			len = n - off;
		r = mk_array(st, (size_t)len);
		for (i = 0; i < len; i++)
			r.a.v[r.a.n++] = lv_at(in, (size_t)(off + i));
		*out = r;
		return 0;
	} else {
		struct lv s = S(st, in);
		size_t b0, b1;

		n = (int64_t)lq_utf8_len(s.s.p, s.s.n);
		if (off < 0)
			off += n;
		if (off < 0 || off > n || len < 0) {
			*out = lv_str("", 0);
			return 0;
		}
		if (off + len > n)
			len = n - off;
		b0 = lq_utf8_offset(s.s.p, s.s.n, off);
		b1 = b0 + lq_utf8_offset(s.s.p + b0, s.s.n - b0, len);
		*out = lv_str(s.s.p + b0, b1 - b0);
		return 0;
	}
}

static int f_url_encode(ARGS)
{
	static const char hex[] = "0123456789ABCDEF";
	struct lv s;
	struct sb b;
	size_t i;

	UNUSED_KW; (void)args; (void)nargs;
	if (in->t == LV_NIL) {
		*out = *in;
		return 0;
	}
	s = S(st, in);
	sb_init(&b, A(st), s.s.n * 3);
	for (i = 0; i < s.s.n; i++) {
		unsigned char c = (unsigned char)s.s.p[i];

		if (isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~') {
			sb_add(&b, (const char *)&c, 1);
		} else if (c == ' ') {
			sb_add(&b, "+", 1);
		} else {
			char t[3] = { '%', hex[c >> 4], hex[c & 15] };

			sb_add(&b, t, 3);
		}
	}
	*out = sb_lv(&b);
	return 0;
}

static int hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int f_url_decode(ARGS)
{
	struct lv s;
	struct sb b;
	size_t i;

	UNUSED_KW; (void)args; (void)nargs;
	if (in->t == LV_NIL) {
		*out = *in;
		return 0;
	}
	s = S(st, in);
	sb_init(&b, A(st), s.s.n);
	for (i = 0; i < s.s.n; i++) {
		char c = s.s.p[i];

		if (c == '+') {
			sb_add(&b, " ", 1);
		} else if (c == '%' && i + 2 < s.s.n &&
			   hexv(s.s.p[i + 1]) >= 0 && hexv(s.s.p[i + 2]) >= 0) {
			char d = (char)(hexv(s.s.p[i + 1]) * 16 + hexv(s.s.p[i + 2]));

			sb_add(&b, &d, 1);
			i += 2;
		} else {
			sb_add(&b, &c, 1);
		}
	}
	*out = sb_lv(&b);
	return 0;
}

static const char b64std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static struct lv b64enc(struct rstate *st, struct lv s, const char *tab)
{
	struct sb b;
	size_t i;
	const unsigned char *p = (const unsigned char *)s.s.p;

	sb_init(&b, A(st), s.s.n * 4 / 3 + 4);
	for (i = 0; i + 2 < s.s.n; i += 3) {
		char t[4] = { tab[p[i] >> 2], tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			      tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)],
			      tab[p[i + 2] & 63] };
		sb_add(&b, t, 4);
	}
	if (s.s.n - i == 1) {
		char t[4] = { tab[p[i] >> 2], tab[(p[i] & 3) << 4], '=', '=' };
		sb_add(&b, t, 4);
	} else if (s.s.n - i == 2) {
		char t[4] = { tab[p[i] >> 2], tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			      tab[(p[i + 1] & 15) << 2], '=' };
		sb_add(&b, t, 4);
	}
	return sb_lv(&b);
}

static int b64dec(struct rstate *st, struct lv s, const char *tab, int strict,
		  struct lv *out)
{
	struct sb b;
	size_t i, n = s.s.n, pad = 0;
	unsigned acc = 0;
	int bits = 0;

	while (n && s.s.p[n - 1] == '=') {
		n--;
		pad++;
	}
	if (pad > 2 || (strict && (n + pad) % 4))
		return FERR("invalid base64");
	if (!strict && (n % 4) == 1)
		return FERR("invalid base64");
	sb_init(&b, A(st), n);
	for (i = 0; i < n; i++) {
		const char *q = s.s.p[i] ? strchr(tab, s.s.p[i]) : NULL;

		if (!q)
			return FERR("invalid base64");
		acc = (acc << 6) | (unsigned)(q - tab);
		bits += 6;
		if (bits >= 8) {
			char c = (char)((acc >> (bits - 8)) & 0xFF);

			sb_add(&b, &c, 1);
			bits -= 8;
		}
	}
	*out = sb_lv(&b);
	return 0;
}

static int f_base64_encode(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	*out = b64enc(st, S(st, in), b64std);
	return 0;
}

static int f_base64_decode(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	return b64dec(st, S(st, in), b64std, 1, out);
}

static int f_base64_url_safe_encode(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	*out = b64enc(st, S(st, in), b64url);
	return 0;
}

static int f_base64_url_safe_decode(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	return b64dec(st, S(st, in), b64url, 0, out);
}

/* ---- math --------------------------------------------------------------- */

static int arith(struct rstate *st, struct lv *in, struct lv *arg, int op,
		 struct lv *out)
{
	struct lv a = to_num(in), b = to_num(arg);

	if (a.t == LV_INT && b.t == LV_INT) {
		int64_t x = a.i, y = b.i, r;

		switch (op) {
		case '+':
			if (__builtin_add_overflow(x, y, &r))
				goto flt;
			break;
		case '-':
			if (__builtin_sub_overflow(x, y, &r))
				goto flt;
			break;
		case '*':
			if (__builtin_mul_overflow(x, y, &r))
				goto flt;
			break;
		case '/':
			if (y == 0)
				return FERR("divided by 0");
			if (x == INT64_MIN && y == -1)
				goto flt;
			r = x / y;
			if ((x % y != 0) && ((x < 0) != (y < 0)))
				r--; /* Ruby floors */
			break;
		default: /* % */
			if (y == 0)
				return FERR("divided by 0");
			if (y == -1) {
				r = 0;
				break;
			}
			r = x % y;
			if (r != 0 && ((r < 0) != (y < 0)))
				r += y;
			break;
		}
		*out = lv_int(r);
		return 0;
	}
flt:
	{
		double x = nf(&a), y = nf(&b), r;

		switch (op) {
		case '+': r = dec_round(x + y); break;
		case '-': r = dec_round(x - y); break;
		case '*': r = dec_round(x * y); break;
		case '/':
			if (y == 0)
				return FERR("divided by 0");
			r = x / y;
			break;
		default:
			if (y == 0)
				return FERR("divided by 0");
			r = fmod(x, y);
			if (r != 0 && ((r < 0) != (y < 0)))
				r += y;
			r = dec_round(r);
			break;
		}
		*out = lv_float(r);
		return 0;
	}
}

static int f_plus(ARGS)
{
	UNUSED_KW; (void)nargs;
	return arith(st, in, &args[0], '+', out);
}

static int f_minus(ARGS)
{
	UNUSED_KW; (void)nargs;
	return arith(st, in, &args[0], '-', out);
}

static int f_times(ARGS)
{
	UNUSED_KW; (void)nargs;
	return arith(st, in, &args[0], '*', out);
}

static int f_divided_by(ARGS)
{
	UNUSED_KW; (void)nargs;
	return arith(st, in, &args[0], '/', out);
}

static int f_modulo(ARGS)
{
	UNUSED_KW; (void)nargs;
	return arith(st, in, &args[0], '%', out);
}

static int f_abs(ARGS)
{
	struct lv a = to_num(in);

	UNUSED_KW; (void)args; (void)nargs; (void)st;
	if (a.t == LV_INT)
		*out = lv_int(a.i < 0 && a.i != INT64_MIN ? -a.i : a.i);
	else
		*out = lv_float(fabs(a.f));
	return 0;
}

static int round_common(struct rstate *st, struct lv *in, int mode,
			struct lv *out)
{
	struct lv a = to_num(in);
	double f;

	(void)st;
	if (a.t == LV_INT) {
		*out = a;
		return 0;
	}
	f = mode < 0 ? floor(a.f) : mode > 0 ? ceil(a.f) : round(a.f);
	if (!isfinite(f) || fabs(f) >= 9.2e18) {
		*out = lv_float(f);
		return 0;
	}
	*out = lv_int((int64_t)f);
	return 0;
}

static int f_ceil(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	return round_common(st, in, 1, out);
}

static int f_floor(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs;
	return round_common(st, in, -1, out);
}

static int f_round(ARGS)
{
	struct lv a = to_num(in), d;
	int64_t nd = 0;

	UNUSED_KW;
	if (nargs > 0) {
		d = to_num(&args[0]);
		nd = d.t == LV_INT ? d.i : lq_f2i(d.f);
	}
	if (nd <= 0 && a.t == LV_INT) {
		if (nd < 0 && nd > -19) {
			int64_t p = 1, k;

			for (k = 0; k < -nd; k++)
				p *= 10;
			int64_t q = (int64_t)llround((double)a.i / (double)p), x;

			if (!__builtin_mul_overflow(q, p, &x))
				a.i = x;
		}
		*out = a;
		return 0;
	}
	if (a.t == LV_INT) {
		*out = a;
		return 0;
	}
	if (nd == 0)
		return round_common(st, &a, 0, out);
	{
		double f;

		if (nd > 15)
			nd = 15;
		if (nd < 0) {
			double p = pow(10, (double)-nd);

			*out = lv_int(lq_f2i(round(a.f / p) * p));
			return 0;
		}
		/* half away from zero, on the decimal value (dec_round
		 * first so that 2.675 rounds like BigDecimal would) */
		{
			static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5,
						      1e6, 1e7, 1e8, 1e9, 1e10,
						      1e11, 1e12, 1e13, 1e14,
						      1e15 };

			f = round(dec_round(a.f * p10[nd])) / p10[nd];
		}
		*out = lv_float(dec_round(f));
		return 0;
	}
}

static int minmax(struct rstate *st, struct lv *in, struct lv *arg, int max,
		  struct lv *out)
{
	struct lv a = to_num(in), b = to_num(arg);
	int a_wins;

	(void)st;
	a_wins = max ? nf(&a) >= nf(&b) : nf(&a) <= nf(&b);
	*out = a_wins ? a : b;
	return 0;
}

static int f_at_least(ARGS)
{
	UNUSED_KW; (void)nargs;
	return minmax(st, in, &args[0], 1, out);
}

static int f_at_most(ARGS)
{
	UNUSED_KW; (void)nargs;
	return minmax(st, in, &args[0], 0, out);
}

/* ---- arrays ------------------------------------------------------------- */

static int f_join(ARGS)
{
	struct lv l = to_list(st, in), sep = lv_str(" ", 1);
	struct sb b;
	size_t i;

	UNUSED_KW;
	if (nargs > 0)
		sep = S(st, &args[0]);
	sb_init(&b, A(st), 64);
	for (i = 0; i < l.a.n; i++) {
		struct lv e = S(st, &l.a.v[i]);

		if (i)
			sb_add(&b, sep.s.p, sep.s.n);
		sb_add(&b, e.s.p, e.s.n);
	}
	*out = sb_lv(&b);
	return 0;
}

static int f_first(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs; (void)st;
	if (lv_is_array(in))
		*out = lv_len(in) ? lv_at(in, 0) : lv_nil();
	else if (lv_is_object(in))
		*out = lv_first_pair(A(st), in);
	else if (in->t == LV_STR && in->s.n)
		*out = lv_str(in->s.p, lq_utf8_offset(in->s.p, in->s.n, 1));
	else
		*out = lv_nil();
	return 0;
}

static int f_last(ARGS)
{
	size_t n;

	UNUSED_KW; (void)args; (void)nargs; (void)st;
	if (lv_is_array(in)) {
		n = lv_len(in);
		*out = n ? lv_at(in, n - 1) : lv_nil();
	} else if (in->t == LV_STR && in->s.n) {
		const char *p = in->s.p + in->s.n - 1;

		while (p > in->s.p && ((unsigned char)*p & 0xC0) == 0x80)
			p--;
		*out = lv_str(p, (size_t)(in->s.p + in->s.n - p));
	} else {
		*out = lv_nil();
	}
	return 0;
}

static int f_reverse(ARGS)
{
	struct lv l = to_list(st, in), r;
	size_t i;

	UNUSED_KW; (void)args; (void)nargs;
	r = mk_array(st, l.a.n);
	for (i = 0; i < l.a.n; i++)
		r.a.v[r.a.n++] = l.a.v[l.a.n - 1 - i];
	*out = r;
	return 0;
}

static int f_concat(ARGS)
{
	struct lv a, b, r;
	size_t i;

	UNUSED_KW; (void)nargs;
	if (!lv_is_array(&args[0]))
		return FERR("concat filter requires an array argument");
	a = to_list(st, in);
	b = to_list(st, &args[0]);
	r = mk_array(st, a.a.n + b.a.n);
	for (i = 0; i < a.a.n; i++)
		r.a.v[r.a.n++] = a.a.v[i];
	for (i = 0; i < b.a.n; i++)
		r.a.v[r.a.n++] = b.a.v[i];
	*out = r;
	return 0;
}

static int f_map(ARGS)
{
	struct lv l = to_list(st, in), r;
	size_t i;

	UNUSED_KW; (void)nargs;
	r = mk_array(st, l.a.n);
	for (i = 0; i < l.a.n; i++) {
		struct lv e = l.a.v[i], v;

		if (!lv_is_object(&e) && e.t != LV_FORLOOP && e.t != LV_NIL &&
		    e.t != LV_STR)
			return FERR("cannot select the property '%.*s'",
				    (int)S(st, &args[0]).s.n,
				    S(st, &args[0]).s.p);
		prop_of(st, &e, &args[0], &v);
		r.a.v[r.a.n++] = v;
	}
	*out = to_list(st, &r);
	return 0;
}

static int f_compact(ARGS)
{
	struct lv l = to_list(st, in), r;
	size_t i;

	UNUSED_KW;
	r = mk_array(st, l.a.n);
	for (i = 0; i < l.a.n; i++) {
		struct lv v = l.a.v[i];

		if (nargs > 0)
			prop_of(st, &l.a.v[i], &args[0], &v);
		if (v.t != LV_NIL)
			r.a.v[r.a.n++] = l.a.v[i];
	}
	*out = r;
	return 0;
}

static int uniq_equal(const struct lv *a, const struct lv *b)
{
	if ((a->t == LV_INT && b->t == LV_FLOAT) ||
	    (a->t == LV_FLOAT && b->t == LV_INT))
		return 0;
	return lv_equal(a, b);
}

static int f_uniq(ARGS)
{
	struct lv l = to_list(st, in), r, *keys;
	size_t i, j;

	UNUSED_KW;
	r = mk_array(st, l.a.n);
	keys = arena_alloc(A(st), (l.a.n + 1) * sizeof(*keys));
	for (i = 0; i < l.a.n; i++) {
		struct lv k = l.a.v[i];

		if (nargs > 0)
			prop_of(st, &l.a.v[i], &args[0], &k);
		for (j = 0; j < r.a.n; j++)
			if (uniq_equal(&keys[j], &k))
				break;
		if (j == r.a.n) {
			keys[r.a.n] = k;
			r.a.v[r.a.n++] = l.a.v[i];
		}
	}
	*out = r;
	return 0;
}

struct sortctx {
	struct rstate *st;
	int natural;
	int failed;
};

static int sort_cmp(struct sortctx *sc, const struct lv *a, const struct lv *b)
{
	int c;

	if (sc->natural) {
		struct lv x, y;
		size_t n;

		if (a->t == LV_NIL || b->t == LV_NIL)
			return (a->t == LV_NIL) - (b->t == LV_NIL);
		x = S(sc->st, a);
		y = S(sc->st, b);
		n = x.s.n < y.s.n ? x.s.n : y.s.n;
		c = strncasecmp(x.s.p, y.s.p, n);
		if (c == 0)
			c = (x.s.n > y.s.n) - (x.s.n < y.s.n);
		return c;
	}
	if (lv_compare(a, b, &c) == 0)
		return c;
	if (lv_equal(a, b))
		return 0;
	if (a->t == LV_NIL)
		return 1;
	if (b->t == LV_NIL)
		return -1;
	sc->failed = 1;
	return 0;
}

/* stable merge sort on (key, item) pairs */
static void msort(struct sortctx *sc, struct lv *k, struct lv *v, struct lv *tk,
		  struct lv *tv, size_t n)
{
	size_t m = n / 2, i = 0, j = m, o = 0;

	if (n < 2)
		return;
	msort(sc, k, v, tk, tv, m);
	msort(sc, k + m, v + m, tk, tv, n - m);
	while (i < m && j < n) {
		if (sort_cmp(sc, &k[j], &k[i]) < 0) {
			tk[o] = k[j];
			tv[o++] = v[j++];
		} else {
			tk[o] = k[i];
			tv[o++] = v[i++];
		}
	}
	while (i < m) {
		tk[o] = k[i];
		tv[o++] = v[i++];
	}
	while (j < n) {
		tk[o] = k[j];
		tv[o++] = v[j++];
	}
	memcpy(k, tk, n * sizeof(*k));
	memcpy(v, tv, n * sizeof(*v));
}

static int sort_common(struct rstate *st, struct lv *in, struct lv *args,
		       size_t nargs, int natural, struct lv *out)
{
	struct lv l = to_list(st, in), r, *keys, *tk, *tv;
	struct sortctx sc = { st, natural, 0 };
	size_t i, n = l.a.n;

	r = mk_array(st, n);
	keys = arena_alloc(A(st), (n + 1) * sizeof(*keys));
	tk = arena_alloc(A(st), (n + 1) * sizeof(*keys));
	tv = arena_alloc(A(st), (n + 1) * sizeof(*keys));
	for (i = 0; i < n; i++) {
		r.a.v[i] = l.a.v[i];
		keys[i] = l.a.v[i];
		if (nargs > 0 && args[0].t != LV_NIL)
			prop_of(st, &l.a.v[i], &args[0], &keys[i]);
	}
	r.a.n = n;
	msort(&sc, keys, r.a.v, tk, tv, n);
	if (sc.failed)
		return FERR("cannot sort values of incompatible type");
	*out = r;
	return 0;
}

static int f_sort(ARGS)
{
	UNUSED_KW;
	return sort_common(st, in, args, nargs, 0, out);
}

static int f_sort_natural(ARGS)
{
	UNUSED_KW;
	return sort_common(st, in, args, nargs, 1, out);
}

static int f_sum(ARGS)
{
	struct lv l = to_list(st, in);
	int64_t isum = 0;
	double fsum = 0;
	int is_float = 0;
	size_t i;

	UNUSED_KW;
	for (i = 0; i < l.a.n; i++) {
		struct lv v = l.a.v[i];

		if (nargs > 0) {
			if (lv_is_object(&v))
				prop_of(st, &l.a.v[i], &args[0], &v);
			else if (v.t == LV_INT || lv_is_array(&v))
				return FERR("cannot select the property '%.*s'",
					    (int)S(st, &args[0]).s.n,
					    S(st, &args[0]).s.p);
			else
				v = lv_int(0);
		}
		v = to_num(&v);
		if (v.t == LV_FLOAT) {
			is_float = 1;
			fsum += v.f;
		} else {
			isum += v.i;
			fsum += (double)v.i;
		}
	}
	*out = is_float ? lv_float(dec_round(fsum)) : lv_int(isum);
	return 0;
}

/* item[property] as Ruby evaluates it inside where/reject/has/find:
 * hashes look the key up, strings match a substring, integers index
 * bits; returns 0, 1 when Ruby raises NoMethodError (nil, booleans: the
 * filter then returns nil), -1 on a TypeError (an error). */
static int ruby_index(struct rstate *st, const struct lv *item,
		      const struct lv *prop, struct lv *out)
{
	if (lv_is_object(item)) {
		if (prop->t != LV_STR) {
			*out = lv_nil();
			return 0;
		}
		return prop_of(st, item, prop, out);
	}
	if (item->t == LV_STR) {
		if (prop->t != LV_STR)
			return -1;
		if (prop->s.n == 0 || memmem(item->s.p, item->s.n, prop->s.p,
					     prop->s.n))
			*out = *prop;
		else
			*out = lv_nil();
		return 0;
	}
	if (item->t == LV_INT) {
		if (prop->t != LV_INT)
			return -1;
		*out = lv_int(prop->i >= 0 && prop->i < 64 ?
				      (item->i >> prop->i) & 1 :
				      item->i < 0);
		return 0;
	}
	if (lv_is_array(item))
		return -1;
	return 1;
}

/* where/reject/has/find/find_index: which = 0 where, 1 reject, 2 has,
 * 3 find, 4 find_index */
static int select_common(struct rstate *st, struct lv *in, struct lv *args,
			 size_t nargs, int which, struct lv *out)
{
	struct lv l = to_list(st, in), r;
	size_t i;

	r = mk_array(st, l.a.n);
	if (args[0].t == LV_NIL) {
		*out = which == 2 ? lv_bool(0) : lv_nil();
		return 0;
	}
	for (i = 0; i < l.a.n; i++) {
		struct lv v;
		int match, rc;

		rc = ruby_index(st, &l.a.v[i], &args[0], &v);
		if (rc < 0)
			return FERR("cannot select the property '%.*s'",
				    (int)S(st, &args[0]).s.n, S(st, &args[0]).s.p);
		if (rc > 0) {
			*out = lv_nil();
			return 0;
		}
		if (nargs > 1 && args[1].t != LV_NIL)
			match = lv_equal(&v, &args[1]);
		else
			match = lv_truthy(&v);
		if (which == 1)
			match = !match;
		if (!match)
			continue;
		if (which == 2) {
			*out = lv_bool(1);
			return 0;
		}
		if (which == 3) {
			*out = l.a.v[i];
			return 0;
		}
		if (which == 4) {
			*out = lv_int((int64_t)i);
			return 0;
		}
		r.a.v[r.a.n++] = l.a.v[i];
	}
	if (which == 2)
		*out = lv_bool(0);
	else if (which >= 3)
		*out = lv_nil();
	else
		*out = r;
	return 0;
}

static int f_where(ARGS)
{
	UNUSED_KW;
	return select_common(st, in, args, nargs, 0, out);
}

static int f_reject(ARGS)
{
	UNUSED_KW;
	return select_common(st, in, args, nargs, 1, out);
}

static int f_has(ARGS)
{
	UNUSED_KW;
	return select_common(st, in, args, nargs, 2, out);
}

static int f_find(ARGS)
{
	UNUSED_KW;
	return select_common(st, in, args, nargs, 3, out);
}

static int f_find_index(ARGS)
{
	UNUSED_KW;
	return select_common(st, in, args, nargs, 4, out);
}

/* ---- misc --------------------------------------------------------------- */

static int f_default(ARGS)
{
	int allow_false = 0, use_default;
	size_t i;

	for (i = 0; i < nkw; i++)
		if (kw[i].klen == 11 && !memcmp(kw[i].k, "allow_false", 11))
			allow_false = lv_truthy(&kwv[i]);
	(void)st;
	if (allow_false)
		use_default = in->t == LV_NIL;
	else
		use_default = !lv_truthy(in);
	if (!use_default && (in->t == LV_STR || lv_is_array(in) ||
			     lv_is_object(in)))
		use_default = lv_is_empty(in);
	*out = use_default ? (nargs > 0 ? args[0] : lv_str("", 0)) : *in;
	return 0;
}

static int st_has_zone(struct rstate *st)
{
	int off;

	return lq_tz_offset(st, 0, &off) == 0 && lq_tz_name(st) != NULL;
}

static int f_date(ARGS)
{
	struct lv fmt = S(st, &args[0]);
	int64_t t;
	int off = 0, has_zone = 0;
	struct liquid_buf tb;

	UNUSED_KW; (void)nargs;
	if (fmt.s.n == 0 || in->t == LV_NIL) {
		*out = *in;
		return 0;
	}
	if (in->t == LV_INT) {
		t = in->i;
	} else if (in->t == LV_FLOAT) {
		t = lq_f2i(in->f);
	} else if (in->t == LV_STR) {
		struct lv s = *in;
		char low[16];
		size_t i;

		if (!s.s.n) {
			*out = *in;
			return 0;
		}
		for (i = 0; i < s.s.n && i < sizeof(low) - 1; i++)
			low[i] = (char)tolower((unsigned char)s.s.p[i]);
		low[i] = 0;
		if ((s.s.n == 3 && !strcmp(low, "now")) ||
		    (s.s.n == 5 && !strcmp(low, "today"))) {
			t = lq_now(st);
		} else {
			int zoff = 0;

			for (i = 0; i < s.s.n && isdigit((unsigned char)s.s.p[i]); i++)
				;
			if (i == s.s.n) {
				char tmp[32];
				size_t n = s.s.n < 31 ? s.s.n : 31;

				memcpy(tmp, s.s.p, n);
				tmp[n] = 0;
				t = strtoll(tmp, NULL, 10);
			} else if (lq_parse_date(s.s.p, s.s.n, lq_now(st),
						 &has_zone, &t, &zoff)) {
				*out = *in;
				return 0;
			} else if (has_zone) {
				/* an instant: shown in the render's zone when
				 * one is set (the customer's), else as written */
				if (!st_has_zone(st) || lq_tz_offset(st, t, &off))
					off = zoff;
				goto format;
			} else {
				/* local time in the render's zone */
				int o1 = 0, o2 = 0;

				lq_tz_offset(st, t, &o1);
				lq_tz_offset(st, t - o1, &o2);
				t -= o2;
				off = o2;
				goto format;
			}
		}
	} else {
		*out = *in;
		return 0;
	}
	if (lq_tz_offset(st, t, &off))
		off = 0;
format:
	/* beyond a few million years the calendar arithmetic would overflow */
	if (t > 100000000000000LL || t < -100000000000000LL) {
		*out = *in;
		return 0;
	}
	liquid_buf_init(&tb);
	lq_strftime(&tb, fmt.s.p, fmt.s.n, t, off, NULL);
	*out = lv_str(arena_strndup(A(st), tb.data ? tb.data : "", tb.len),
		      tb.len);
	free(tb.data);
	return 0;
}

static int f_json(ARGS)
{
	struct liquid_buf tb;

	UNUSED_KW; (void)args; (void)nargs;
	/* (1..92233732) | json would write 800 MB before the memory limit
	 * noticed (found by the fuzzer as a timeout). */
	if (in->t == LV_RANGE &&
	    lq_count_iterations(st, (uint64_t)lv_len(in), lq_filter_pos(st)) < 0)
		return -1;
	liquid_buf_init(&tb);
	lv_write_json(&tb, in);
	*out = lv_str(arena_strndup(A(st), tb.data ? tb.data : "", tb.len),
		      tb.len);
	free(tb.data);
	return 0;
}

static int f_raw(ARGS)
{
	UNUSED_KW; (void)args; (void)nargs; (void)st;
	*out = *in;
	return 0;
}

static const struct filter_def filters[] = {
	{ "abs", f_abs, 0, 0, 0 },
	{ "append", f_append, 1, 1, 0 },
	{ "at_least", f_at_least, 1, 1, 0 },
	{ "at_most", f_at_most, 1, 1, 0 },
	{ "base64_decode", f_base64_decode, 0, 0, 0 },
	{ "base64_encode", f_base64_encode, 0, 0, 1 },
	{ "base64_url_safe_decode", f_base64_url_safe_decode, 0, 0, 0 },
	{ "base64_url_safe_encode", f_base64_url_safe_encode, 0, 0, 1 },
	{ "capitalize", f_capitalize, 0, 0, 2 },
	{ "ceil", f_ceil, 0, 0, 0 },
	{ "compact", f_compact, 0, 1, 0 },
	{ "concat", f_concat, 1, 1, 0 },
	{ "date", f_date, 1, 1, 0 },
	{ "default", f_default, 0, 1, 0 },
	{ "divided_by", f_divided_by, 1, 1, 0 },
	{ "downcase", f_downcase, 0, 0, 2 },
	{ "escape", f_escape, 0, 0, 1 },
	{ "escape_once", f_escape_once, 0, 0, 1 },
	{ "find", f_find, 1, 2, 0 },
	{ "find_index", f_find_index, 1, 2, 0 },
	{ "first", f_first, 0, 0, 2 },
	{ "floor", f_floor, 0, 0, 0 },
	{ "h", f_escape, 0, 0, 1 },
	{ "has", f_has, 1, 2, 0 },
	{ "join", f_join, 0, 1, 0 },
	{ "json", f_json, 0, 0, 0 },
	{ "last", f_last, 0, 0, 2 },
	{ "lstrip", f_lstrip, 0, 0, 2 },
	{ "map", f_map, 1, 1, 0 },
	{ "minus", f_minus, 1, 1, 0 },
	{ "modulo", f_modulo, 1, 1, 0 },
	{ "newline_to_br", f_newline_to_br, 0, 0, 2 },
	{ "plus", f_plus, 1, 1, 0 },
	{ "prepend", f_prepend, 1, 1, 0 },
	{ "raw", f_raw, 0, 0, 1 },
	{ "reject", f_reject, 1, 2, 0 },
	{ "remove", f_remove, 1, 1, 2 },
	{ "remove_first", f_remove_first, 1, 1, 2 },
	{ "remove_last", f_remove_last, 1, 1, 2 },
	{ "replace", f_replace, 1, 2, 0 },
	{ "replace_first", f_replace_first, 1, 2, 0 },
	{ "replace_last", f_replace_last, 2, 2, 0 },
	{ "reverse", f_reverse, 0, 0, 0 },
	{ "round", f_round, 0, 1, 0 },
	{ "rstrip", f_rstrip, 0, 0, 2 },
	{ "size", f_size, 0, 0, 0 },
	{ "slice", f_slice, 1, 2, 2 },
	{ "sort", f_sort, 0, 1, 0 },
	{ "sort_natural", f_sort_natural, 0, 1, 0 },
	{ "split", f_split, 1, 1, 0 },
	{ "strip", f_strip, 0, 0, 2 },
	{ "strip_html", f_strip_html, 0, 0, 0 },
	{ "strip_newlines", f_strip_newlines, 0, 0, 2 },
	{ "sum", f_sum, 0, 1, 0 },
	{ "times", f_times, 1, 1, 0 },
	{ "truncate", f_truncate, 0, 2, 2 },
	{ "truncatewords", f_truncatewords, 0, 2, 2 },
	{ "uniq", f_uniq, 0, 1, 0 },
	{ "upcase", f_upcase, 0, 0, 2 },
	{ "url_decode", f_url_decode, 0, 0, 0 },
	{ "url_encode", f_url_encode, 0, 0, 1 },
	{ "where", f_where, 1, 2, 0 },
};

const struct filter_def *lq_filter_find(const char *name, size_t n)
{
	size_t lo = 0, hi = sizeof(filters) / sizeof(filters[0]);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(filters[mid].name, name, n);

		if (c == 0 && filters[mid].name[n])
			c = 1;
		if (c == 0)
			return &filters[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int liquid_filter_exists(const char *name)
{
	return name && lq_filter_find(name, strlen(name)) != NULL;
}

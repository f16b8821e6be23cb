/*
 * value.c: the engine's value type (struct lv): conversions from JSON,
 * truthiness, equality and ordering, and text output, following Ruby
 * Liquid's to_s/==/<=> rules.  Values never own memory: strings point into
 * the template, the JSON context or the render arena.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "liquid_int.h"

struct lv lv_from_json(json_t *j)
{
	struct lv v = { 0 };

	if (!j)
		return v;
	switch (json_typeof(j)) {
	case JSON_STRING:
		return lv_str(json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return lv_int(json_integer_value(j));
	case JSON_REAL:
		return lv_float(json_real_value(j));
	case JSON_TRUE:
		return lv_bool(1);
	case JSON_FALSE:
		return lv_bool(0);
	case JSON_NULL:
		return v;
	case JSON_OBJECT:
	case JSON_ARRAY:
		v.t = LV_JSON;
		v.j = j;
		return v;
	}
	return v;
}

int lv_truthy(const struct lv *v)
{
	if (v->t == LV_NIL)
		return 0;
	if (v->t == LV_BOOL)
		return v->b;
	return 1;
}

int lv_is_array(const struct lv *v)
{
	return v->t == LV_ARRAY || v->t == LV_RANGE ||
	       (v->t == LV_JSON && json_is_array(v->j));
}

int lv_is_object(const struct lv *v)
{
	return v->t == LV_OBJECT || (v->t == LV_JSON && json_is_object(v->j));
}

int lv_obj_get(const struct lv *o, const char *k, size_t kn, struct lv *out)
{
	size_t i;

	if (o->t == LV_OBJECT) {
		for (i = o->o->n; i > 0; i--) {
			const struct lkv *e = &o->o->kv[i - 1];

			/* first byte before a memcmp call */
			if (e->kn == kn && (!kn || e->k[0] == k[0]) &&
			    memcmp(e->k, k, kn) == 0) {
				*out = lq_force(&e->v);
				return 1;
			}
		}
		return 0;
	}
	if (o->t == LV_JSON && json_is_object(o->j)) {
		json_t *m = json_object_getn(o->j, k, kn);

		if (m) {
			*out = lv_from_json(m);
			return 1;
		}
	}
	return 0;
}

size_t lv_obj_size(const struct lv *o)
{
	if (o->t == LV_OBJECT)
		return o->o->n;
	if (o->t == LV_JSON && json_is_object(o->j))
		return json_object_size(o->j);
	return 0;
}

int lv_obj_pair(const struct lv *o, size_t i, const char **k_r, size_t *kn_r,
		struct lv *v_r)
{
	if (o->t == LV_OBJECT) {
		if (i >= o->o->n)
			return 0;
		*k_r = o->o->kv[i].k;
		*kn_r = o->o->kv[i].kn;
		*v_r = lq_force(&o->o->kv[i].v);
		return 1;
	}
	if (o->t == LV_JSON && json_is_object(o->j)) {
		const char *k;
		json_t *m;
		size_t idx = 0;

		json_object_foreach(o->j, k, m) {
			if (idx++ == i) {
				*k_r = k;
				*kn_r = strlen(k);
				*v_r = lv_from_json(m);
				return 1;
			}
		}
	}
	return 0;
}

size_t lv_len(const struct lv *v)
{
	switch (v->t) {
	case LV_ARRAY:
		return v->a.n;
	case LV_RANGE: {
		/* (uint64) arithmetic: hi - lo may not fit in int64 */
		uint64_t n;

		if (v->r.hi < v->r.lo)
			return 0;
		n = (uint64_t)v->r.hi - (uint64_t)v->r.lo;
		return n >= (uint64_t)(SIZE_MAX / 4) ? SIZE_MAX / 4 : (size_t)n + 1;
	}
	case LV_JSON:
		return json_is_array(v->j) ? json_array_size(v->j)
					   : json_object_size(v->j);
	case LV_OBJECT:
		return v->o->n;
	default:
		return 0;
	}
}

struct lv lv_at(const struct lv *v, size_t i)
{
	switch (v->t) {
	case LV_ARRAY:
		return i < v->a.n ? lq_force(&v->a.v[i]) : lv_nil();
	case LV_RANGE:
		return lv_int(v->r.lo + (int64_t)i);
	case LV_JSON:
		if (json_is_array(v->j))
			return lv_from_json(json_array_get(v->j, i));
		return lv_nil();
	default:
		return lv_nil();
	}
}

size_t lq_utf8_len(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	return c;
}

static int key_is(const char *k, size_t kn, const char *lit)
{
	size_t l = strlen(lit);

	return kn == l && memcmp(k, lit, l) == 0;
}

static int forloop_get(const struct forloop *fl, const char *k, size_t kn,
		       struct lv *out)
{
	int64_t len = fl->length, i0 = fl->index0;

	if (key_is(k, kn, "index"))
		*out = lv_int(i0 + 1);
	else if (key_is(k, kn, "index0"))
		*out = lv_int(i0);
	else if (key_is(k, kn, "rindex"))
		*out = lv_int(len - i0);
	else if (key_is(k, kn, "rindex0"))
		*out = lv_int(len - i0 - 1);
	else if (key_is(k, kn, "first"))
		*out = lv_bool(i0 == 0);
	else if (key_is(k, kn, "last"))
		*out = lv_bool(i0 == len - 1);
	else if (key_is(k, kn, "length"))
		*out = lv_int(len);
	else if (key_is(k, kn, "name") && !fl->tablerow && fl->name)
		*out = lv_str(fl->name, fl->name_len);
	else if (key_is(k, kn, "parentloop") && !fl->tablerow) {
		if (!fl->parent) {
			*out = lv_nil();
		} else {
			out->t = LV_FORLOOP;
			out->safe = 0;
			out->fl = fl->parent;
		}
	} else if (fl->tablerow && key_is(k, kn, "col"))
		*out = lv_int(fl->col0 + 1);
	else if (fl->tablerow && key_is(k, kn, "col0"))
		*out = lv_int(fl->col0);
	else if (fl->tablerow && key_is(k, kn, "col_first"))
		*out = lv_bool(fl->col0 == 0);
	else if (fl->tablerow && key_is(k, kn, "col_last"))
		*out = lv_bool(fl->cols && fl->col0 + 1 == fl->cols);
	else if (fl->tablerow && key_is(k, kn, "row"))
		*out = lv_int(fl->row);
	else
		return 0;
	return 1;
}

struct lv lv_first_pair(struct arena *a, const struct lv *obj)
{
	struct lv r = lv_nil(), v;
	const char *k;
	size_t kn;

	if (a && lv_obj_pair(obj, 0, &k, &kn, &v)) {
		struct lv *pair = arena_alloc(a, 2 * sizeof(*pair));

		pair[0] = lv_str(k, kn);
		pair[1] = v;
		r.t = LV_ARRAY;
		r.a.v = pair;
		r.a.n = 2;
	}
	return r;
}

int lv_get(struct arena *a, const struct lv *v, const char *k, size_t kn,
	   struct lv *out)
{
	switch (v->t) {
	case LV_OBJECT:
	case LV_JSON:
		if (lv_is_object(v)) {
			if (lv_obj_get(v, k, kn, out))
				return 1;
			if (key_is(k, kn, "size")) {
				*out = lv_int((int64_t)lv_obj_size(v));
				return 1;
			}
			if (key_is(k, kn, "first")) {
				*out = lv_first_pair(a, v);
				return 1;
			}
			return 0;
		}
		/* fall through */
	case LV_ARRAY:
	case LV_RANGE: {
		size_t n = lv_len(v);

		if (key_is(k, kn, "size")) {
			*out = lv_int((int64_t)n);
			return 1;
		}
		if (key_is(k, kn, "first")) {
			*out = n ? lv_at(v, 0) : lv_nil();
			return 1;
		}
		if (key_is(k, kn, "last")) {
			*out = n ? lv_at(v, n - 1) : lv_nil();
			return 1;
		}
		return 0;
	}
	case LV_STR:
		if (key_is(k, kn, "size")) {
			*out = lv_int((int64_t)lq_utf8_len(v->s.p, v->s.n));
			return 1;
		}
		return 0;
	case LV_FORLOOP:
		return forloop_get(v->fl, k, kn, out);
	default:
		return 0;
	}
}

/* Ruby's Float#to_s: shortest round-trip digits, fixed notation for
 * 1e-4 <= |f| < 1e16, scientific ("1.0e+16") otherwise. */
void lq_fmt_float(struct liquid_buf *b, double f)
{
	char tmp[64], digits[32];
	int prec, exp10, nd = 0, i;
	const char *p;

	if (isnan(f)) {
		lq_buf_adds(b, "NaN");
		return;
	}
	if (isinf(f)) {
		lq_buf_adds(b, f < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (f == 0) {
		lq_buf_adds(b, signbit(f) ? "-0.0" : "0.0");
		return;
	}
	if (fabs(f) < 1e15 && f == (double)(int64_t)f) {
		/* integral: the common case, no digit search */
		int len = snprintf(tmp, sizeof(tmp), "%" PRId64 ".0", (int64_t)f);

		lq_buf_add(b, tmp, (size_t)len);
		return;
	}
	if (fabs(f) >= 1e-4 && fabs(f) < 1e9) {
		/* few decimals (prices): f == r / 10^k with r < 2^53 means the
		 * k-decimal string round-trips (IEEE division is correctly
		 * rounded), and the smallest such k is the shortest form.
		 * printf's exact digit generation took a quarter of a render */
		static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
		int k;

		for (k = 1; k <= 6; k++) {
			double r = nearbyint(f * p10[k]);

			if (r / p10[k] == f) {
				int64_t ir = (int64_t)fabs(r), ip = ir / (int64_t)p10[k];
				int64_t fp = ir % (int64_t)p10[k];
				int len = snprintf(tmp, sizeof(tmp), "%s%" PRId64 ".%0*" PRId64,
						   f < 0 ? "-" : "", ip, k, fp);

				lq_buf_add(b, tmp, (size_t)len);
				return;
			}
		}
	}
	/* shortest round-trip digits: when some k <= 15 digits round-trip,
	 * the 15-digit rendering is those digits padded with zeros (which
	 * are stripped below), so at most three tries instead of 17 */
	for (prec = 14; prec < 16; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	if (prec == 16)
		snprintf(tmp, sizeof(tmp), "%.16e", f);
	/* tmp is like -1.2345e+03 */
	p = tmp;
	if (*p == '-') {
		lq_buf_addc(b, '-');
		p++;
	}
	for (; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	exp10 = (int)strtol(p + 1, NULL, 10);
	if (exp10 >= 16 || exp10 < -4) {
		lq_buf_addc(b, digits[0]);
		lq_buf_addc(b, '.');
		if (nd > 1)
			lq_buf_add(b, digits + 1, nd - 1);
		else
			lq_buf_addc(b, '0');
		snprintf(tmp, sizeof(tmp), "e%c%02d", exp10 < 0 ? '-' : '+',
			 abs(exp10));
		lq_buf_adds(b, tmp);
		return;
	}
	if (exp10 < 0) {
		lq_buf_adds(b, "0.");
		for (i = -1; i > exp10; i--)
			lq_buf_addc(b, '0');
		lq_buf_add(b, digits, nd);
		return;
	}
	for (i = 0; i <= exp10; i++)
		lq_buf_addc(b, i < nd ? digits[i] : '0');
	lq_buf_addc(b, '.');
	if (nd > exp10 + 1)
		lq_buf_add(b, digits + exp10 + 1, nd - exp10 - 1);
	else
		lq_buf_addc(b, '0');
}

static void write_inspect(struct liquid_buf *b, const struct lv *v);

static void write_inspect_str(struct liquid_buf *b, const char *s, size_t n)
{
	size_t i;

	lq_buf_addc(b, '"');
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '"' || c == '\\') {
			lq_buf_addc(b, '\\');
			lq_buf_addc(b, c);
		} else if (c == '\n') {
			lq_buf_adds(b, "\\n");
		} else if (c == '\t') {
			lq_buf_adds(b, "\\t");
		} else {
			lq_buf_addc(b, c);
		}
	}
	lq_buf_addc(b, '"');
}

static void write_inspect(struct liquid_buf *b, const struct lv *v)
{
	size_t i, n;

	switch (v->t) {
	case LV_NIL:
		lq_buf_adds(b, "nil");
		return;
	case LV_STR:
		write_inspect_str(b, v->s.p, v->s.n);
		return;
	case LV_ARRAY:
	case LV_RANGE:
		lq_buf_addc(b, '[');
		n = lv_len(v);
		for (i = 0; i < n; i++) {
			struct lv e = lv_at(v, i);

			if (i)
				lq_buf_adds(b, ", ");
			write_inspect(b, &e);
		}
		lq_buf_addc(b, ']');
		return;
	case LV_OBJECT:
	case LV_JSON:
		if (v->t == LV_JSON && json_is_array(v->j)) {
			lq_buf_addc(b, '[');
			n = json_array_size(v->j);
			for (i = 0; i < n; i++) {
				struct lv e = lv_from_json(json_array_get(v->j, i));

				if (i)
					lq_buf_adds(b, ", ");
				write_inspect(b, &e);
			}
			lq_buf_addc(b, ']');
		} else {
			const char *k;
			size_t kn;
			struct lv e;

			lq_buf_addc(b, '{');
			for (i = 0; lv_obj_pair(v, i, &k, &kn, &e); i++) {
				if (i)
					lq_buf_adds(b, ", ");
				write_inspect_str(b, k, kn);
				lq_buf_adds(b, "=>");
				write_inspect(b, &e);
			}
			lq_buf_addc(b, '}');
		}
		return;
	default:
		lv_write(b, v);
	}
}

/* integer to decimal without printf (it showed in profiles) */
void lq_write_int(struct liquid_buf *b, int64_t x)
{
	char tmp[24];
	char *p = tmp + sizeof(tmp);
	uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (x < 0)
		*--p = '-';
	lq_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void lv_write(struct liquid_buf *b, const struct lv *v)
{
	char tmp[32];
	size_t i, n;
	int len;

	switch (v->t) {
	case LV_NIL:
	case LV_EMPTY:
	case LV_BLANK:
	case LV_FORLOOP:
		return;
	case LV_BOOL:
		lq_buf_adds(b, v->b ? "true" : "false");
		return;
	case LV_INT:
		lq_write_int(b, v->i);
		return;
	case LV_FLOAT:
		lq_fmt_float(b, v->f);
		return;
	case LV_STR:
		lq_buf_add(b, v->s.p, v->s.n);
		return;
	case LV_RANGE:
		len = snprintf(tmp, sizeof(tmp), "%" PRId64 "..%" PRId64,
			       v->r.lo, v->r.hi);
		lq_buf_add(b, tmp, (size_t)len);
		return;
	case LV_ARRAY:
		for (i = 0; i < v->a.n; i++)
		{
			struct lv e = lq_force(&v->a.v[i]);

			lv_write(b, &e);
		}
		return;
	case LV_JSON:
		if (json_is_array(v->j)) {
			n = json_array_size(v->j);
			for (i = 0; i < n; i++) {
				struct lv e = lv_from_json(json_array_get(v->j, i));

				lv_write(b, &e);
			}
		} else {
			write_inspect(b, v);
		}
		return;
	case LV_OBJECT:
		write_inspect(b, v);
		return;
	}
}

struct lv lv_to_str(struct arena *a, const struct lv *v)
{
	struct liquid_buf tb;
	struct lv r;

	if (v->t == LV_STR)
		return *v;
	if (v->t == LV_NIL || v->t == LV_EMPTY || v->t == LV_BLANK)
		return lv_str("", 0);
	liquid_buf_init(&tb);
	lv_write(&tb, v);
	r = lv_str(arena_strndup(a, tb.data ? tb.data : "", tb.len), tb.len);
	free(tb.data);
	return r;
}

static int is_num(const struct lv *v)
{
	return v->t == LV_INT || v->t == LV_FLOAT;
}

static double num_f(const struct lv *v)
{
	return v->t == LV_INT ? (double)v->i : v->f;
}

int lv_is_empty(const struct lv *v)
{
	switch (v->t) {
	case LV_STR:
		return v->s.n == 0;
	case LV_ARRAY:
	case LV_RANGE:
	case LV_JSON:
	case LV_OBJECT:
		return lv_len(v) == 0;
	case LV_EMPTY:
	case LV_BLANK:
		return 1;
	default:
		return 0;
	}
}

int lv_is_blank(const struct lv *v)
{
	size_t i;

	switch (v->t) {
	case LV_NIL:
		return 1;
	case LV_BOOL:
		return !v->b;
	case LV_STR:
		for (i = 0; i < v->s.n; i++)
			if (!strchr(" \t\n\r\f\v", v->s.p[i]))
				return 0;
		return 1;
	default:
		return lv_is_empty(v);
	}
}

int lv_equal(const struct lv *a, const struct lv *b)
{
	size_t i, n;

	if (a->t == LV_EMPTY || a->t == LV_BLANK) {
		if (b->t == LV_EMPTY || b->t == LV_BLANK)
			return a->t == b->t;
		return a->t == LV_EMPTY ? lv_is_empty(b) : lv_is_blank(b);
	}
	if (b->t == LV_EMPTY || b->t == LV_BLANK)
		return lv_equal(b, a);
	if (is_num(a) && is_num(b)) {
		if (a->t == LV_INT && b->t == LV_INT)
			return a->i == b->i;
		return num_f(a) == num_f(b);
	}
	if (lv_is_array(a) && lv_is_array(b)) {
		n = lv_len(a);
		if (n != lv_len(b))
			return 0;
		for (i = 0; i < n; i++) {
			struct lv x = lv_at(a, i), y = lv_at(b, i);

			if (!lv_equal(&x, &y))
				return 0;
		}
		return 1;
	}
	if (lv_is_object(a) && lv_is_object(b) &&
	    (a->t == LV_OBJECT || b->t == LV_OBJECT)) {
		const char *k;
		size_t kn;
		struct lv x, y;

		if (lv_obj_size(a) != lv_obj_size(b))
			return 0;
		for (i = 0; lv_obj_pair(a, i, &k, &kn, &x); i++)
			if (!lv_obj_get(b, k, kn, &y) || !lv_equal(&x, &y))
				return 0;
		return 1;
	}
	if (a->t != b->t)
		return 0;
	switch (a->t) {
	case LV_NIL:
		return 1;
	case LV_BOOL:
		return a->b == b->b;
	case LV_STR:
		return a->s.n == b->s.n && memcmp(a->s.p, b->s.p, a->s.n) == 0;
	case LV_JSON:
		return json_equal(a->j, b->j);
	case LV_FORLOOP:
		return a->fl == b->fl;
	default:
		return 0;
	}
}

/* 0: *cmp_r set; 1: not comparable (condition is false); -1: type error */
int lv_compare(const struct lv *a, const struct lv *b, int *cmp_r)
{
	if (is_num(a) && is_num(b)) {
		if (a->t == LV_INT && b->t == LV_INT)
			*cmp_r = (a->i > b->i) - (a->i < b->i);
		else
			*cmp_r = (num_f(a) > num_f(b)) - (num_f(a) < num_f(b));
		return 0;
	}
	if (a->t == LV_STR && b->t == LV_STR) {
		size_t n = a->s.n < b->s.n ? a->s.n : b->s.n;
		int c = memcmp(a->s.p, b->s.p, n);

		if (c == 0)
			c = (a->s.n > b->s.n) - (a->s.n < b->s.n);
		*cmp_r = c < 0 ? -1 : c > 0;
		return 0;
	}
	if ((is_num(a) && b->t == LV_STR) || (a->t == LV_STR && is_num(b)))
		return -1;
	return 1;
}

const char *lv_type_name(const struct lv *v)
{
	switch (v->t) {
	case LV_NIL: return "nil";
	case LV_BOOL: return "boolean";
	case LV_INT: return "integer";
	case LV_FLOAT: return "float";
	case LV_STR: return "string";
	case LV_RANGE: return "range";
	case LV_ARRAY: return "array";
	case LV_JSON: return json_is_array(v->j) ? "array" : "hash";
	case LV_OBJECT: return "hash";
	case LV_FORLOOP: return "forloop";
	default: return "literal";
	}
}

static void json_str(struct liquid_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	lq_buf_addc(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			lq_buf_addc(b, '\\');
			lq_buf_addc(b, (char)c);
		} else if (c == '\n') {
			lq_buf_adds(b, "\\n");
		} else if (c == '\r') {
			lq_buf_adds(b, "\\r");
		} else if (c == '\t') {
			lq_buf_adds(b, "\\t");
		} else if (c < 0x20) {
			lq_buf_adds(b, "\\u00");
			lq_buf_addc(b, hex[c >> 4]);
			lq_buf_addc(b, hex[c & 15]);
		} else if (c < 0x80) {
			lq_buf_addc(b, (char)c);
		} else {
			/* copy a valid UTF-8 sequence, replace a broken one
			 * with U+FFFD so the output is always valid JSON */
			size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
			size_t k;
			int ok = len && len <= 4 && c < 0xF5 && i + len <= n;

			for (k = 1; ok && k < len; k++)
				if (((unsigned char)s[i + k] & 0xC0) != 0x80)
					ok = 0;
			if (ok) {
				lq_buf_add(b, s + i, len);
				i += len - 1;
			} else {
				lq_buf_adds(b, "\\ufffd");
			}
		}
	}
	lq_buf_addc(b, '"');
}

void lv_write_json(struct liquid_buf *b, const struct lv *v)
{
	char tmp[32];
	size_t i, n;
	int len;

	switch (v->t) {
	case LV_NIL:
	case LV_EMPTY:
	case LV_BLANK:
		lq_buf_adds(b, "null");
		return;
	case LV_BOOL:
		lq_buf_adds(b, v->b ? "true" : "false");
		return;
	case LV_INT:
		len = snprintf(tmp, sizeof(tmp), "%" PRId64, v->i);
		lq_buf_add(b, tmp, (size_t)len);
		return;
	case LV_FLOAT:
		if (isnan(v->f) || isinf(v->f))
			lq_buf_adds(b, "null");
		else
			lq_fmt_float(b, v->f);
		return;
	case LV_STR:
		json_str(b, v->s.p, v->s.n);
		return;
	case LV_OBJECT:
	case LV_JSON:
		if (lv_is_object(v)) {
			const char *k;
			size_t kn;
			struct lv e;

			lq_buf_addc(b, '{');
			for (i = 0; lv_obj_pair(v, i, &k, &kn, &e); i++) {
				if (i)
					lq_buf_addc(b, ',');
				json_str(b, k, kn);
				lq_buf_addc(b, ':');
				lv_write_json(b, &e);
			}
			lq_buf_addc(b, '}');
			return;
		}
		/* fall through */
	case LV_ARRAY:
	case LV_RANGE:
		lq_buf_addc(b, '[');
		n = lv_len(v);
		for (i = 0; i < n; i++) {
			struct lv e = lv_at(v, i);

			if (i)
				lq_buf_addc(b, ',');
			lv_write_json(b, &e);
		}
		lq_buf_addc(b, ']');
		return;
	case LV_FORLOOP: {
		static const char *keys[] = { "index", "index0", "rindex",
					      "rindex0", "first", "last",
					      "length" };
		lq_buf_addc(b, '{');
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			struct lv e;

			forloop_get(v->fl, keys[i], strlen(keys[i]), &e);
			if (i)
				lq_buf_addc(b, ',');
			json_str(b, keys[i], strlen(keys[i]));
			lq_buf_addc(b, ':');
			lv_write_json(b, &e);
		}
		lq_buf_addc(b, '}');
		return;
	}
	}
}

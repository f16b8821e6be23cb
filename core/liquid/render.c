/*
 * render.c: walks a compiled template against a JSON context.
 *
 * Must never write to the template or to global state (templates are shared
 * between threads) and never do I/O except through the caller's partial
 * loader for dynamically named includes.  All temporaries go to the arena
 * kept in the output buffer; every limit (output, iterations, depth,
 * memory) ends the render with an error, never a crash or a hang.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "liquid_int.h"

enum { R_OK = 0, R_BREAK = 1, R_CONTINUE = 2, R_ERR = -1 };

struct var {
	const char *name;
	size_t len;
	struct lv val;
};

struct varvec {
	struct var *v;
	size_t n, cap;
};

/* one per isolation level: the root, and each {% render %} */
struct ctx {
	struct varvec assigns;
	struct varvec counters;
	size_t locals_base;
};

struct rstate {
	const struct liquid_template *root;
	const struct liquid_template *cur; /* for error positions */
	struct arena *a;
	struct liquid_buf *out;
	struct lv data; /* the context: JSON object or LV_OBJECT, or nil */
	struct ctx *ctx;
	struct varvec locals;
	struct forloop *loop;
	uint64_t iterations;
	int depth;
	struct liquid_error *err;
	int failed;
	struct varvec cycles;
	struct varvec offsets;
	int has_ifchanged;
	struct lv ifchanged_last;
	const char *tz;
	int tz_pending; /* customer's zone not looked up yet (only date needs it) */
	char tzbuf[72];	/* not the arena: resolved inside marked regions */
	int64_t now;
	int has_now;
	uint32_t filter_pos;
	struct liquid_template **temps; /* dynamically named partials */
	char **temp_names;
	size_t ntemps;
};

int lq_error(struct rstate *st, uint32_t pos, const char *fmt, ...)
{
	va_list ap;
	char msg[400];
	const struct liquid_template *t = st->cur;

	if (st->failed)
		return R_ERR;
	st->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lq_set_error(st->err, t->filename, t->src, t->len, pos, "%s", msg);
	return R_ERR;
}

struct arena *lq_arena(struct rstate *st)
{
	return st->a;
}

uint32_t lq_filter_pos(struct rstate *st)
{
	return st->filter_pos;
}

static const char *customer_zone(struct rstate *st);

/* the customer's zone is resolved on first use: ICU's offset lookup cost
 * more than a whole SMS render, and most templates never call date */
static void tz_resolve(struct rstate *st)
{
	const char *fallback = st->tz, *z;

	if (!st->tz_pending)
		return;
	st->tz_pending = 0;
	z = customer_zone(st);
	st->tz = z ? z : fallback;
}

const char *lq_tz_name(struct rstate *st)
{
	tz_resolve(st);
	return st->tz && *st->tz ? st->tz : NULL;
}

int64_t lq_now(struct rstate *st)
{
	return st->has_now ? st->now : (int64_t)time(NULL);
}

int lq_tz_offset(struct rstate *st, int64_t t, int *off_r)
{
	const char *z;

	tz_resolve(st);
	z = st->tz;

	*off_r = 0;
	if (!z || !*z || !strcmp(z, "UTC") || !strcmp(z, "Etc/UTC") ||
	    !strcmp(z, "GMT"))
		return 0;
	if ((z[0] == '+' || z[0] == '-') && strlen(z) >= 3) {
		int h = (z[1] - '0') * 10 + (z[2] - '0'), m = 0;
		const char *p = z + 3;

		if (*p == ':')
			p++;
		if (p[0] && p[1])
			m = (p[0] - '0') * 10 + (p[1] - '0');
		*off_r = (z[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
		return 0;
	}
	if (st->root->opts.tz_offset)
		return st->root->opts.tz_offset(z, t, off_r);
	return -1;
}

/* ---- variables ---------------------------------------------------------- */

static struct var *vv_find(struct varvec *vv, size_t from, const char *name,
			   size_t len)
{
	size_t i;

	for (i = vv->n; i > from; i--) {
		struct var *v = &vv->v[i - 1];

		if (v->len == len && memcmp(v->name, name, len) == 0)
			return v;
	}
	return NULL;
}

static struct var *vv_push(struct rstate *st, struct varvec *vv,
			   const char *name, size_t len)
{
	struct var *v;

	if (vv->n == vv->cap) {
		size_t cap = vv->cap ? vv->cap * 2 : 16;
		struct var *nv = arena_alloc(st->a, cap * sizeof(*nv));

		if (vv->n)
			memcpy(nv, vv->v, vv->n * sizeof(*nv));
		vv->v = nv;
		vv->cap = cap;
	}
	v = &vv->v[vv->n++];
	v->name = name;
	v->len = len;
	v->val = lv_nil();
	return v;
}

static void vv_set(struct rstate *st, struct varvec *vv, const char *name,
		   size_t len, struct lv val)
{
	struct var *v = vv_find(vv, 0, name, len);

	if (!v)
		v = vv_push(st, vv, name, len);
	v->val = val;
}

static int lookup_root(struct rstate *st, const char *name, size_t len,
		       struct lv *out)
{
	struct var *v;

	v = vv_find(&st->locals, st->ctx->locals_base, name, len);
	if (!v)
		v = vv_find(&st->ctx->assigns, 0, name, len);
	if (!v)
		v = vv_find(&st->ctx->counters, 0, name, len);
	if (v) {
		*out = v->val;
		return 1;
	}
	return lv_obj_get(&st->data, name, len, out);
}

static int eval(struct rstate *st, const struct expr *e, struct lv *out);

static int to_index(const struct lv *k, int64_t *i_r)
{
	if (k->t == LV_INT) {
		*i_r = k->i;
		return 1;
	}
	if (k->t == LV_FLOAT) {
		*i_r = lq_f2i(k->f);
		return 1;
	}
	return 0;
}

/* v[key] */
int lq_eval_index(struct rstate *st, const struct lv *v, const struct lv *key,
		  struct lv *out)
{
	int64_t i;

	if (lv_is_array(v) && to_index(key, &i)) {
		int64_t n = (int64_t)lv_len(v);

		if (i < 0)
			i += n;
		if (i < 0 || i >= n)
			return 0;
		*out = lv_at(v, (size_t)i);
		return 1;
	}
	if (key->t == LV_STR)
		return lv_get(st->a, v, key->s.p, key->s.n, out);
	return 0;
}

static int undefined(struct rstate *st, const struct expr *e)
{
	if (!st->root->opts.strict_variables)
		return 0;
	if (e->var.name)
		return lq_error(st, e->pos, "undefined variable '%.*s'",
				(int)e->var.nlen, e->var.name);
	return lq_error(st, e->pos, "undefined variable");
}

static int eval_var(struct rstate *st, const struct expr *e, struct lv *out)
{
	struct lv v, k;
	size_t i = 0;
	int found;

	if (e->var.name) {
		found = lookup_root(st, e->var.name, e->var.nlen, &v);
	} else {
		if (eval(st, e->var.segs[0].e, &k))
			return R_ERR;
		k = lv_to_str(st->a, &k);
		found = lookup_root(st, k.s.p, k.s.n, &v);
		i = 1;
	}
	for (; found && i < e->var.nsegs; i++) {
		const struct path_seg *s = &e->var.segs[i];

		if (s->kind == SEG_KEY) {
			found = lv_get(st->a, &v, s->key, s->klen, &v);
			if (!found && lv_is_array(&v) && s->klen &&
			    s->key[0] >= '0' && s->key[0] <= '9') {
				k = lv_int(strtoll(s->key, NULL, 10));
				found = lq_eval_index(st, &v, &k, &v);
			}
		} else {
			if (eval(st, s->e, &k))
				return R_ERR;
			found = lq_eval_index(st, &v, &k, &v);
		}
	}
	if (!found) {
		*out = lv_nil();
		return undefined(st, e);
	}
	*out = v;
	return 0;
}

static int to_int(struct rstate *st, const struct lv *v, uint32_t pos,
		  int64_t *i_r)
{
	char tmp[32], *end;
	size_t n;

	switch (v->t) {
	case LV_INT:
		*i_r = v->i;
		return 0;
	case LV_FLOAT:
		*i_r = lq_f2i(v->f);
		return 0;
	case LV_NIL:
		*i_r = 0;
		return 0;
	case LV_STR:
		/* Ruby's to_i: leading digits, else 0 */
		n = v->s.n < sizeof(tmp) - 1 ? v->s.n : sizeof(tmp) - 1;
		memcpy(tmp, v->s.p, n);
		tmp[n] = 0;
		*i_r = strtoll(tmp, &end, 10);
		return 0;
	default:
		(void)st;
		(void)pos;
		*i_r = 0;
		return 0;
	}
}

/* for/tablerow limit and offset: Ruby's Utils.to_integer (nil is 0) */
static int to_int_strict(struct rstate *st, const struct lv *v, uint32_t pos,
			 int64_t *i_r)
{
	char tmp[32], *end;
	size_t n;

	if (v->t == LV_STR) {
		n = v->s.n < sizeof(tmp) - 1 ? v->s.n : sizeof(tmp) - 1;
		memcpy(tmp, v->s.p, n);
		tmp[n] = 0;
		*i_r = strtoll(tmp, &end, 10);
		if (end == tmp || *end)
			return lq_error(st, pos, "invalid integer '%s'", tmp);
		return 0;
	}
	if (v->t == LV_INT || v->t == LV_FLOAT || v->t == LV_NIL)
		return to_int(st, v, pos, i_r);
	return lq_error(st, pos, "expected an integer, found %s",
			lv_type_name(v));
}

static int contains(const struct lv *l, const struct lv *r, struct arena *a)
{
	size_t i, n;

	if (r->t == LV_NIL || (r->t == LV_BOOL && !r->b))
		return 0;
	if (l->t == LV_STR) {
		struct lv rs = lv_to_str(a, r);

		if (rs.s.n == 0)
			return 1;
		return memmem(l->s.p, l->s.n, rs.s.p, rs.s.n) != NULL;
	}
	if (lv_is_array(l)) {
		n = lv_len(l);
		for (i = 0; i < n; i++) {
			struct lv x = lv_at(l, i);

			if (lv_equal(&x, r))
				return 1;
		}
		return 0;
	}
	if (lv_is_object(l) && r->t == LV_STR) {
		struct lv x;

		return lv_obj_get(l, r->s.p, r->s.n, &x);
	}
	return 0;
}

static int eval(struct rstate *st, const struct expr *e, struct lv *out)
{
	struct lv l, r;
	int c, rc;

	switch (e->kind) {
	case EX_LIT:
		*out = e->lit;
		return 0;
	case EX_VAR:
		return eval_var(st, e, out);
	case EX_RANGE: {
		int64_t lo, hi;

		if (eval(st, e->range.lo, &l) || eval(st, e->range.hi, &r) ||
		    to_int(st, &l, e->range.lo->pos, &lo) ||
		    to_int(st, &r, e->range.hi->pos, &hi))
			return R_ERR;
		out->t = LV_RANGE;
		out->safe = 0;
		out->r.lo = lo;
		out->r.hi = hi;
		return 0;
	}
	case EX_AND:
	case EX_OR:
		/* right-nested chain, walked iteratively */
		while (e->kind == EX_AND || e->kind == EX_OR) {
			if (eval(st, e->bin.l, &l))
				return R_ERR;
			if (lv_truthy(&l) != (e->kind == EX_AND)) {
				*out = lv_bool(e->kind == EX_OR);
				return 0;
			}
			e = e->bin.r;
		}
		if (eval(st, e, &r))
			return R_ERR;
		*out = lv_bool(lv_truthy(&r));
		return 0;
	case EX_CMP:
		if (eval(st, e->bin.l, &l) || eval(st, e->bin.r, &r))
			return R_ERR;
		switch (e->op) {
		case OP_EQ:
			*out = lv_bool(lv_equal(&l, &r));
			return 0;
		case OP_NE:
			*out = lv_bool(!lv_equal(&l, &r));
			return 0;
		case OP_CONTAINS:
			*out = lv_bool(contains(&l, &r, st->a));
			return 0;
		}
		rc = lv_compare(&l, &r, &c);
		if (rc < 0)
			return lq_error(st, e->pos,
					"comparison of %s with %s failed",
					lv_type_name(&l), lv_type_name(&r));
		if (rc > 0) {
			*out = lv_bool(0);
			return 0;
		}
		switch (e->op) {
		case OP_LT: *out = lv_bool(c < 0); break;
		case OP_GT: *out = lv_bool(c > 0); break;
		case OP_LE: *out = lv_bool(c <= 0); break;
		default: *out = lv_bool(c >= 0); break;
		}
		return 0;
	}
	*out = lv_nil();
	return 0;
}

static int eval_fexpr(struct rstate *st, const struct fexpr *fe, struct lv *out)
{
	size_t i, j;
	uint8_t in_safe;

	if (!fe->e) {
		*out = lv_nil();
		return 0;
	}
	if (eval(st, fe->e, out))
		return R_ERR;
	for (i = 0; i < fe->nf; i++) {
		const struct filter_call *fc = &fe->f[i];
		struct lv args[32], kwv[16], res;

		if (!fc->def)
			continue; /* lax: unknown filters pass input through */
		for (j = 0; j < fc->nargs; j++)
			if (eval(st, fc->args[j], &args[j]))
				return R_ERR;
		for (j = 0; j < fc->nkw; j++)
			if (eval(st, fc->kw[j].v, &kwv[j]))
				return R_ERR;
		st->filter_pos = fc->pos;
		res = lv_nil();
		in_safe = out->safe;
		if (fc->def->fn(st, out, args, fc->nargs, kwv, fc->kw, fc->nkw,
				&res))
			return lq_error(st, fc->pos, "filter '%s' failed",
					fc->name);
		/* autoescape: escape | upcase stays escaped */
		res.safe = (uint8_t)(fc->def->safe == 2 ? in_safe : fc->def->safe);
		*out = res;
		if (st->a->over)
			return lq_error(st, fc->pos, "memory limit exceeded");
	}
	return 0;
}

/* ---- output ------------------------------------------------------------- */

static void write_escaped(struct liquid_buf *b, const char *s, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		const char *rep;

		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: continue;
		}
		lq_buf_add(b, s + start, i - start);
		lq_buf_adds(b, rep);
		start = i + 1;
	}
	lq_buf_add(b, s + start, n - start);
}

static void emit(struct rstate *st, const struct lv *v)
{
	if (st->root->opts.autoescape && !v->safe && v->t != LV_INT &&
	    v->t != LV_FLOAT && v->t != LV_BOOL && v->t != LV_NIL) {
		struct lv s = lv_to_str(st->a, v);

		write_escaped(st->out, s.s.p, s.s.n);
	} else {
		lv_write(st->out, v);
	}
}

/* ---- nodes -------------------------------------------------------------- */

static int render_block(struct rstate *st, const struct block *b);

static int check_limits(struct rstate *st, uint32_t pos)
{
	if (st->out->len > st->root->opts.limits.max_output)
		return lq_error(st, pos, "output limit of %zu bytes exceeded",
				st->root->opts.limits.max_output);
	if (st->a->over)
		return lq_error(st, pos, "memory limit exceeded");
	return 0;
}

static int count_iteration(struct rstate *st, uint32_t pos)
{
	return lq_count_iterations(st, 1, pos);
}

int lq_count_iterations(struct rstate *st, uint64_t n, uint32_t pos)
{
	uint64_t max = st->root->opts.limits.max_iterations;

	if (n > max || (st->iterations += n) > max)
		return lq_error(st, pos, "loop iteration limit of %llu exceeded",
				(unsigned long long)max);
	return 0;
}

/* the items a for loop visits, as Ruby's slice_collection sees them */
struct seq {
	struct lv coll;
	int kind; /* 0 array-like, 1 object pairs, 2 single string */
	void *iter;
	size_t n;
};

static int seq_init(struct seq *s, const struct lv *c)
{
	s->coll = *c;
	s->iter = NULL;
	if (lv_is_array(c)) {
		s->kind = 0;
		s->n = lv_len(c);
	} else if (lv_is_object(c)) {
		s->kind = 1;
		s->n = lv_obj_size(c);
	} else if (c->t == LV_STR) {
		s->kind = 2;
		s->n = c->s.n ? 1 : 0;
	} else {
		s->n = 0;
	}
	return 0;
}

static struct lv seq_at(struct rstate *st, struct seq *s, size_t i)
{
	if (s->kind == 0)
		return lv_at(&s->coll, i);
	if (s->kind == 2)
		return s->coll;
	{
		/* object: [key, value] pairs, in insertion order */
		const char *k;
		size_t kn;
		struct lv r = lv_nil(), v;

		if (lv_obj_pair(&s->coll, i, &k, &kn, &v)) {
			struct lv *pair = arena_alloc(st->a, 2 * sizeof(*pair));

			pair[0] = lv_str(k, kn);
			pair[1] = v;
			r.t = LV_ARRAY;
			r.a.v = pair;
			r.a.n = 2;
		}
		return r;
	}
}

/* The slice [*from_r, *to_r) of a LEN-item collection that a for or
 * tablerow loop's offset and limit select; START is where offset:continue
 * begins (for only: the parser accepts it on tablerow, which starts at 0).
 * One reading for both tags, Ruby's for: a nil offset is 0, a nil limit is
 * no limit; both are clamped to the collection.  0, or R_ERR (error set)
 * when offset or limit is not an integer. */
static int loop_slice(struct rstate *st, const struct node *n, int64_t len,
		      int64_t start, int64_t *from_r, int64_t *to_r)
{
	struct lv v;
	int64_t from = 0, to = len;

	if (n->loop.offset_continue) {
		from = start;
	} else if (n->loop.offset) {
		if (eval(st, n->loop.offset, &v) ||
		    to_int_strict(st, &v, n->loop.offset->pos, &from))
			return R_ERR;
	}
	if (from < 0)
		from = 0;
	if (n->loop.limit) {
		int64_t lim;

		if (eval(st, n->loop.limit, &v) ||
		    to_int_strict(st, &v, n->loop.limit->pos, &lim))
			return R_ERR;
		if (lim < 0)
			lim = 0;
		if (v.t != LV_NIL && from + lim < to)
			to = from + lim;
	}
	if (from > len)
		from = len;
	if (to < from)
		to = from;
	*from_r = from;
	*to_r = to;
	return 0;
}

static int render_for(struct rstate *st, const struct node *n)
{
	struct lv c;
	struct seq s;
	int64_t from, to, len, i;
	struct forloop fl;
	struct var *offv = NULL;
	size_t lbase = st->locals.n;
	int r = R_OK;

	if (eval(st, n->loop.coll, &c))
		return R_ERR;
	seq_init(&s, &c);
	len = (int64_t)s.n;
	if (n->loop.offset_continue)
		offv = vv_find(&st->offsets, 0, n->loop.key, n->loop.keylen);
	if (loop_slice(st, n, len, offv ? offv->val.i : 0, &from, &to))
		return R_ERR;
	vv_set(st, &st->offsets, n->loop.key, n->loop.keylen, lv_int(to));
	if (to == from)
		return render_block(st, &n->loop.els);

	memset(&fl, 0, sizeof(fl));
	fl.name = n->loop.key;
	fl.name_len = n->loop.keylen;
	fl.length = to - from;
	fl.parent = st->loop;
	st->loop = &fl;
	vv_push(st, &st->locals, n->loop.var, n->loop.vlen);
	{
		struct var *fv = vv_push(st, &st->locals, "forloop", 7);

		fv->val.t = LV_FORLOOP;
		fv->val.fl = &fl;
	}
	for (i = 0; i < fl.length; i++) {
		size_t idx = (size_t)(n->loop.reversed ? to - 1 - i : from + i);

		if (count_iteration(st, n->pos)) {
			r = R_ERR;
			break;
		}
		fl.index0 = i;
		st->locals.v[lbase].val = seq_at(st, &s, idx);
		r = render_block(st, &n->loop.body);
		if (r == R_ERR)
			break;
		if (r == R_BREAK) {
			r = R_OK;
			break;
		}
		r = R_OK;
	}
	st->locals.n = lbase;
	st->loop = fl.parent;
	return r;
}

static int render_tablerow(struct rstate *st, const struct node *n)
{
	struct lv c, v;
	struct seq s;
	int64_t from, to, len, i, cols = 0;
	struct forloop fl;
	size_t lbase = st->locals.n;
	char tmp[64];
	int r = R_OK;

	if (eval(st, n->loop.coll, &c))
		return R_ERR;
	if (c.t == LV_NIL)
		return R_OK;
	seq_init(&s, &c);
	len = (int64_t)s.n;
	if (loop_slice(st, n, len, 0, &from, &to))
		return R_ERR;
	if (n->loop.cols && (eval(st, n->loop.cols, &v) ||
			     to_int(st, &v, n->loop.cols->pos, &cols)))
		return R_ERR;
	memset(&fl, 0, sizeof(fl));
	fl.tablerow = 1;
	fl.length = to - from;
	if (cols <= 0)
		cols = fl.length;
	fl.cols = cols;
	fl.row = 1;
	lq_buf_adds(st->out, "<tr class=\"row1\">\n");
	vv_push(st, &st->locals, n->loop.var, n->loop.vlen);
	{
		struct var *fv = vv_push(st, &st->locals, "tablerowloop", 12);

		fv->val.t = LV_FORLOOP;
		fv->val.fl = &fl;
	}
	for (i = 0; i < fl.length; i++) {
		if (count_iteration(st, n->pos)) {
			r = R_ERR;
			break;
		}
		fl.index0 = i;
		st->locals.v[lbase].val = seq_at(st, &s, (size_t)(from + i));
		snprintf(tmp, sizeof(tmp), "<td class=\"col%lld\">",
			 (long long)fl.col0 + 1);
		lq_buf_adds(st->out, tmp);
		r = render_block(st, &n->loop.body);
		if (r == R_ERR)
			break;
		lq_buf_adds(st->out, "</td>");
		if (cols && fl.col0 + 1 == cols && i != fl.length - 1) {
			snprintf(tmp, sizeof(tmp), "</tr>\n<tr class=\"row%lld\">",
				 (long long)fl.row + 1);
			lq_buf_adds(st->out, tmp);
		}
		if (cols && fl.col0 + 1 == cols) {
			fl.col0 = 0;
			fl.row++;
		} else {
			fl.col0++;
		}
		if (r == R_BREAK)
			break;
		r = R_OK;
	}
	st->locals.n = lbase;
	if (r == R_ERR)
		return r;
	lq_buf_adds(st->out, "</tr>\n");
	return R_OK;
}

static const struct liquid_template *find_partial(struct rstate *st,
						  const struct node *n)
{
	const struct partial *p = n->incl.part;
	struct lv name;
	size_t i;

	if (!p) {
		struct partial_table *pt = st->root->partials;
		char *src, *fname = NULL, *nm;
		size_t len = 0;
		struct liquid_template *t;
		struct liquid_error perr;

		if (eval(st, n->incl.name_expr, &name))
			return NULL;
		if (name.t != LV_STR) {
			lq_error(st, n->pos, "partial name must be a string");
			return NULL;
		}
		for (i = 0; pt && i < pt->n; i++)
			if (pt->v[i]->nlen == name.s.n &&
			    !memcmp(pt->v[i]->name, name.s.p, name.s.n)) {
				p = pt->v[i];
				break;
			}
		for (i = 0; !p && i < st->ntemps; i++)
			if (strlen(st->temp_names[i]) == name.s.n &&
			    !memcmp(st->temp_names[i], name.s.p, name.s.n))
				return st->temps[i];
		if (!p) {
			const struct liquid_options *o = &st->root->opts;

			if (st->ntemps >= 1024) {
				lq_error(st, n->pos, "too many partials");
				return NULL;
			}
			nm = lq_xstrndup(name.s.p, name.s.n);
			src = o->loader ? o->loader(o->loader_data, nm, &len,
						    &fname)
					: NULL;
			if (!src) {
				lq_error(st, n->pos, "partial '%s' not found", nm);
				free(nm);
				free(fname);
				return NULL;
			}
			t = lq_parse(src, len, fname ? fname : nm, o, NULL, NULL, &perr);
			free(src);
			free(fname);
			if (!t) {
				free(nm);
				if (!st->failed && st->err)
					*st->err = perr;
				st->failed = 1;
				return NULL;
			}
			st->temps = lq_xrealloc(st->temps, (st->ntemps + 1) *
							     sizeof(*st->temps));
			st->temp_names = lq_xrealloc(st->temp_names,
						     (st->ntemps + 1) *
							     sizeof(*st->temp_names));
			st->temps[st->ntemps] = t;
			st->temp_names[st->ntemps++] = nm;
			return t;
		}
	}
	if (!p->tpl) {
		lq_error(st, n->pos, "partial '%s' not found", p->name);
		return NULL;
	}
	return p->tpl;
}

static int render_partial_body(struct rstate *st, const struct node *n,
			       const struct liquid_template *t)
{
	const struct liquid_template *saved = st->cur;
	int r;

	if (st->depth >= st->root->opts.limits.max_depth)
		return lq_error(st, n->pos,
				"render/include nesting deeper than %d",
				st->root->opts.limits.max_depth);
	st->depth++;
	st->cur = t;
	r = render_block(st, &t->root);
	st->cur = saved;
	st->depth--;
	return r;
}

static int render_include(struct rstate *st, const struct node *n)
{
	const struct liquid_template *t = find_partial(st, n);
	size_t lbase = st->locals.n, i;
	struct lv val = lv_nil();
	int r = R_OK;

	if (!t)
		return R_ERR;
	for (i = 0; i < n->incl.nkw; i++) {
		struct lv kv;

		if (eval(st, n->incl.kw[i].v, &kv))
			return R_ERR;
		vv_push(st, &st->locals, n->incl.kw[i].k, n->incl.kw[i].klen)
			->val = kv;
	}
	if (n->incl.with) {
		if (eval(st, n->incl.with, &val))
			goto out_err;
	} else if (n->incl.alias) {
		lookup_root(st, n->incl.alias, n->incl.alen, &val);
	}
	if (n->incl.alias && n->incl.with && lv_is_array(&val) &&
	    val.t != LV_RANGE) {
		size_t cnt = lv_len(&val);
		struct var *av = vv_push(st, &st->locals, n->incl.alias,
					 n->incl.alen);
		size_t ai = (size_t)(av - st->locals.v);

		for (i = 0; i < cnt; i++) {
			if (count_iteration(st, n->pos))
				goto out_err;
			st->locals.v[ai].val = lv_at(&val, i);
			r = render_partial_body(st, n, t);
			if (r)
				break;
		}
	} else {
		if (n->incl.alias)
			vv_push(st, &st->locals, n->incl.alias, n->incl.alen)
				->val = val;
		r = render_partial_body(st, n, t);
	}
	st->locals.n = lbase;
	return r;
out_err:
	st->locals.n = lbase;
	return R_ERR;
}

static int render_render(struct rstate *st, const struct node *n)
{
	const struct liquid_template *t = find_partial(st, n);
	struct ctx c, *saved = st->ctx;
	struct forloop *saved_loop = st->loop;
	struct lv val = lv_nil(), kv;
	size_t lbase = st->locals.n, i;
	int r = R_OK;

	if (!t)
		return R_ERR;
	memset(&c, 0, sizeof(c));
	c.locals_base = lbase;
	for (i = 0; i < n->incl.nkw; i++) {
		if (eval(st, n->incl.kw[i].v, &kv))
			return R_ERR;
		vv_set(st, &c.assigns, n->incl.kw[i].k, n->incl.kw[i].klen, kv);
	}
	if (n->incl.with && eval(st, n->incl.with, &val))
		return R_ERR;
	st->ctx = &c;
	st->loop = NULL;
	if (n->incl.with && n->incl.is_for &&
	    (lv_is_array(&val) || lv_is_object(&val))) {
		struct seq s;
		struct forloop fl;
		struct var *fv;
		size_t cnt;

		seq_init(&s, &val);
		cnt = s.n;
		memset(&fl, 0, sizeof(fl));
		fl.name = n->incl.part ? n->incl.part->name : "";
		fl.name_len = strlen(fl.name);
		fl.length = (int64_t)cnt;
		fv = vv_push(st, &st->locals, "forloop", 7);
		fv->val.t = LV_FORLOOP;
		fv->val.fl = &fl;
		for (i = 0; i < cnt; i++) {
			if (count_iteration(st, n->pos)) {
				r = R_ERR;
				break;
			}
			fl.index0 = (int64_t)i;
			vv_set(st, &c.assigns, n->incl.alias, n->incl.alen,
			       seq_at(st, &s, i));
			r = render_partial_body(st, n, t);
			if (r == R_ERR)
				break;
			r = R_OK;
		}
	} else {
		if (n->incl.with)
			vv_set(st, &c.assigns, n->incl.alias, n->incl.alen, val);
		r = render_partial_body(st, n, t);
		if (r != R_ERR)
			r = R_OK;
	}
	st->locals.n = lbase;
	st->ctx = saved;
	st->loop = saved_loop;
	return r;
}

static int render_node(struct rstate *st, const struct node *n)
{
	struct arena_mark m;
	struct lv v;
	size_t i, j;
	int r;

	switch (n->kind) {
	case N_TEXT:
		lq_buf_add(st->out, n->text.p, n->text.n);
		return R_OK;
	case N_OUTPUT:
		m = arena_mark(st->a);
		if (eval_fexpr(st, &n->out, &v))
			return R_ERR;
		emit(st, &v);
		arena_release(st->a, m);
		return R_OK;
	case N_IF:
		for (i = 0; i < n->cond.n; i++) {
			const struct cond_branch *b = &n->cond.br[i];

			if (b->cond) {
				m = arena_mark(st->a);
				if (eval(st, b->cond, &v))
					return R_ERR;
				arena_release(st->a, m);
				if (lv_truthy(&v) == b->negate)
					continue;
			}
			return render_block(st, &b->body);
		}
		return R_OK;
	case N_CASE: {
		struct lv subj;
		int any = 0;

		if (eval(st, n->kase.subject, &subj))
			return R_ERR;
		for (i = 0; i < n->kase.n; i++) {
			const struct when_branch *b = &n->kase.br[i];
			int hit = 0;

			if (!b->vals) {
				hit = !any;
			} else {
				/* Ruby makes one condition per value: the
				 * body renders once per matching value */
				for (j = 0; j < b->nvals; j++) {
					if (eval(st, b->vals[j], &v))
						return R_ERR;
					if (!lv_equal(&subj, &v))
						continue;
					any = 1;
					r = render_block(st, &b->body);
					if (r)
						return r;
				}
				continue;
			}
			if (hit) {
				r = render_block(st, &b->body);
				if (r)
					return r;
			}
		}
		return R_OK;
	}
	case N_FOR:
		return render_for(st, n);
	case N_TABLEROW:
		return render_tablerow(st, n);
	case N_ASSIGN:
		if (eval_fexpr(st, &n->assign.val, &v))
			return R_ERR;
		vv_set(st, &st->ctx->assigns, n->assign.var, n->assign.vlen, v);
		return R_OK;
	case N_CAPTURE: {
		size_t start = st->out->len;
		char *s;

		r = render_block(st, &n->capture.body);
		if (r == R_ERR)
			return r;
		s = arena_strndup(st->a, st->out->data + start,
				  st->out->len - start);
		v = lv_str(s, st->out->len - start);
		st->out->len = start;
		vv_set(st, &st->ctx->assigns, n->capture.var, n->capture.vlen, v);
		return r;
	}
	case N_INCREMENT:
	case N_DECREMENT: {
		struct var *cv = vv_find(&st->ctx->counters, 0, n->counter.var,
					 n->counter.vlen);
		int64_t x;

		if (!cv) {
			cv = vv_push(st, &st->ctx->counters, n->counter.var,
				     n->counter.vlen);
			cv->val = lv_int(0);
		}
		x = cv->val.i;
		if (n->kind == N_INCREMENT) {
			cv->val.i = x + 1;
		} else {
			x--;
			cv->val.i = x;
		}
		v = lv_int(x);
		lv_write(st->out, &v);
		return R_OK;
	}
	case N_CYCLE: {
		struct lv key;
		struct var *cv;
		int64_t idx;

		if (n->cycle.group) {
			if (eval(st, n->cycle.group, &key))
				return R_ERR;
			key = lv_to_str(st->a, &key);
		} else {
			key = lv_str(n->cycle.key, n->cycle.keylen);
		}
		cv = vv_find(&st->cycles, 0, key.s.p, key.s.n);
		if (!cv) {
			cv = vv_push(st, &st->cycles,
				     arena_strndup(st->a, key.s.p, key.s.n),
				     key.s.n);
			cv->val = lv_int(0);
		}
		/* Ruby: no modulo; past the end prints nothing and wraps */
		idx = cv->val.i;
		cv->val.i = idx + 1 >= (int64_t)n->cycle.nvals ? 0 : idx + 1;
		if (idx >= (int64_t)n->cycle.nvals)
			return R_OK;
		if (eval(st, n->cycle.vals[idx], &v))
			return R_ERR;
		emit(st, &v);
		return R_OK;
	}
	case N_BREAK:
		return R_BREAK;
	case N_CONTINUE:
		return R_CONTINUE;
	case N_IFCHANGED: {
		size_t start = st->out->len, len;

		r = render_block(st, &n->ifchanged);
		if (r == R_ERR)
			return r;
		len = st->out->len - start;
		if (st->has_ifchanged && st->ifchanged_last.s.n == len &&
		    !memcmp(st->ifchanged_last.s.p, st->out->data + start, len)) {
			st->out->len = start;
		} else {
			st->has_ifchanged = 1;
			st->ifchanged_last = lv_str(
				arena_strndup(st->a, st->out->data + start, len),
				len);
		}
		return r;
	}
	case N_INCLUDE:
		return render_include(st, n);
	case N_RENDER:
		return render_render(st, n);
	}
	return R_OK;
}

static int render_block(struct rstate *st, const struct block *b)
{
	size_t i;
	int r;

	for (i = 0; i < b->n; i++) {
		r = render_node(st, b->v[i]);
		if (r)
			return r;
		if ((st->out->len > st->root->opts.limits.max_output ||
		     st->a->over) &&
		    check_limits(st, b->v[i]->pos))
			return R_ERR;
	}
	return R_OK;
}

/* ---- entry points ------------------------------------------------------- */

static struct scratch *scratch_of(struct liquid_buf *out)
{
	if (!out->scratch) {
		struct scratch *s = lq_xmalloc(sizeof(*s));

		arena_init(&s->tmp);
		arena_init(&s->data);
		out->scratch = s;
	}
	return out->scratch;
}

/* the customer's own zone, when the context is a customer's and the zone
 * is one tz_offset knows */
static const char *customer_zone(struct rstate *st)
{
	struct lv c, z;
	int off;
	char *name;

	if (!lv_obj_get(&st->data, "customer", 8, &c) ||
	    !lv_obj_get(&c, "timezone", 8, &z) || z.t != LV_STR ||
	    z.s.n == 0 || z.s.n > 64)
		return NULL;
	memcpy(st->tzbuf, z.s.p, z.s.n);
	st->tzbuf[z.s.n] = 0;
	name = st->tzbuf;
	st->tz = name;
	if (lq_tz_offset(st, 0, &off))
		return NULL;
	return name;
}

/* CONTEXT_JSON set: parse it into the arena first (the fast path) */
static int render_common(const liquid_template *t, json_t *context,
			 const char *context_json, size_t json_len,
			 const struct liquid_render_options *ropts,
			 struct liquid_buf *out, struct liquid_error *err)
{
	struct rstate st;
	struct ctx root;
	struct scratch *sc;
	int r;
	size_t i;

	if (!t || !out) {
		lq_set_error(err, NULL, NULL, 0, 0, "no template or buffer");
		return -1;
	}
	memset(&st, 0, sizeof(st));
	memset(&root, 0, sizeof(root));
	st.root = t;
	st.cur = t;
	sc = scratch_of(out);
	st.a = &sc->tmp;
	arena_reset(st.a);
	st.a->limit = t->opts.limits.max_memory;
	arena_reset(&sc->data);
	st.out = out;
	if (context_json) {
		const char *jerr = NULL;
		size_t off = 0;

		if (lq_json_parse(&sc->data, context_json, json_len, 0, &st.data,
				  &jerr, &off)) {
			lq_set_error(err, "<context>", context_json, json_len, off,
				     "invalid JSON: %s", jerr ? jerr : "error");
			return -1;
		}
		if (st.data.t != LV_OBJECT) {
			lq_set_error(err, "<context>", NULL, 0, 0,
				     "the context must be a JSON object");
			return -1;
		}
	} else if (context && json_is_object(context)) {
		st.data = lv_from_json(context);
	}
	st.ctx = &root;
	st.err = err;
	st.tz = t->opts.timezone;
	st.has_now = t->opts.has_now;
	st.now = t->opts.fixed_now;
	if (ropts) {
		if (ropts->timezone) {
			st.tz = ropts->timezone;
		} else if (ropts->customer_zone) {
			st.tz_pending = 1; /* st.tz is the fallback */
		}
		if (ropts->has_now) {
			st.has_now = 1;
			st.now = ropts->fixed_now;
		}
	}
	if (out->len + 1 > out->cap)
		lq_buf_grow(out, 1);
	r = render_block(&st, &t->root);
	for (i = 0; i < st.ntemps; i++) {
		liquid_template_free(st.temps[i]);
		free(st.temp_names[i]);
	}
	free(st.temps);
	free(st.temp_names);
	out->data[out->len] = 0;
	if (r == R_ERR || st.failed)
		return -1;
	return 0;
}

int liquid_render_ex(const liquid_template *t, json_t *context,
		     const struct liquid_render_options *ropts,
		     struct liquid_buf *out, struct liquid_error *err)
{
	return render_common(t, context, NULL, 0, ropts, out, err);
}

int liquid_render_json(const liquid_template *t, const char *json, size_t len,
		       const struct liquid_render_options *ropts,
		       struct liquid_buf *out, struct liquid_error *err)
{
	if (!json) {
		lq_set_error(err, "<context>", NULL, 0, 0, "no context");
		return -1;
	}
	return render_common(t, NULL, json, len, ropts, out, err);
}

int liquid_render(const liquid_template *t, json_t *context,
		  struct liquid_buf *out, struct liquid_error *err)
{
	return liquid_render_ex(t, context, NULL, out, err);
}

int liquid_condition_eval(const liquid_expr *e, json_t *context, int *result_r,
			  struct liquid_error *err)
{
	struct rstate st;
	struct ctx root;
	struct arena a;
	struct liquid_buf dummy;
	struct lv v;
	int r;

	if (!e)
		return -1;
	memset(&st, 0, sizeof(st));
	memset(&root, 0, sizeof(root));
	arena_init(&a);
	liquid_buf_init(&dummy);
	st.root = e->t;
	st.cur = e->t;
	st.a = &a;
	st.out = &dummy;
	if (context && json_is_object(context))
		st.data = lv_from_json(context);
	st.ctx = &root;
	st.err = err;
	r = eval(&st, e->e, &v);
	if (r == 0)
		*result_r = lv_truthy(&v);
	else if (err && e->line > 1)
		err->line += e->line - 1;
	arena_free(&a);
	liquid_buf_free(&dummy);
	return r ? -1 : 0;
}

/*
 * parse.c: Liquid source to compiled tree (struct node / struct expr), with
 * exact file:line:col errors.  Follows Ruby Liquid 5's strict parser.
 *
 * Everything the tree points to lives in the template's pool or in its own
 * copy of the source; the template is immutable once parsed, which is what
 * makes concurrent renders safe.  Never reads files itself: partials come
 * through the caller's loader.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "liquid_int.h"

/* ---- errors and positions ---------------------------------------------- */

void lq_pos_to_linecol(const char *src, size_t len, size_t pos, int *line_r,
		       int *col_r)
{
	size_t i;
	int line = 1, col = 1;

	if (pos > len)
		pos = len;
	for (i = 0; i < pos; i++) {
		if (src[i] == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)src[i] & 0xC0) != 0x80) {
			col++;
		}
	}
	*line_r = line;
	*col_r = col;
}

void lq_set_error(struct liquid_error *err, const char *filename,
		  const char *src, size_t srclen, size_t pos, const char *fmt,
		  ...)
{
	va_list ap;

	if (!err)
		return;
	snprintf(err->filename, sizeof(err->filename), "%s",
		 filename ? filename : "<template>");
	if (src)
		lq_pos_to_linecol(src, srclen, pos, &err->line, &err->column);
	else
		err->line = err->column = 0;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* ---- parser state ------------------------------------------------------- */

struct pstate {
	struct liquid_template *t;
	struct arena *pool;
	const char *src; /* the template's own copy */
	size_t len;
	struct liquid_error *err;
	int failed;
	int depth;
	int edepth;
	const struct liquid_options *opts;
	struct partial_table *partials;
	struct lint_ctx *lint;
};

static int perr(struct pstate *ps, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int perr(struct pstate *ps, size_t pos, const char *fmt, ...)
{
	va_list ap;
	char msg[400];

	if (ps->failed)
		return -1;
	ps->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lq_set_error(ps->err, ps->t->filename, ps->src, ps->len, pos, "%s", msg);
	return -1;
}

static void *palloc(struct pstate *ps, size_t n)
{
	void *p = arena_alloc(ps->pool, n);

	memset(p, 0, n);
	return p;
}

/* ---- markup lexer ------------------------------------------------------- */

enum mk {
	M_EOF,
	M_ID,
	M_STR,
	M_INT,
	M_FLOAT,
	M_DOT,
	M_DOTDOT,
	M_LBRACK,
	M_RBRACK,
	M_LPAREN,
	M_RPAREN,
	M_COLON,
	M_COMMA,
	M_PIPE,
	M_CMP,
	M_EQ,
	M_BAD,
};

struct mtok {
	int k;
	const char *p;
	size_t n;
	uint32_t pos;
	int op;
};

struct mlex {
	struct pstate *ps;
	const char *p, *end;
	struct mtok cur;
};

static int is_idc(int c)
{
	return isalnum(c) || c == '_' || c == '-';
}

static void mnext(struct mlex *ml)
{
	const char *p = ml->p, *e = ml->end;
	struct mtok *t = &ml->cur;

	while (p < e && isspace((unsigned char)*p))
		p++;
	t->p = p;
	t->pos = (uint32_t)(p - ml->ps->src);
	t->op = 0;
	if (p >= e) {
		t->k = M_EOF;
		t->n = 0;
		ml->p = p;
		return;
	}
	switch (*p) {
	case '\'':
	case '"': {
		const char *q = memchr(p + 1, *p, (size_t)(e - p - 1));

		if (!q) {
			t->k = M_BAD;
			t->n = 1;
			ml->p = p + 1;
			return;
		}
		t->k = M_STR;
		t->p = p + 1;
		t->n = (size_t)(q - p - 1);
		ml->p = q + 1;
		return;
	}
	case '.':
		if (p + 1 < e && p[1] == '.') {
			t->k = M_DOTDOT;
			t->n = 2;
		} else {
			t->k = M_DOT;
			t->n = 1;
		}
		ml->p = p + t->n;
		return;
	case '[': t->k = M_LBRACK; goto one;
	case ']': t->k = M_RBRACK; goto one;
	case '(': t->k = M_LPAREN; goto one;
	case ')': t->k = M_RPAREN; goto one;
	case ':': t->k = M_COLON; goto one;
	case ',': t->k = M_COMMA; goto one;
	case '|': t->k = M_PIPE; goto one;
	case '=':
		if (p + 1 < e && p[1] == '=') {
			t->k = M_CMP;
			t->op = OP_EQ;
			t->n = 2;
		} else {
			t->k = M_EQ;
			t->n = 1;
		}
		ml->p = p + t->n;
		return;
	case '!':
		if (p + 1 < e && p[1] == '=') {
			t->k = M_CMP;
			t->op = OP_NE;
			t->n = 2;
			ml->p = p + 2;
			return;
		}
		t->k = M_BAD;
		goto one;
	case '<':
	case '>':
		t->k = M_CMP;
		if (p + 1 < e && p[1] == '=') {
			t->op = *p == '<' ? OP_LE : OP_GE;
			t->n = 2;
		} else if (*p == '<' && p + 1 < e && p[1] == '>') {
			t->op = OP_NE;
			t->n = 2;
		} else {
			t->op = *p == '<' ? OP_LT : OP_GT;
			t->n = 1;
		}
		ml->p = p + t->n;
		return;
	}
	if (isdigit((unsigned char)*p) ||
	    (*p == '-' && p + 1 < e && isdigit((unsigned char)p[1]))) {
		const char *q = p + 1;

		while (q < e && isdigit((unsigned char)*q))
			q++;
		t->k = M_INT;
		if (q + 1 < e && *q == '.' && isdigit((unsigned char)q[1])) {
			q++;
			while (q < e && isdigit((unsigned char)*q))
				q++;
			t->k = M_FLOAT;
		}
		t->n = (size_t)(q - p);
		ml->p = q;
		return;
	}
	if (isalpha((unsigned char)*p) || *p == '_') {
		const char *q = p + 1;

		while (q < e && is_idc((unsigned char)*q))
			q++;
		if (q < e && *q == '?')
			q++;
		t->k = M_ID;
		t->n = (size_t)(q - p);
		ml->p = q;
		return;
	}
	t->k = M_BAD;
one:
	t->n = 1;
	ml->p = p + 1;
}

static void mlex_init(struct mlex *ml, struct pstate *ps, const char *p,
		      size_t n)
{
	ml->ps = ps;
	ml->p = p;
	ml->end = p + n;
	mnext(ml);
}

static int tok_is(const struct mtok *t, const char *word)
{
	size_t l = strlen(word);

	return t->k == M_ID && t->n == l && memcmp(t->p, word, l) == 0;
}

static const char *mk_name(int k)
{
	static const char *names[] = { "end of tag", "identifier", "string",
				       "integer", "float", "'.'", "'..'",
				       "'['", "']'", "'('", "')'", "':'",
				       "','", "'|'", "comparison", "'='",
				       "unexpected character" };
	return names[k];
}

static int unexpected(struct mlex *ml, const char *what)
{
	const struct mtok *t = &ml->cur;

	if (t->k == M_EOF)
		return perr(ml->ps, t->pos, "expected %s, found end of tag",
			    what);
	if (t->k == M_BAD)
		return perr(ml->ps, t->pos, "unexpected character '%.*s'",
			    (int)t->n, t->p);
	return perr(ml->ps, t->pos, "expected %s, found %s '%.*s'", what,
		    mk_name(t->k), (int)(t->n > 40 ? 40 : t->n), t->p);
}

static int expect(struct mlex *ml, int k)
{
	if (ml->cur.k != k)
		return unexpected(ml, mk_name(k));
	mnext(ml);
	return 0;
}

/* ---- expressions -------------------------------------------------------- */

static struct expr *new_expr(struct pstate *ps, int kind, uint32_t pos)
{
	struct expr *e = palloc(ps, sizeof(*e));

	e->kind = (uint8_t)kind;
	e->pos = pos;
	return e;
}

static struct expr *parse_primary(struct mlex *ml);

static int parse_number(struct mlex *ml, struct lv *v)
{
	char tmp[64];
	size_t n = ml->cur.n < sizeof(tmp) - 1 ? ml->cur.n : sizeof(tmp) - 1;

	memcpy(tmp, ml->cur.p, n);
	tmp[n] = 0;
	errno = 0;
	if (ml->cur.k == M_INT) {
		long long x = strtoll(tmp, NULL, 10);

		if (errno == ERANGE)
			*v = lv_float(strtod(tmp, NULL));
		else
			*v = lv_int(x);
	} else {
		*v = lv_float(strtod(tmp, NULL));
	}
	return 0;
}

static int parse_lookups(struct mlex *ml, struct expr *e)
{
	struct path_seg segs[64];
	size_t n = e->var.nsegs;

	if (n)
		memcpy(segs, e->var.segs, n * sizeof(segs[0]));
	for (;;) {
		if (n >= sizeof(segs) / sizeof(segs[0]))
			return perr(ml->ps, ml->cur.pos, "lookup chain too long");
		if (ml->cur.k == M_DOT) {
			mnext(ml);
			if (ml->cur.k != M_ID)
				return unexpected(ml, "identifier");
			segs[n].kind = SEG_KEY;
			segs[n].key = ml->cur.p;
			segs[n].klen = ml->cur.n;
			segs[n].e = NULL;
			n++;
			mnext(ml);
		} else if (ml->cur.k == M_LBRACK) {
			struct expr *k;

			mnext(ml);
			k = parse_primary(ml);
			if (!k || expect(ml, M_RBRACK))
				return -1;
			if (k->kind == EX_LIT && k->lit.t == LV_STR) {
				segs[n].kind = SEG_KEY;
				segs[n].key = k->lit.s.p;
				segs[n].klen = k->lit.s.n;
				segs[n].e = NULL;
			} else {
				segs[n].kind = SEG_EXPR;
				segs[n].e = k;
			}
			n++;
		} else {
			break;
		}
	}
	e->var.nsegs = n;
	e->var.segs = palloc(ml->ps, n * sizeof(segs[0]) + 1);
	memcpy(e->var.segs, segs, n * sizeof(segs[0]));
	return 0;
}

static struct expr *parse_primary_(struct mlex *ml);

/* bounded recursion: a[b[c[...]]] and ((..)..) nest */
static struct expr *parse_primary(struct mlex *ml)
{
	struct expr *e;

	if (++ml->ps->edepth > 64) {
		perr(ml->ps, ml->cur.pos, "expression nested too deeply");
		ml->ps->edepth--;
		return NULL;
	}
	e = parse_primary_(ml);
	ml->ps->edepth--;
	return e;
}

static struct expr *parse_primary_(struct mlex *ml)
{
	struct pstate *ps = ml->ps;
	struct mtok t = ml->cur;
	struct expr *e;

	switch (t.k) {
	case M_STR:
		e = new_expr(ps, EX_LIT, t.pos);
		e->lit = lv_str(t.p, t.n);
		mnext(ml);
		return e;
	case M_INT:
	case M_FLOAT:
		e = new_expr(ps, EX_LIT, t.pos);
		parse_number(ml, &e->lit);
		mnext(ml);
		return e;
	case M_LPAREN:
		e = new_expr(ps, EX_RANGE, t.pos);
		mnext(ml);
		e->range.lo = parse_primary(ml);
		if (!e->range.lo || expect(ml, M_DOTDOT))
			return NULL;
		e->range.hi = parse_primary(ml);
		if (!e->range.hi || expect(ml, M_RPAREN))
			return NULL;
		return e;
	case M_ID:
		mnext(ml);
		if (ml->cur.k != M_DOT && ml->cur.k != M_LBRACK) {
			struct lv v = { 0 };
			int lit = 1;

			if (t.n == 4 && !memcmp(t.p, "true", 4))
				v = lv_bool(1);
			else if (t.n == 5 && !memcmp(t.p, "false", 5))
				v = lv_bool(0);
			else if ((t.n == 3 && !memcmp(t.p, "nil", 3)) ||
				 (t.n == 4 && !memcmp(t.p, "null", 4)))
				v = lv_nil();
			else if (t.n == 5 && !memcmp(t.p, "empty", 5))
				v.t = LV_EMPTY;
			else if (t.n == 5 && !memcmp(t.p, "blank", 5))
				v.t = LV_BLANK;
			else
				lit = 0;
			if (lit) {
				e = new_expr(ps, EX_LIT, t.pos);
				e->lit = v;
				return e;
			}
		}
		e = new_expr(ps, EX_VAR, t.pos);
		e->var.name = t.p;
		e->var.nlen = t.n;
		if (parse_lookups(ml, e))
			return NULL;
		return e;
	case M_LBRACK: {
		struct expr *k;

		e = new_expr(ps, EX_VAR, t.pos);
		mnext(ml);
		k = parse_primary(ml);
		if (!k || expect(ml, M_RBRACK))
			return NULL;
		e->var.segs = palloc(ps, sizeof(struct path_seg));
		e->var.nsegs = 1;
		if (k->kind == EX_LIT && k->lit.t == LV_STR) {
			/* ["name"] is the variable name */
			e->var.name = k->lit.s.p;
			e->var.nlen = k->lit.s.n;
			e->var.nsegs = 0;
		} else {
			e->var.segs[0].kind = SEG_EXPR;
			e->var.segs[0].e = k;
		}
		if (parse_lookups(ml, e))
			return NULL;
		return e;
	}
	default:
		unexpected(ml, "expression");
		return NULL;
	}
}

static struct expr *parse_cmp(struct mlex *ml)
{
	struct expr *l = parse_primary(ml), *e;
	int op;

	if (!l)
		return NULL;
	if (ml->cur.k == M_CMP)
		op = ml->cur.op;
	else if (tok_is(&ml->cur, "contains"))
		op = OP_CONTAINS;
	else
		return l;
	e = new_expr(ml->ps, EX_CMP, ml->cur.pos);
	e->op = (uint8_t)op;
	mnext(ml);
	e->bin.l = l;
	e->bin.r = parse_primary(ml);
	return e->bin.r ? e : NULL;
}

/* and/or group right to left, as Ruby Liquid does: a and b or c is
 * a and (b or c).  Built iteratively: chains can be very long. */
static struct expr *parse_cond(struct mlex *ml)
{
	struct expr *first = parse_cmp(ml), *last = NULL, *e;

	if (!first)
		return NULL;
	for (;;) {
		int kind;

		if (tok_is(&ml->cur, "and"))
			kind = EX_AND;
		else if (tok_is(&ml->cur, "or"))
			kind = EX_OR;
		else
			break;
		e = new_expr(ml->ps, kind, ml->cur.pos);
		mnext(ml);
		if (last) {
			e->bin.l = last->bin.r;
			last->bin.r = e;
		} else {
			e->bin.l = first;
			first = e;
		}
		e->bin.r = parse_cmp(ml);
		if (!e->bin.r)
			return NULL;
		last = e;
	}
	return first;
}

/* kwarg lookahead: ID followed by ':' */
static int at_kwarg(struct mlex *ml)
{
	struct mlex save = *ml;
	int r;

	if (ml->cur.k != M_ID)
		return 0;
	mnext(ml);
	r = ml->cur.k == M_COLON;
	*ml = save;
	return r;
}

static int parse_filters(struct mlex *ml, struct fexpr *fe)
{
	struct pstate *ps = ml->ps;
	struct filter_call calls[64];
	size_t nf = 0;

	while (ml->cur.k == M_PIPE) {
		struct filter_call *fc;
		struct expr *args[32];
		struct kwarg kws[16];
		size_t na = 0, nk = 0;

		if (nf >= sizeof(calls) / sizeof(calls[0]))
			return perr(ps, ml->cur.pos, "too many filters");
		mnext(ml);
		if (ml->cur.k != M_ID)
			return unexpected(ml, "filter name");
		fc = &calls[nf++];
		memset(fc, 0, sizeof(*fc));
		fc->name = arena_strndup(ps->pool, ml->cur.p, ml->cur.n);
		fc->pos = ml->cur.pos;
		fc->def = lq_filter_find(ml->cur.p, ml->cur.n);
		if (!fc->def && ps->lint) {
			/* lint lists every unknown filter, then goes on */
			struct liquid_error le;

			lq_set_error(&le, ps->t->filename, ps->src, ps->len,
				     ml->cur.pos, "unknown filter '%s'", fc->name);
			ps->lint->n++;
			ps->lint->fn(ps->lint->ud, &le);
		} else if (!fc->def && ps->opts->strict_filters) {
			return perr(ps, ml->cur.pos, "unknown filter '%s'",
				    fc->name);
		}
		mnext(ml);
		if (ml->cur.k == M_COLON) {
			mnext(ml);
			for (;;) {
				if (at_kwarg(ml)) {
					if (nk >= 16)
						return perr(ps, ml->cur.pos,
							    "too many arguments");
					kws[nk].k = ml->cur.p;
					kws[nk].klen = ml->cur.n;
					mnext(ml);
					mnext(ml);
					kws[nk].v = parse_primary(ml);
					if (!kws[nk].v)
						return -1;
					nk++;
				} else {
					if (na >= 32)
						return perr(ps, ml->cur.pos,
							    "too many arguments");
					args[na] = parse_primary(ml);
					if (!args[na])
						return -1;
					na++;
				}
				if (ml->cur.k != M_COMMA)
					break;
				mnext(ml);
			}
		}
		if (fc->def && ((int)na < fc->def->min_args ||
				(fc->def->max_args >= 0 &&
				 (int)na > fc->def->max_args)))
			return perr(ps, fc->pos,
				    "filter '%s' takes %d to %d arguments, "
				    "got %zu",
				    fc->name, fc->def->min_args,
				    fc->def->max_args, na);
		fc->nargs = na;
		fc->args = palloc(ps, na * sizeof(*args) + 1);
		memcpy(fc->args, args, na * sizeof(*args));
		fc->nkw = nk;
		fc->kw = palloc(ps, nk * sizeof(*kws) + 1);
		memcpy(fc->kw, kws, nk * sizeof(*kws));
	}
	fe->nf = nf;
	fe->f = palloc(ps, nf * sizeof(calls[0]) + 1);
	memcpy(fe->f, calls, nf * sizeof(calls[0]));
	return 0;
}

/* expression with filters up to the end of the markup */
static int parse_fexpr(struct pstate *ps, const char *p, size_t n,
		       struct fexpr *fe, int allow_empty)
{
	struct mlex ml;

	memset(fe, 0, sizeof(*fe));
	mlex_init(&ml, ps, p, n);
	if (ml.cur.k == M_EOF && allow_empty)
		return 0;
	fe->e = parse_primary(&ml);
	if (!fe->e || parse_filters(&ml, fe))
		return -1;
	if (ml.cur.k != M_EOF)
		return unexpected(&ml, "end of tag or '|'");
	return 0;
}

/* ---- template tokens ---------------------------------------------------- */

enum tk { TK_EOF, TK_TEXT, TK_OUT, TK_TAG };

struct tok {
	int k;
	const char *p; /* TEXT: text; OUT/TAG: markup */
	size_t n;
	const char *name;
	size_t nlen;
	uint32_t pos;
};

struct scanner {
	int lines; /* liquid tag: one tag per line */
	const char *s;
	size_t i, end;
	int trim_next;
};

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static const char *find2(const char *s, size_t from, size_t end, char a,
			 char b)
{
	size_t i;

	for (i = from; i + 1 < end; i++) {
		const char *q = memchr(s + i, a, end - i - 1);

		if (!q)
			return NULL;
		i = (size_t)(q - s);
		if (q[1] == b)
			return q;
	}
	return NULL;
}

static void split_tag(struct tok *t, const char *p, size_t n)
{
	const char *e = p + n;

	while (p < e && is_ws(*p))
		p++;
	t->name = p;
	if (p < e && *p == '#') {
		p++;
	} else {
		while (p < e && (isalnum((unsigned char)*p) || *p == '_'))
			p++;
	}
	t->nlen = (size_t)(p - t->name);
	while (p < e && is_ws(*p))
		p++;
	while (e > p && is_ws(e[-1]))
		e--;
	t->p = p;
	t->n = (size_t)(e - p);
}

static int scan(struct pstate *ps, struct scanner *sc, struct tok *t)
{
	const char *s = sc->s;
	size_t i = sc->i;

	memset(t, 0, sizeof(*t));
	t->pos = (uint32_t)i;
	if (sc->lines) {
		/* one tag per non-blank line */
		for (;;) {
			size_t ls, le;
			const char *nl;

			if (i >= sc->end) {
				t->k = TK_EOF;
				sc->i = i;
				return 0;
			}
			nl = memchr(s + i, '\n', sc->end - i);
			ls = i;
			le = nl ? (size_t)(nl - s) : sc->end;
			i = nl ? le + 1 : le;
			while (ls < le && is_ws(s[ls]))
				ls++;
			if (ls == le)
				continue;
			t->k = TK_TAG;
			t->pos = (uint32_t)ls;
			split_tag(t, s + ls, le - ls);
			sc->i = i;
			return 0;
		}
	}
	if (i >= sc->end) {
		t->k = TK_EOF;
		return 0;
	}
	if (s[i] == '{' && i + 1 < sc->end && (s[i + 1] == '{' || s[i + 1] == '%')) {
		int out = s[i + 1] == '{';
		const char *q = find2(s, i + 2, sc->end, out ? '}' : '%', '}');
		const char *p = s + i + 2;

		if (!q)
			return perr(ps, i, out ? "output '{{' was not closed with '}}'"
					       : "tag '{%%' was not closed with '%%}'");
		if (p < q && *p == '-')
			p++;
		sc->trim_next = 0;
		if (q > p && q[-1] == '-') {
			sc->trim_next = 1;
			q--;
		}
		sc->i = (size_t)(q - s) + 2 + (size_t)sc->trim_next;
		if (out) {
			t->k = TK_OUT;
			t->p = p;
			t->n = (size_t)(q - p);
		} else {
			t->k = TK_TAG;
			split_tag(t, p, (size_t)(q - p));
			if (t->nlen == 0)
				return perr(ps, i, "expected a tag name after '{%%'");
		}
		return 0;
	}
	{
		const char *q = s + i, *e = s + sc->end, *start = s + i;

		for (;;) {
			q = memchr(q, '{', (size_t)(e - q));
			if (!q || (q + 1 < e && (q[1] == '{' || q[1] == '%')))
				break;
			q++;
		}
		if (!q)
			q = e;
		sc->i = (size_t)(q - s);
		if (sc->trim_next)
			while (start < q && is_ws(*start))
				start++;
		sc->trim_next = 0;
		if (q + 2 < e && q[2] == '-')
			while (q > start && is_ws(q[-1]))
				q--;
		t->k = TK_TEXT;
		t->p = start;
		t->n = (size_t)(q - start);
		return 0;
	}
}

/* Finds {% endNAME %} for raw-like tags; the body is returned verbatim. */
static int scan_raw(struct pstate *ps, struct scanner *sc, const char *endname,
		    const char **body_r, size_t *len_r, uint32_t open_pos)
{
	const char *s = sc->s;
	size_t i = sc->i, l = strlen(endname);

	for (;;) {
		const char *q = find2(s, i, sc->end, '{', '%'), *p, *c;

		if (!q)
			return perr(ps, open_pos, "'%.*s' tag was never closed",
				    (int)(l - 3), endname + 3);
		p = q + 2;
		if (p < s + sc->end && *p == '-')
			p++;
		while (p < s + sc->end && is_ws(*p))
			p++;
		if ((size_t)(s + sc->end - p) >= l && !memcmp(p, endname, l)) {
			c = p + l;
			while (c < s + sc->end && is_ws(*c))
				c++;
			if (c < s + sc->end && *c == '-')
				c++;
			if (c + 1 < s + sc->end && c[0] == '%' && c[1] == '}') {
				*body_r = s + sc->i;
				*len_r = (size_t)(q - (s + sc->i));
				if (sc->trim_next)
					while (*len_r && is_ws(**body_r)) {
						(*body_r)++;
						(*len_r)--;
					}
				sc->trim_next = c[-1] == '-';
				if (q[2] == '-')
					while (*len_r && is_ws((*body_r)[*len_r - 1]))
						(*len_r)--;
				sc->i = (size_t)(c - s) + 2;
				return 0;
			}
		}
		i = (size_t)(q - s) + 2;
	}
}

/* ---- blocks ------------------------------------------------------------- */

struct nodevec {
	struct node **v;
	size_t n, cap;
};

static void nv_push(struct nodevec *nv, struct node *n)
{
	if (nv->n == nv->cap) {
		nv->cap = nv->cap ? nv->cap * 2 : 16;
		nv->v = lq_xrealloc(nv->v, nv->cap * sizeof(*nv->v));
	}
	nv->v[nv->n++] = n;
}

static int parse_block(struct pstate *ps, struct scanner *sc, struct block *out,
		       const char *const *ends, struct tok *endtok,
		       const char *opener, uint32_t opener_pos, int *blank_r);

static struct node *new_node(struct pstate *ps, int kind, uint32_t pos)
{
	struct node *n = palloc(ps, sizeof(*n));

	n->kind = (uint8_t)kind;
	n->pos = pos;
	return n;
}

static int tname_is(const struct tok *t, const char *name)
{
	size_t l = strlen(name);

	return t->nlen == l && memcmp(t->name, name, l) == 0;
}

/* Ruby drops whitespace-only text from blocks that output nothing else. */
static void strip_blank(struct block *b)
{
	size_t i, j = 0;

	for (i = 0; i < b->n; i++)
		if (b->v[i]->kind != N_TEXT)
			b->v[j++] = b->v[i];
	b->n = j;
}

static int parse_name_only(struct pstate *ps, const struct tok *t,
			   const char **name_r, size_t *len_r)
{
	struct mlex ml;

	mlex_init(&ml, ps, t->p, t->n);
	if (ml.cur.k != M_ID)
		return unexpected(&ml, "variable name");
	*name_r = ml.cur.p;
	*len_r = ml.cur.n;
	mnext(&ml);
	if (ml.cur.k != M_EOF)
		return unexpected(&ml, "end of tag");
	return 0;
}

static struct partial *resolve_partial(struct pstate *ps, const char *name,
				       size_t nlen);

static int parse_if(struct pstate *ps, struct scanner *sc, const struct tok *t,
		    struct node *n, int negate, int *blank_r)
{
	static const char *const ends_if[] = { "elsif", "else", "endif", NULL };
	static const char *const ends_unless[] = { "elsif", "else", "endunless",
						   NULL };
	struct cond_branch br[64];
	size_t nb = 0, i;
	struct tok cur = *t, et;
	int blank = 1, b, r;
	const char *endname = negate ? "endunless" : "endif";

	for (;;) {
		struct mlex ml;

		if (nb >= 64)
			return perr(ps, cur.pos, "too many elsif branches");
		memset(&br[nb], 0, sizeof(br[nb]));
		if (tname_is(&cur, "else")) {
			br[nb].cond = NULL;
		} else {
			mlex_init(&ml, ps, cur.p, cur.n);
			br[nb].cond = parse_cond(&ml);
			if (!br[nb].cond)
				return -1;
			if (ml.cur.k != M_EOF)
				return unexpected(&ml, "end of tag");
			br[nb].negate = negate && nb == 0;
		}
		r = parse_block(ps, sc, &br[nb].body,
				negate ? ends_unless : ends_if, &et,
				negate ? "unless" : "if", t->pos, &b);
		if (r < 0)
			return -1;
		blank &= b;
		nb++;
		if (tname_is(&et, endname))
			break;
		cur = et;
	}
	if (blank)
		for (i = 0; i < nb; i++)
			strip_blank(&br[i].body);
	n->cond.n = nb;
	n->cond.br = palloc(ps, nb * sizeof(br[0]));
	memcpy(n->cond.br, br, nb * sizeof(br[0]));
	*blank_r = blank;
	return 0;
}

static int parse_case(struct pstate *ps, struct scanner *sc,
		      const struct tok *t, struct node *n, int *blank_r)
{
	static const char *const ends[] = { "when", "else", "endcase", NULL };
	struct when_branch br[256];
	struct block pre;
	size_t nb = 0, i;
	struct tok et, cur;
	struct mlex ml;
	int blank = 1, b;

	mlex_init(&ml, ps, t->p, t->n);
	n->kase.subject = parse_primary(&ml);
	if (!n->kase.subject)
		return -1;
	if (ml.cur.k != M_EOF)
		return unexpected(&ml, "end of tag");
	/* whatever comes before the first when is dropped */
	if (parse_block(ps, sc, &pre, ends, &et, "case", t->pos, &b) < 0)
		return -1;
	cur = et;
	while (!tname_is(&cur, "endcase")) {
		struct expr *vals[64];
		size_t nv = 0;

		if (nb >= 256)
			return perr(ps, cur.pos, "too many when branches");
		memset(&br[nb], 0, sizeof(br[nb]));
		if (tname_is(&cur, "when")) {
			mlex_init(&ml, ps, cur.p, cur.n);
			for (;;) {
				if (nv >= 64)
					return perr(ps, ml.cur.pos,
						    "too many when values");
				vals[nv] = parse_primary(&ml);
				if (!vals[nv])
					return -1;
				nv++;
				if (ml.cur.k == M_COMMA || tok_is(&ml.cur, "or")) {
					mnext(&ml);
					continue;
				}
				break;
			}
			/* Ruby's when syntax ignores what follows the values */
			br[nb].vals = palloc(ps, nv * sizeof(vals[0]));
			memcpy(br[nb].vals, vals, nv * sizeof(vals[0]));
			br[nb].nvals = nv;
		} else if (cur.n) {
			return perr(ps, cur.pos, "unexpected arguments to 'else'");
		}
		if (parse_block(ps, sc, &br[nb].body, ends, &et, "case",
				t->pos, &b) < 0)
			return -1;
		blank &= b;
		nb++;
		cur = et;
	}
	if (blank)
		for (i = 0; i < nb; i++)
			strip_blank(&br[i].body);
	n->kase.br = palloc(ps, nb * sizeof(br[0]) + 1);
	memcpy(n->kase.br, br, nb * sizeof(br[0]));
	n->kase.n = nb;
	*blank_r = blank;
	return 0;
}

static int parse_loop_head(struct pstate *ps, const struct tok *t,
			   struct node *n, int tablerow)
{
	struct mlex ml;
	const char *cstart;

	mlex_init(&ml, ps, t->p, t->n);
	if (ml.cur.k != M_ID)
		return unexpected(&ml, "loop variable name");
	n->loop.var = ml.cur.p;
	n->loop.vlen = ml.cur.n;
	mnext(&ml);
	if (!tok_is(&ml.cur, "in"))
		return unexpected(&ml, "'in'");
	mnext(&ml);
	cstart = ml.cur.p;
	n->loop.coll = parse_primary(&ml);
	if (!n->loop.coll)
		return -1;
	{
		/* registry key for offset:continue: "var-collection" */
		size_t cl = (size_t)(ml.cur.p - cstart);
		char *k;

		while (cl && is_ws(cstart[cl - 1]))
			cl--;
		k = palloc(ps, n->loop.vlen + cl + 2);
		memcpy(k, n->loop.var, n->loop.vlen);
		k[n->loop.vlen] = '-';
		memcpy(k + n->loop.vlen + 1, cstart, cl);
		n->loop.key = k;
		n->loop.keylen = n->loop.vlen + 1 + cl;
	}
	for (;;) {
		if (ml.cur.k == M_COMMA) {
			mnext(&ml);
			continue;
		}
		if (ml.cur.k == M_EOF)
			break;
		if (tok_is(&ml.cur, "reversed") && !tablerow) {
			n->loop.reversed = 1;
			mnext(&ml);
			continue;
		}
		if (tok_is(&ml.cur, "limit") || tok_is(&ml.cur, "offset") ||
		    (tablerow && tok_is(&ml.cur, "cols"))) {
			struct expr **slot;
			char which = ml.cur.p[0];

			slot = which == 'l' ? &n->loop.limit
			     : which == 'o' ? &n->loop.offset : &n->loop.cols;
			mnext(&ml);
			if (expect(&ml, M_COLON))
				return -1;
			if (which == 'o' && tok_is(&ml.cur, "continue")) {
				n->loop.offset_continue = 1;
				mnext(&ml);
				continue;
			}
			*slot = parse_primary(&ml);
			if (!*slot)
				return -1;
			continue;
		}
		return unexpected(&ml, tablerow ? "'cols', 'limit' or 'offset'"
					       : "'limit', 'offset' or 'reversed'");
	}
	return 0;
}

static int parse_for(struct pstate *ps, struct scanner *sc, const struct tok *t,
		     struct node *n, int *blank_r)
{
	static const char *const ends[] = { "else", "endfor", NULL };
	static const char *const ends2[] = { "endfor", NULL };
	struct tok et;
	int b1, b2 = 1;

	if (parse_loop_head(ps, t, n, 0))
		return -1;
	if (parse_block(ps, sc, &n->loop.body, ends, &et, "for", t->pos, &b1) < 0)
		return -1;
	if (tname_is(&et, "else") &&
	    parse_block(ps, sc, &n->loop.els, ends2, &et, "for", t->pos, &b2) < 0)
		return -1;
	if (b1 && b2) {
		strip_blank(&n->loop.body);
		strip_blank(&n->loop.els);
	}
	*blank_r = b1 && b2;
	return 0;
}

/* include/render: NAME [with|for EXPR] [as ALIAS] [,] [k: v, ...] */
static int parse_partial_tag(struct pstate *ps, const struct tok *t,
			     struct node *n, int is_render)
{
	struct mlex ml;
	struct kwarg kws[64];
	size_t nk = 0;

	mlex_init(&ml, ps, t->p, t->n);
	if (ml.cur.k == M_STR) {
		n->incl.part = resolve_partial(ps, ml.cur.p, ml.cur.n);
		if (!n->incl.part)
			return -1;
		n->incl.alias = n->incl.part->name;
		n->incl.alen = strlen(n->incl.part->name);
		mnext(&ml);
	} else if (is_render) {
		return unexpected(&ml, "partial name as a string");
	} else {
		n->incl.name_expr = parse_primary(&ml);
		if (!n->incl.name_expr)
			return -1;
	}
	if (tok_is(&ml.cur, "with") || tok_is(&ml.cur, "for")) {
		n->incl.is_for = ml.cur.p[0] == 'f';
		mnext(&ml);
		n->incl.with = parse_primary(&ml);
		if (!n->incl.with)
			return -1;
	}
	if (tok_is(&ml.cur, "as")) {
		mnext(&ml);
		if (ml.cur.k != M_ID)
			return unexpected(&ml, "alias name");
		n->incl.alias = ml.cur.p;
		n->incl.alen = ml.cur.n;
		mnext(&ml);
	}
	for (;;) {
		if (ml.cur.k == M_COMMA) {
			mnext(&ml);
			continue;
		}
		if (ml.cur.k == M_EOF)
			break;
		if (!at_kwarg(&ml))
			return unexpected(&ml, "keyword argument");
		if (nk >= 64)
			return perr(ps, ml.cur.pos, "too many keyword arguments");
		kws[nk].k = ml.cur.p;
		kws[nk].klen = ml.cur.n;
		mnext(&ml);
		mnext(&ml);
		kws[nk].v = parse_primary(&ml);
		if (!kws[nk].v)
			return -1;
		nk++;
	}
	n->incl.nkw = nk;
	n->incl.kw = palloc(ps, nk * sizeof(kws[0]) + 1);
	memcpy(n->incl.kw, kws, nk * sizeof(kws[0]));
	return 0;
}

static int parse_cycle(struct pstate *ps, const struct tok *t, struct node *n)
{
	struct mlex ml, save;
	struct expr *vals[128];
	size_t nv = 0;

	mlex_init(&ml, ps, t->p, t->n);
	save = ml;
	/* named group: "expr:" */
	{
		struct expr *g = parse_primary(&ml);

		if (g && ml.cur.k == M_COLON) {
			n->cycle.group = g;
			mnext(&ml);
		} else {
			ps->failed = 0;
			ml = save;
		}
	}
	for (;;) {
		if (nv >= 128)
			return perr(ps, ml.cur.pos, "too many cycle values");
		vals[nv] = parse_primary(&ml);
		if (!vals[nv])
			return -1;
		nv++;
		if (ml.cur.k != M_COMMA)
			break;
		mnext(&ml);
	}
	if (ml.cur.k != M_EOF)
		return unexpected(&ml, "',' or end of tag");
	n->cycle.vals = palloc(ps, nv * sizeof(vals[0]));
	memcpy(n->cycle.vals, vals, nv * sizeof(vals[0]));
	n->cycle.nvals = nv;
	if (!n->cycle.group) {
		/* unnamed cycles with the same values share a counter */
		n->cycle.key = t->p;
		n->cycle.keylen = t->n;
	}
	return 0;
}

/* Skips a comment body: nested comments and raw blocks are honoured. */
static int skip_comment(struct pstate *ps, struct scanner *sc,
			const struct tok *open, const char *name,
			const char *endname)
{
	struct tok t;
	int depth = 1;

	for (;;) {
		if (scan(ps, sc, &t))
			return -1;
		if (t.k == TK_EOF)
			return perr(ps, open->pos, "'%s' tag was never closed", name);
		if (t.k != TK_TAG)
			continue;
		if (tname_is(&t, name)) {
			depth++;
		} else if (tname_is(&t, endname)) {
			if (--depth == 0)
				return 0;
		} else if (tname_is(&t, "raw") && !sc->lines) {
			const char *b;
			size_t bl;

			if (scan_raw(ps, sc, "endraw", &b, &bl, t.pos))
				return -1;
		}
	}
}

static int valid_inline_comment(const struct tok *t)
{
	/* every line of a multi-line # comment must start with # */
	const char *p = t->p, *e = t->p + t->n;

	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));

		if (!nl)
			break;
		p = nl + 1;
		while (p < e && is_ws(*p))
			p++;
		if (p < e && *p != '#')
			return 0;
	}
	return 1;
}

/* Parses one tag token into *out (NULL when the tag produces no node).
 * Returns 0, or -1 on error. */
static int parse_tag(struct pstate *ps, struct scanner *sc, const struct tok *t,
		     struct nodevec *nv, int *blank_r)
{
	struct node *n = NULL;
	int blank = 0;

	*blank_r = 0;
	if (tname_is(t, "if") || tname_is(t, "unless")) {
		n = new_node(ps, N_IF, t->pos);
		if (parse_if(ps, sc, t, n, t->name[0] == 'u', &blank))
			return -1;
	} else if (tname_is(t, "for")) {
		n = new_node(ps, N_FOR, t->pos);
		if (parse_for(ps, sc, t, n, &blank))
			return -1;
	} else if (tname_is(t, "case")) {
		n = new_node(ps, N_CASE, t->pos);
		if (parse_case(ps, sc, t, n, &blank))
			return -1;
	} else if (tname_is(t, "assign")) {
		const char *p = t->p, *e = t->p + t->n;

		n = new_node(ps, N_ASSIGN, t->pos);
		while (p < e && is_idc((unsigned char)*p))
			p++;
		n->assign.var = t->p;
		n->assign.vlen = (size_t)(p - t->p);
		while (p < e && is_ws(*p))
			p++;
		if (n->assign.vlen == 0 || p >= e || *p != '=')
			return perr(ps, (size_t)(p - ps->src),
				    "expected 'name = value' in assign");
		p++;
		if (parse_fexpr(ps, p, (size_t)(e - p), &n->assign.val, 0))
			return -1;
		blank = 1;
	} else if (tname_is(t, "capture")) {
		static const char *const ends[] = { "endcapture", NULL };
		struct mlex ml;
		struct tok et;
		int b;

		n = new_node(ps, N_CAPTURE, t->pos);
		mlex_init(&ml, ps, t->p, t->n);
		if (ml.cur.k != M_ID && ml.cur.k != M_STR && ml.cur.k != M_INT)
			return unexpected(&ml, "variable name");
		n->capture.var = ml.cur.p;
		n->capture.vlen = ml.cur.n;
		mnext(&ml);
		if (ml.cur.k != M_EOF)
			return unexpected(&ml, "end of tag");
		if (parse_block(ps, sc, &n->capture.body, ends, &et, "capture",
				t->pos, &b) < 0)
			return -1;
		blank = 1;
	} else if (tname_is(t, "increment") || tname_is(t, "decrement")) {
		n = new_node(ps, t->name[0] == 'i' ? N_INCREMENT : N_DECREMENT,
			     t->pos);
		if (parse_name_only(ps, t, &n->counter.var, &n->counter.vlen))
			return -1;
	} else if (tname_is(t, "echo")) {
		n = new_node(ps, N_OUTPUT, t->pos);
		if (parse_fexpr(ps, t->p, t->n, &n->out, 1))
			return -1;
	} else if (tname_is(t, "cycle")) {
		n = new_node(ps, N_CYCLE, t->pos);
		if (parse_cycle(ps, t, n))
			return -1;
	} else if (tname_is(t, "break") || tname_is(t, "continue")) {
		if (t->n)
			return perr(ps, t->pos, "'%.*s' takes no arguments",
				    (int)t->nlen, t->name);
		n = new_node(ps, t->name[0] == 'b' ? N_BREAK : N_CONTINUE,
			     t->pos);
	} else if (tname_is(t, "tablerow")) {
		static const char *const ends[] = { "endtablerow", NULL };
		struct tok et;
		int b;

		n = new_node(ps, N_TABLEROW, t->pos);
		if (parse_loop_head(ps, t, n, 1))
			return -1;
		if (parse_block(ps, sc, &n->loop.body, ends, &et, "tablerow",
				t->pos, &b) < 0)
			return -1;
	} else if (tname_is(t, "ifchanged")) {
		static const char *const ends[] = { "endifchanged", NULL };
		struct tok et;
		int b;

		n = new_node(ps, N_IFCHANGED, t->pos);
		if (parse_block(ps, sc, &n->ifchanged, ends, &et, "ifchanged",
				t->pos, &b) < 0)
			return -1;
		blank = b;
	} else if (tname_is(t, "raw")) {
		const char *body;
		size_t bl;

		if (sc->lines)
			return perr(ps, t->pos, "'raw' is not allowed in a liquid tag");
		if (scan_raw(ps, sc, "endraw", &body, &bl, t->pos))
			return -1;
		n = new_node(ps, N_TEXT, t->pos);
		n->text.p = body;
		n->text.n = bl;
		blank = bl == 0;
	} else if (tname_is(t, "comment")) {
		if (skip_comment(ps, sc, t, "comment", "endcomment"))
			return -1;
		blank = 1;
	} else if (tname_is(t, "doc")) {
		const char *body;
		size_t bl;

		if (t->n)
			return perr(ps, t->pos, "'doc' takes no arguments");
		if (sc->lines) {
			if (skip_comment(ps, sc, t, "doc", "enddoc"))
				return -1;
		} else if (scan_raw(ps, sc, "enddoc", &body, &bl, t->pos)) {
			return -1;
		}
		blank = 1;
	} else if (tname_is(t, "#")) {
		if (!sc->lines && !valid_inline_comment(t))
			return perr(ps, t->pos,
				    "every line of an inline comment must "
				    "start with '#'");
		blank = 1;
	} else if (tname_is(t, "liquid")) {
		struct scanner sub = { 1, ps->src, (size_t)(t->p - ps->src),
				       (size_t)(t->p - ps->src) + t->n, 0 };
		struct block b;
		size_t i;
		int bl;

		if (parse_block(ps, &sub, &b, NULL, NULL, NULL, 0, &bl) < 0)
			return -1;
		for (i = 0; i < b.n; i++)
			nv_push(nv, b.v[i]);
		*blank_r = bl;
		return 0;
	} else if (tname_is(t, "include") || tname_is(t, "render")) {
		n = new_node(ps, t->name[0] == 'i' ? N_INCLUDE : N_RENDER,
			     t->pos);
		if (parse_partial_tag(ps, t, n, t->name[0] == 'r'))
			return -1;
	} else {
		return perr(ps, t->pos, "unknown tag '%.*s'", (int)t->nlen,
			    t->name);
	}
	if (n)
		nv_push(nv, n);
	*blank_r = blank;
	return 0;
}

/* Parses nodes until one of ENDS (returns its index, token in *endtok) or,
 * when ENDS is NULL, the end of input (returns 0). */
static int parse_block(struct pstate *ps, struct scanner *sc, struct block *out,
		       const char *const *ends, struct tok *endtok,
		       const char *opener, uint32_t opener_pos, int *blank_r)
{
	struct nodevec nv = { 0 };
	struct tok t;
	int ret = -1, blank = 1, b;
	size_t i;

	if (++ps->depth > LQ_MAX_NESTING) {
		perr(ps, opener_pos, "blocks nested too deeply");
		goto out;
	}
	for (;;) {
		if (scan(ps, sc, &t))
			goto out;
		if (t.k == TK_EOF) {
			if (ends) {
				perr(ps, opener_pos, "'%s' tag was never closed",
				     opener);
				goto out;
			}
			ret = 0;
			break;
		}
		if (t.k == TK_TEXT) {
			struct node *n;

			if (t.n == 0)
				continue;
			for (i = 0; i < t.n && blank; i++)
				if (!is_ws(t.p[i]))
					blank = 0;
			n = new_node(ps, N_TEXT, t.pos);
			n->text.p = t.p;
			n->text.n = t.n;
			nv_push(&nv, n);
			continue;
		}
		if (t.k == TK_OUT) {
			struct node *n = new_node(ps, N_OUTPUT, t.pos);

			if (parse_fexpr(ps, t.p, t.n, &n->out, 1))
				goto out;
			nv_push(&nv, n);
			blank = 0;
			continue;
		}
		/* a tag: one of our end tags? */
		if (ends) {
			for (i = 0; ends[i]; i++)
				if (tname_is(&t, ends[i]))
					break;
			if (ends[i]) {
				*endtok = t;
				ret = (int)i;
				break;
			}
		}
		if (tname_is(&t, "else") || tname_is(&t, "elsif") ||
		    tname_is(&t, "when") ||
		    (t.nlen > 3 && !memcmp(t.name, "end", 3))) {
			if (opener)
				perr(ps, t.pos, "unexpected '%.*s' in '%s' block",
				     (int)t.nlen, t.name, opener);
			else
				perr(ps, t.pos, "unexpected '%.*s'", (int)t.nlen,
				     t.name);
			goto out;
		}
		if (parse_tag(ps, sc, &t, &nv, &b))
			goto out;
		blank &= b;
	}
	out->n = nv.n;
	out->v = palloc(ps, nv.n * sizeof(*nv.v) + 1);
	if (nv.n)
		memcpy(out->v, nv.v, nv.n * sizeof(*nv.v));
	*blank_r = blank;
out:
	ps->depth--;
	free(nv.v);
	return ret;
}

/* ---- partials ----------------------------------------------------------- */

static struct partial *resolve_partial(struct pstate *ps, const char *name,
				       size_t nlen)
{
	struct partial_table *pt = ps->partials;
	struct partial *p;
	char *src, *fname = NULL;
	size_t i, len = 0;

	for (i = 0; i < pt->n; i++)
		if (pt->v[i]->nlen == nlen && !memcmp(pt->v[i]->name, name, nlen))
			return pt->v[i];
	if (pt->n >= 4096) {
		perr(ps, (size_t)(name - ps->src), "too many partials");
		return NULL;
	}
	if (pt->parsing >= LQ_DEFAULT_MAX_DEPTH) {
		perr(ps, (size_t)(name - ps->src), "partials nested too deeply");
		return NULL;
	}
	p = lq_xmalloc(sizeof(*p));
	memset(p, 0, sizeof(*p));
	p->name = lq_xstrndup(name, nlen);
	p->nlen = nlen;
	if (pt->n == pt->cap) {
		pt->cap = pt->cap ? pt->cap * 2 : 8;
		pt->v = lq_xrealloc(pt->v, pt->cap * sizeof(*pt->v));
	}
	pt->v[pt->n++] = p; /* before parsing: recursion finds it */
	src = ps->opts->loader ? ps->opts->loader(ps->opts->loader_data,
						  p->name, &len, &fname)
			       : NULL;
	if (!src) {
		p->missing = 1;
		free(fname);
		return p;
	}
	pt->parsing++;
	p->tpl = lq_parse(src, len, fname ? fname : p->name, ps->opts, pt,
			  ps->lint, &p->err);
	pt->parsing--;
	free(src);
	free(fname);
	if (!p->tpl) {
		/* a syntax error in a partial fails the whole parse */
		if (!ps->failed) {
			ps->failed = 1;
			if (ps->err)
				*ps->err = p->err;
		}
		return NULL;
	}
	return p;
}

/* ---- entry points ------------------------------------------------------- */

static void fill_limits(struct liquid_options *o)
{
	if (!o->limits.max_output)
		o->limits.max_output = LQ_DEFAULT_MAX_OUTPUT;
	if (!o->limits.max_iterations)
		o->limits.max_iterations = LQ_DEFAULT_MAX_ITER;
	if (!o->limits.max_depth)
		o->limits.max_depth = LQ_DEFAULT_MAX_DEPTH;
	if (!o->limits.max_template_size)
		o->limits.max_template_size = LQ_DEFAULT_MAX_TEMPLATE;
	if (!o->limits.max_memory)
		o->limits.max_memory = LQ_DEFAULT_MAX_MEMORY;
}

void liquid_options_init(struct liquid_options *opts)
{
	memset(opts, 0, sizeof(*opts));
}

static struct liquid_template *tpl_new(const char *src, size_t len,
				       const char *filename,
				       const struct liquid_options *opts)
{
	struct liquid_template *t = lq_xmalloc(sizeof(*t));

	memset(t, 0, sizeof(*t));
	t->src = lq_xstrndup(src, len);
	t->len = len;
	t->filename = lq_xstrndup(filename ? filename : "<template>",
				  strlen(filename ? filename : "<template>"));
	arena_init(&t->pool);
	if (opts)
		t->opts = *opts;
	fill_limits(&t->opts);
	if (t->opts.timezone) {
		snprintf(t->tzbuf, sizeof(t->tzbuf), "%s", t->opts.timezone);
		t->opts.timezone = t->tzbuf;
	}
	return t;
}

struct liquid_template *lq_parse(const char *src, size_t len,
				 const char *filename,
				 const struct liquid_options *opts,
				 struct partial_table *partials,
				 struct lint_ctx *lint,
				 struct liquid_error *err)
{
	struct liquid_template *t = tpl_new(src, len, filename, opts);
	struct pstate ps = { 0 };
	struct scanner sc = { 0 };
	int blank;

	if (len > t->opts.limits.max_template_size) {
		lq_set_error(err, t->filename, NULL, 0, 0,
			     "template is %zu bytes, more than the limit of %zu",
			     len, t->opts.limits.max_template_size);
		liquid_template_free(t);
		return NULL;
	}
	if (!partials) {
		partials = lq_xmalloc(sizeof(*partials));
		memset(partials, 0, sizeof(*partials));
		t->owns_partials = 1;
	}
	t->partials = partials;
	ps.t = t;
	ps.pool = &t->pool;
	ps.src = t->src;
	ps.len = len;
	ps.err = err;
	ps.opts = &t->opts;
	ps.partials = partials;
	ps.lint = lint;
	sc.s = t->src;
	sc.end = len;
	if (parse_block(&ps, &sc, &t->root, NULL, NULL, NULL, 0, &blank) < 0) {
		liquid_template_free(t);
		return NULL;
	}
	return t;
}

liquid_template *liquid_parse(const char *src, size_t len, const char *filename,
			      const struct liquid_options *opts,
			      struct liquid_error *err)
{
	if (!src) {
		lq_set_error(err, filename, NULL, 0, 0, "no template source");
		return NULL;
	}
	return lq_parse(src, len, filename, opts, NULL, NULL, err);
}

int liquid_lint(const char *src, size_t len, const char *filename,
		const struct liquid_options *opts, liquid_lint_fn report,
		void *userdata)
{
	struct lint_ctx lc = { report, userdata, 0 };
	struct liquid_error err;
	liquid_template *t;

	memset(&err, 0, sizeof(err));
	if (!src || !report)
		return -1;
	t = lq_parse(src, len, filename, opts, NULL, &lc, &err);
	if (!t) {
		lc.n++;
		report(userdata, &err);
	}
	liquid_template_free(t);
	return lc.n;
}

void liquid_template_free(liquid_template *t)
{
	size_t i;

	if (!t)
		return;
	if (t->owns_partials && t->partials) {
		for (i = 0; i < t->partials->n; i++) {
			liquid_template_free(t->partials->v[i]->tpl);
			free(t->partials->v[i]->name);
			free(t->partials->v[i]);
		}
		free(t->partials->v);
		free(t->partials);
	}
	arena_free(&t->pool);
	free(t->src);
	free(t->filename);
	free(t);
}

liquid_expr *liquid_condition_parse(const char *src, const char *filename,
				    int line, struct liquid_error *err)
{
	struct liquid_template *t;
	struct liquid_expr *le;
	struct pstate ps = { 0 };
	struct mlex ml;
	struct expr *e;

	if (!src) {
		lq_set_error(err, filename, NULL, 0, 0, "no condition");
		return NULL;
	}
	t = tpl_new(src, strlen(src), filename, NULL);
	t->partials = NULL;
	ps.t = t;
	ps.pool = &t->pool;
	ps.src = t->src;
	ps.len = t->len;
	ps.err = err;
	ps.opts = &t->opts;
	mlex_init(&ml, &ps, t->src, t->len);
	e = parse_cond(&ml);
	if (e && ml.cur.k != M_EOF) {
		unexpected(&ml, "'and', 'or' or end of condition");
		e = NULL;
	}
	if (!e) {
		if (err && line > 1)
			err->line += line - 1;
		liquid_template_free(t);
		return NULL;
	}
	le = lq_xmalloc(sizeof(*le));
	le->t = t;
	le->e = e;
	le->line = line;
	return le;
}

void liquid_expr_free(liquid_expr *e)
{
	if (!e)
		return;
	liquid_template_free(e->t);
	free(e);
}

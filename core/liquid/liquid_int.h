/*
 * liquid_int.h: internal types shared by the engine's files (never
 * installed, never included outside core/liquid/ and its tests).
 */
#ifndef HERALD_LIQUID_INT_H
#define HERALD_LIQUID_INT_H

#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include "liquid.h"

#define LQ_DEFAULT_MAX_OUTPUT (16u << 20)
#define LQ_DEFAULT_MAX_ITER 10000000u
#define LQ_DEFAULT_MAX_DEPTH 64
#define LQ_DEFAULT_MAX_TEMPLATE (4u << 20)
#define LQ_DEFAULT_MAX_MEMORY (256u << 20)
#define LQ_MAX_NESTING 100 /* block nesting at parse time (stack safety) */

/* ---- memory ------------------------------------------------------------ */

void *lq_xmalloc(size_t n);
void *lq_xrealloc(void *p, size_t n);
char *lq_xstrndup(const char *s, size_t n);

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	size_t used;
	char data[];
};

/* Bump allocator.  Chunks are kept across arena_reset so repeated renders
 * stop allocating; over is set (never reset until arena_reset) once the
 * memory limit is passed, and callers turn it into an error. */
struct arena {
	struct arena_chunk *head;
	struct arena_chunk *cur;
	size_t total;
	size_t limit;
	int over;
};

struct arena_mark {
	struct arena_chunk *chunk;
	size_t used;
};

void arena_init(struct arena *a);
void arena_reset(struct arena *a);
void arena_free(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);
char *arena_strndup(struct arena *a, const char *s, size_t n);
static inline struct arena_mark arena_mark(struct arena *a)
{
	struct arena_mark m = { a->cur, a->cur ? a->cur->used : 0 };
	return m;
}
static inline void arena_release(struct arena *a, struct arena_mark m)
{
	if (m.chunk) {
		a->cur = m.chunk;
		m.chunk->used = m.used;
	}
}

/* what liquid_buf.scratch points to: temporaries (marked and released
 * around each output) and the context parsed from JSON text (kept for the
 * whole render) */
struct scratch {
	struct arena tmp;
	struct arena data;
};

/* ---- buffers ----------------------------------------------------------- */

void lq_buf_grow(struct liquid_buf *b, size_t need);
static inline void lq_buf_add(struct liquid_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
		lq_buf_grow(b, n + 1);
	memcpy(b->data + b->len, s, n);
	b->len += n;
}
static inline void lq_buf_addc(struct liquid_buf *b, char c)
{
	if (b->len + 2 > b->cap)
		lq_buf_grow(b, 2);
	b->data[b->len++] = c;
}
static inline void lq_buf_adds(struct liquid_buf *b, const char *s)
{
	lq_buf_add(b, s, strlen(s));
}

/* ---- values ------------------------------------------------------------ */

enum lv_type {
	LV_NIL = 0,
	LV_BOOL,
	LV_INT,
	LV_FLOAT,
	LV_STR,
	LV_RANGE,
	LV_ARRAY,   /* engine-made array of lv (arena) */
	LV_JSON,    /* borrowed jansson object or array */
	LV_FORLOOP, /* forloop / tablerowloop drop */
	LV_EMPTY,   /* the literal `empty` */
	LV_BLANK,   /* the literal `blank` */
	LV_OBJECT,  /* engine-made object (arena), from liquid_render_json */
	LV_LAZY,    /* JSON container not parsed yet: only ever stored inside
		     * LV_OBJECT/LV_ARRAY; lv_at/lv_obj_get force it */
};

struct forloop;
struct lobj;
struct lazy;

struct lv {
	uint8_t t;
	uint8_t safe; /* string is already HTML-escaped (autoescape) */
	union {
		int b;
		int64_t i;
		double f;
		struct {
			const char *p;
			size_t n;
		} s;
		struct {
			int64_t lo, hi;
		} r;
		struct {
			struct lv *v;
			size_t n;
		} a;
		json_t *j;
		struct forloop *fl;
		struct lobj *o;
		struct lazy *lz;
	};
};

struct lazy {
	const char *p, *e; /* the JSON text of the container */
	struct arena *a;   /* where to build it (never released mid-render) */
	int state;	   /* 0 not yet, 1 built, -1 malformed (nil) */
	struct lv mat;
};

/* the value itself, a lazy JSON container parsed (one level) on demand;
 * inline for the common case (every member read of a JSON context) */
struct lv lq_force_lazy(const struct lv *v);
static inline struct lv lq_force(const struct lv *v)
{
	return v->t == LV_LAZY ? lq_force_lazy(v) : *v;
}

struct lkv {
	const char *k;
	size_t kn;
	struct lv v;
};

/* object in the arena; duplicate keys: the last one wins */
struct lobj {
	struct lkv *kv;
	size_t n;
};

struct forloop {
	const char *name;
	size_t name_len;
	int64_t index0;
	int64_t length;
	struct forloop *parent;
	int tablerow;
	int64_t cols; /* tablerow: 0 = unlimited */
	int64_t col0;
	int64_t row;
};

/* double to int64 without undefined behaviour (clamped, NaN is 0) */
static inline int64_t lq_f2i(double f)
{
	if (f != f)
		return 0;
	if (f >= 9.2233720368547758e18)
		return INT64_MAX;
	if (f <= -9.2233720368547758e18)
		return INT64_MIN;
	return (int64_t)f;
}

static inline struct lv lv_nil(void) { struct lv v = { 0 }; return v; }
static inline struct lv lv_bool(int b) { struct lv v = { 0 }; v.t = LV_BOOL; v.b = !!b; return v; }
static inline struct lv lv_int(int64_t i) { struct lv v = { 0 }; v.t = LV_INT; v.i = i; return v; }
static inline struct lv lv_float(double f) { struct lv v = { 0 }; v.t = LV_FLOAT; v.f = f; return v; }
static inline struct lv lv_str(const char *p, size_t n)
{
	struct lv v = { 0 };
	v.t = LV_STR;
	v.s.p = p;
	v.s.n = n;
	return v;
}

struct lv lv_from_json(json_t *j);
struct lv lv_first_pair(struct arena *a, const struct lv *obj);
int lv_truthy(const struct lv *v);
int lv_is_array(const struct lv *v); /* ARRAY, RANGE or JSON array */
int lv_is_object(const struct lv *v); /* JSON object or LV_OBJECT */
int lv_obj_get(const struct lv *o, const char *k, size_t kn, struct lv *out);
size_t lv_obj_size(const struct lv *o);
/* i-th member of an object, in document order */
int lv_obj_pair(const struct lv *o, size_t i, const char **k_r, size_t *kn_r,
		struct lv *v_r);
/* LAZY: nested containers stay JSON text until first read (validated
 * for balance only); they must then live in an arena not released until
 * the end of the render. */
int lq_json_parse(struct arena *a, const char *s, size_t n, int lazy,
		  struct lv *out, const char **err_r, size_t *off_r);
size_t lv_len(const struct lv *v);     /* elements of array-likes */
struct lv lv_at(const struct lv *v, size_t i);
/* Member access as in a.b: 1 found, 0 not found. */
int lv_get(struct arena *a, const struct lv *v, const char *k, size_t kn,
	   struct lv *out);
/* Appends the Liquid to_s of v. */
void lv_write(struct liquid_buf *b, const struct lv *v);
/* to_s as a string, in the arena when it must be built. */
struct lv lv_to_str(struct arena *a, const struct lv *v);
void lq_fmt_float(struct liquid_buf *b, double f);
void lq_write_int(struct liquid_buf *b, int64_t x);
int lv_equal(const struct lv *a, const struct lv *b);
/* Ordering: returns 0 and *cmp_r, or -1 when the types cannot be compared. */
int lv_compare(const struct lv *a, const struct lv *b, int *cmp_r);
int lv_is_empty(const struct lv *v);
int lv_is_blank(const struct lv *v);
const char *lv_type_name(const struct lv *v);
/* JSON text of a value, for the json filter. */
void lv_write_json(struct liquid_buf *b, const struct lv *v);
/* Charge N steps of work to the render's loop iteration budget: 0, or -1
 * with the error set at POS when it runs out.  Filters that walk a range
 * element by element (a range is not materialised, so the memory limit
 * does not stop them) call it first. */
struct rstate;
int lq_count_iterations(struct rstate *st, uint64_t n, uint32_t pos);
/* Ruby inspect-ish output for hashes. */
size_t lq_utf8_len(const char *s, size_t n);

/* ---- compiled form ----------------------------------------------------- */

enum ex_kind { EX_LIT, EX_VAR, EX_RANGE, EX_CMP, EX_AND, EX_OR };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE, OP_CONTAINS };
enum seg_kind { SEG_KEY, SEG_EXPR };

struct expr;

struct path_seg {
	uint8_t kind;
	const char *key;
	size_t klen;
	struct expr *e;
};

struct expr {
	uint8_t kind;
	uint8_t op;
	uint32_t pos;
	union {
		struct lv lit;
		struct {
			const char *name; /* NULL: root is segs[0] (bracketed) */
			size_t nlen;
			struct path_seg *segs;
			size_t nsegs;
		} var;
		struct {
			struct expr *lo, *hi;
		} range;
		struct {
			struct expr *l, *r;
		} bin;
	};
};

struct rstate;
struct kwarg {
	const char *k;
	size_t klen;
	struct expr *v;
};

typedef int (*filter_fn)(struct rstate *st, struct lv *in, struct lv *args,
			 size_t nargs, struct lv *kwv, const struct kwarg *kw,
			 size_t nkw, struct lv *out);

struct filter_def {
	const char *name;
	filter_fn fn;
	int min_args, max_args;
	int safe; /* output HTML-safe: 0 no, 1 yes, 2 when the input was */
};

const struct filter_def *lq_filter_find(const char *name, size_t n);

struct filter_call {
	const struct filter_def *def; /* NULL: unknown filter (lax) */
	const char *name;
	uint32_t pos;
	struct expr **args;
	size_t nargs;
	struct kwarg *kw;
	size_t nkw;
};

struct fexpr {
	struct expr *e;
	struct filter_call *f;
	size_t nf;
};

enum node_kind {
	N_TEXT,
	N_OUTPUT,
	N_IF,
	N_CASE,
	N_FOR,
	N_TABLEROW,
	N_ASSIGN,
	N_CAPTURE,
	N_INCREMENT,
	N_DECREMENT,
	N_CYCLE,
	N_BREAK,
	N_CONTINUE,
	N_IFCHANGED,
	N_INCLUDE,
	N_RENDER,
};

struct node;
struct block {
	struct node **v;
	size_t n;
};

struct cond_branch {
	struct expr *cond; /* NULL = else */
	int negate;	   /* unless */
	struct block body;
};

struct when_branch {
	struct expr **vals; /* NULL = else */
	size_t nvals;
	struct block body;
};

struct partial;

struct node {
	uint8_t kind;
	uint32_t pos;
	union {
		struct {
			const char *p;
			size_t n;
		} text;
		struct fexpr out;
		struct {
			struct cond_branch *br;
			size_t n;
		} cond;
		struct {
			struct expr *subject;
			struct when_branch *br;
			size_t n;
		} kase;
		struct {
			const char *var;
			size_t vlen;
			struct expr *coll;
			struct expr *limit, *offset, *cols;
			int offset_continue;
			int reversed;
			const char *key; /* registry key for offset:continue */
			size_t keylen;
			struct block body, els;
		} loop;
		struct {
			const char *var;
			size_t vlen;
			struct fexpr val;
		} assign;
		struct {
			const char *var;
			size_t vlen;
			struct block body;
		} capture;
		struct {
			const char *var;
			size_t vlen;
		} counter;
		struct {
			struct expr *group; /* may be NULL */
			const char *key;    /* group key when no group expr */
			size_t keylen;
			struct expr **vals;
			size_t nvals;
		} cycle;
		struct block ifchanged;
		struct {
			struct expr *name_expr; /* dynamic name (include) */
			struct partial *part;	/* static name */
			struct expr *with;
			int is_for;
			const char *alias;
			size_t alen;
			struct kwarg *kw;
			size_t nkw;
		} incl;
	};
};

/* Arena-like allocator for the compiled form (freed as a whole). */
struct pool {
	struct arena a;
};

struct partial {
	char *name;
	size_t nlen; /* names may hold NUL bytes */
	struct liquid_template *tpl; /* NULL when missing / failed */
	struct liquid_error err;     /* why tpl is NULL */
	int missing;
};

struct partial_table {
	struct partial **v;
	size_t n, cap;
	int parsing; /* nested partial parses in progress */
};

struct liquid_template {
	char *src;
	size_t len;
	char *filename;
	struct arena pool;
	struct block root;
	struct liquid_options opts; /* timezone copied into tzbuf */
	char tzbuf[128];
	struct partial_table *partials; /* owned by the root template only */
	int owns_partials;
	int has_cycle_state;
};

struct liquid_expr {
	struct liquid_template *t; /* holds pool and source */
	struct expr *e;
	int line; /* line of the condition in its file */
};

/* parse.c */
struct lint_ctx {
	liquid_lint_fn fn;
	void *ud;
	int n;
};

struct liquid_template *lq_parse(const char *src, size_t len,
				 const char *filename,
				 const struct liquid_options *opts,
				 struct partial_table *partials,
				 struct lint_ctx *lint,
				 struct liquid_error *err);
void lq_pos_to_linecol(const char *src, size_t len, size_t pos, int *line_r,
		       int *col_r);
void lq_set_error(struct liquid_error *err, const char *filename,
		  const char *src, size_t srclen, size_t pos, const char *fmt,
		  ...) __attribute__((format(printf, 6, 7)));

/* render.c */
struct rstate;
int lq_error(struct rstate *st, uint32_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct arena *lq_arena(struct rstate *st);
int64_t lq_now(struct rstate *st);
const char *lq_tz_name(struct rstate *st);
int lq_tz_offset(struct rstate *st, int64_t t, int *off_r);
int lq_eval_index(struct rstate *st, const struct lv *v, const struct lv *key,
		  struct lv *out);
uint32_t lq_filter_pos(struct rstate *st);

/* date.c */
int lq_parse_date(const char *s, size_t n, int64_t now, int *has_zone_r,
		  int64_t *t_r, int *off_r);
void lq_strftime(struct liquid_buf *b, const char *fmt, size_t fn, int64_t t,
		 int off, const char *zone_name);

/* utf8 helpers in filters.c */
size_t lq_utf8_offset(const char *s, size_t n, int64_t chars);

#endif

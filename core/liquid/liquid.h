/*
 * liquid.h: Herald's Liquid template engine (Liquid 5 compatible).
 *
 * Parse once (liquid_parse) into an immutable compiled template, render it
 * many times (liquid_render), from several threads at once: rendering never
 * writes to the template nor to any global state.  All scratch memory of a
 * render lives in the output buffer's arena, so a caller that reuses one
 * struct liquid_buf per thread renders without malloc churn.
 *
 * Ownership: liquid_parse copies the source; the caller frees the template
 * with liquid_template_free.  The context (a jansson object) is borrowed for
 * the duration of liquid_render only.  Errors are returned through a
 * caller-provided struct liquid_error (fixed-size, nothing to free).
 */
#ifndef HERALD_LIQUID_H
#define HERALD_LIQUID_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Growable output buffer.  data is always NUL-terminated after a successful
 * render (data[len] == 0).  scratch is private: the per-render arena, kept
 * between renders so that a reused buffer does not allocate again. */
struct liquid_buf {
	char *data;
	size_t len;
	size_t cap;
	void *scratch;
};

void liquid_buf_init(struct liquid_buf *b);
/* Forget the content (len = 0) but keep the memory for the next render. */
void liquid_buf_reset(struct liquid_buf *b);
/* Release everything; the buffer may be initialised again.  free(NULL)-like:
 * a zeroed buffer is fine. */
void liquid_buf_free(struct liquid_buf *b);

/* An error: where and what.  line and column are 1-based; 0 when unknown. */
struct liquid_error {
	char filename[256];
	int line;
	int column;
	char message[512];
};

/* Formats "file:line:col: message" into out (always NUL-terminated).
 * Returns the length snprintf would have written. */
int liquid_error_format(const struct liquid_error *err, char *out, size_t size);

/* Partial loader: returns the source of partial NAME as a malloc'ed buffer
 * (the engine frees it with free()) and its length in *len_r, or NULL when
 * there is no such partial.  May set *filename_r to a malloc'ed file name for
 * error messages (the engine frees it); leave it NULL to use NAME. */
typedef char *(*liquid_loader_fn)(void *userdata, const char *name,
				  size_t *len_r, char **filename_r);

/* Time zone offset lookup, shaped like core/tz.h's tz_offset(): offset of
 * ZONE from UTC at instant UTC_SECONDS; 0, or -1 for an unknown zone. */
typedef int (*liquid_tz_fn)(const char *zone, int64_t utc_seconds,
			    int *offset_seconds_r);

struct liquid_limits {
	size_t max_output;	  /* bytes of output per render; 0 = default 16 MiB */
	uint64_t max_iterations;  /* loop iterations per render; 0 = default 1e7 */
	int max_depth;		  /* render/include nesting; 0 = default 64 */
	size_t max_template_size; /* bytes of source; 0 = default 4 MiB */
	size_t max_memory;	  /* scratch bytes per render; 0 = default 256 MiB */
};

struct liquid_options {
	int autoescape;	      /* HTML-escape every {{ }} unless already escaped */
	int strict_variables; /* undefined variable is a render error */
	int strict_filters;   /* unknown filter is a parse error (lint) */
	struct liquid_limits limits;
	liquid_loader_fn loader; /* partials; NULL = none */
	void *loader_data;
	const char *timezone;	 /* IANA zone for date; NULL = UTC (copied) */
	liquid_tz_fn tz_offset;	 /* NULL = only UTC and +HH:MM offsets */
	int has_now;		 /* use fixed_now instead of the clock */
	int64_t fixed_now;	 /* seconds since the epoch */
};

/* Zero everything: the defaults (no autoescape, lax, default limits). */
void liquid_options_init(struct liquid_options *opts);

typedef struct liquid_template liquid_template;

/* Parses SRC (LEN bytes; need not be NUL-terminated).  FILENAME is used in
 * error messages (may be NULL).  OPTS may be NULL.  Partials named by a
 * string literal are loaded and compiled now through opts->loader; a missing
 * partial is only an error if it is rendered.  Returns the template (free
 * with liquid_template_free) or NULL with *err filled in. */
liquid_template *liquid_parse(const char *src, size_t len, const char *filename,
			      const struct liquid_options *opts,
			      struct liquid_error *err);

void liquid_template_free(liquid_template *t);

/* Per-render overrides (e.g. the customer's time zone).  Any member left
 * NULL / 0 falls back to the template's options. */
struct liquid_render_options {
	const char *timezone;
	int has_now;
	int64_t fixed_now;
	/* when timezone is NULL: use the context's customer.timezone if the
	 * template's tz_offset knows it, else the template's zone */
	int customer_zone;
};

/* Renders T against CONTEXT (a JSON object, or NULL) and appends the text
 * to OUT (which is not reset first).  Returns 0, or -1 with *err filled in;
 * on error OUT holds a partial result.  Thread-safe for one template. */
int liquid_render(const liquid_template *t, json_t *context,
		  struct liquid_buf *out, struct liquid_error *err);
int liquid_render_ex(const liquid_template *t, json_t *context,
		     const struct liquid_render_options *ropts,
		     struct liquid_buf *out, struct liquid_error *err);
/* The same with the context as JSON text (an object), parsed straight
 * into the render's scratch memory: several times faster than building a
 * json_t per customer.  JSON borrowed for the call; a JSON error is
 * reported as "<context>:1:COL: invalid JSON: ...". */
int liquid_render_json(const liquid_template *t, const char *json, size_t len,
		       const struct liquid_render_options *ropts,
		       struct liquid_buf *out, struct liquid_error *err);

/* Campaign segment conditions: exactly {% if %} syntax and semantics. */
typedef struct liquid_expr liquid_expr;

liquid_expr *liquid_condition_parse(const char *src, const char *filename,
				    int line, struct liquid_error *err);
/* *result_r = 1 when the condition is truthy.  Returns 0 or -1. */
int liquid_condition_eval(const liquid_expr *e, json_t *context, int *result_r,
			  struct liquid_error *err);
void liquid_expr_free(liquid_expr *e);

/* Lint: parses SRC as liquid_parse does and reports through REPORT every
 * unknown filter (file:line:col), then the first syntax error or unknown
 * tag if there is one (unknown tags are always errors).  Partials are
 * checked too, through opts->loader.  Returns the number of problems
 * reported (0: clean), -1 on bad arguments. */
typedef void (*liquid_lint_fn)(void *userdata, const struct liquid_error *problem);
int liquid_lint(const char *src, size_t len, const char *filename,
		const struct liquid_options *opts, liquid_lint_fn report,
		void *userdata);

/* 1 if NAME is a filter the engine knows (for lint tools). */
int liquid_filter_exists(const char *name);

#ifdef __cplusplus
}
#endif

#endif

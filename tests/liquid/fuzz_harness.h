/*
 * fuzz_harness.h: one parse + render of untrusted bytes, shared by the
 * libFuzzer target (fuzz_liquid.c) and the regression replay (regress.c).
 * The input is the template; a fixed context and a loader that serves any
 * partial name with the input itself (recursion!) exercise the engine.
 * Small limits keep each run fast; any crash or leak is the finding.
 */
#ifndef LIQUID_FUZZ_HARNESS_H
#define LIQUID_FUZZ_HARNESS_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "liquid.h"

struct fuzz_src {
	const char *p;
	size_t n;
};

static char *fuzz_loader(void *ud, const char *name, size_t *len_r,
			 char **fn_r)
{
	struct fuzz_src *s = ud;
	char *c;

	(void)fn_r;
	if (!strcmp(name, "missing"))
		return NULL;
	c = malloc(s->n + 1);
	if (!c)
		abort();
	memcpy(c, s->p, s->n);
	*len_r = s->n;
	return c;
}

static json_t *fuzz_context(void)
{
	return json_pack("{s:s,s:i,s:f,s:b,s:n,s:[i,i,s,n,{s:s}],s:{s:s,s:i,"
			 "s:[s,s]},s:s}",
			 "name", "Zoë", "n", 3, "f", 2.5, "t", 1, "z",
			 "a", 1, 2, "x", "k", "v", "customer", "first_name",
			 "Ada", "orders", 4, "tags", "vip", "new",
			 "html", "<b>&amp;</b>");
}

static int liquid_fuzz_one(const uint8_t *data, size_t size)
{
	struct liquid_options o;
	struct liquid_error err;
	struct liquid_buf out;
	struct fuzz_src s = { (const char *)data, size };
	liquid_template *t;
	json_t *ctx = fuzz_context();
	int pass;

	for (pass = 0; pass < 2; pass++) {
		liquid_options_init(&o);
		o.autoescape = pass;
		o.strict_variables = pass;
		o.loader = fuzz_loader;
		o.loader_data = &s;
		o.has_now = 1;
		o.fixed_now = 1700000000;
		o.timezone = pass ? "+05:30" : NULL;
		o.limits.max_output = 1 << 16;
		o.limits.max_iterations = 20000;
		o.limits.max_depth = 8;
		o.limits.max_memory = 8 << 20;
		liquid_buf_init(&out);
		t = liquid_parse((const char *)data, size, "fuzz", &o, &err);
		if (t) {
			liquid_render(t, ctx, &out, &err);
			liquid_buf_reset(&out);
			liquid_render(t, ctx, &out, &err); /* reused buffer */
		}
		liquid_template_free(t);
		liquid_buf_free(&out);
	}
	{
		/* the same bytes as a JSON context (liquid_render_json's own
		 * parser): dump it back, walk it, compare it */
		static const char probe[] =
			"{{ customer | json }}{% for kv in customer %}{{ kv[0] }}"
			"{{ kv[1] | size }}{% endfor %}{{ a | sort | join }}"
			"{% if customer == a %}eq{% endif %}{{ customer.name | upcase }}";

		liquid_options_init(&o);
		t = liquid_parse(probe, sizeof(probe) - 1, "probe", &o, &err);
		liquid_buf_init(&out);
		if (t)
			liquid_render_json(t, (const char *)data, size, NULL, &out,
					   &err);
		liquid_template_free(t);
		liquid_buf_free(&out);
	}
	{
		/* the same bytes as a segment condition */
		char *c = malloc(size + 1);
		liquid_expr *e;
		int r;

		if (!c)
			abort();
		memcpy(c, data, size);
		c[size] = 0;
		e = liquid_condition_parse(c, "cond", 1, &err);
		if (e)
			liquid_condition_eval(e, ctx, &r, &err);
		liquid_expr_free(e);
		free(c);
	}
	json_decref(ctx);
	return 0;
}

#endif

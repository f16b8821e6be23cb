/*
 * unit.c: the Liquid engine's API, errors (file:line:col), limits,
 * autoescape, the json filter, conditions, time zones, UTF-8, threads and
 * memory reuse.  TAP through tests/tap.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "liquid.h"
#include "liquid_int.h"
#include "tap.h"
#include "tz.h"

static json_t *ctx;

/* render SRC with OPTS (may be NULL); returns a static copy of the output
 * or of the formatted error prefixed with "ERR " */
static const char *rr(const char *src, const struct liquid_options *opts)
{
	static char res[8192];
	struct liquid_error err;
	struct liquid_buf out;
	liquid_template *t;

	liquid_buf_init(&out);
	memset(&err, 0, sizeof(err));
	t = liquid_parse(src, strlen(src), "t.liquid", opts, &err);
	if (!t || liquid_render(t, ctx, &out, &err)) {
		char msg[1024];

		liquid_error_format(&err, msg, sizeof(msg));
		snprintf(res, sizeof(res), "ERR %s", msg);
	} else {
		snprintf(res, sizeof(res), "%s", out.data);
	}
	liquid_template_free(t);
	liquid_buf_free(&out);
	return res;
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static char *self_loader(void *ud, const char *name, size_t *len_r,
			 char **fn_r)
{
	const char *src = ud;

	(void)fn_r;
	if (!strcmp(name, "footer")) {
		*len_r = 19;
		return strdup("-- {{ customer.id }}");
	}
	if (!strcmp(name, "bad")) {
		*len_r = 13;
		return strdup("\n  {% if x %}");
	}
	*len_r = strlen(src);
	return strdup(src);
}

static char lint_log[2048];

static void lint_cb(void *ud, const struct liquid_error *e)
{
	char msg[600];
	size_t l = strlen(lint_log);

	(void)ud;
	liquid_error_format(e, msg, sizeof(msg));
	snprintf(lint_log + l, sizeof(lint_log) - l, "%s\n", msg);
}

static const liquid_template *shared_t;

static void *thread_main(void *arg)
{
	struct liquid_buf out;
	struct liquid_error err;
	int i, *ok = arg;
	char want[64];

	liquid_buf_init(&out);
	*ok = 1;
	for (i = 0; i < 2000; i++) {
		json_t *c = json_pack("{s:i,s:[i,i,i]}", "n", i, "nums", 1, 2, 3);

		liquid_buf_reset(&out);
		if (liquid_render(shared_t, c, &out, &err))
			*ok = 0;
		snprintf(want, sizeof(want), "%d:1 2 3 |%d", i, i * 2);
		if (strcmp(out.data, want))
			*ok = 0;
		json_decref(c);
	}
	liquid_buf_free(&out);
	return NULL;
}

int main(void)
{
	struct liquid_options o;
	struct liquid_error err;
	struct liquid_buf out;
	liquid_template *t;
	liquid_expr *e;
	int r, res;
	const char *s;

	ctx = json_pack("{s:{s:s,s:i,s:s,s:[s,s]},s:s,s:[i,i,i],s:s}",
			"customer", "tier", "gold", "orders", 5, "id", "c42",
			"tags", "vip", "new", "html", "<a href=\"x\">T&C</a>",
			"nums", 1, 2, 3, "name", "élan ßtraße Ğ");
	tap_plan(65);

	/* API basics */
	tap_is(rr("Hi {{ customer.id }}!", NULL), "Hi c42!", "output");
	tap_is(rr("{% for n in nums %}{{ n | times: 2 }}{% unless forloop.last %},{% endunless %}{% endfor %}",
		  NULL), "2,4,6", "for, filters, forloop");
	/* for and tablerow read offset and limit the same way (loop_slice):
	 * nil offset is 0, nil limit is no limit; a limit of 0 is none. */
	tap_is(rr("{% for i in (1..3) offset: nothing limit: nothing %}{{ i }}{% endfor %}",
		  NULL), "123", "for: nil offset and limit take everything");
	tap_is(rr("{% tablerow i in (1..3) offset: nothing limit: nothing %}{{ i }}{% endtablerow %}",
		  NULL),
	       "<tr class=\"row1\">\n<td class=\"col1\">1</td><td class=\"col2\">2</td>"
	       "<td class=\"col3\">3</td></tr>\n",
	       "tablerow: nil offset and limit take everything, as for");
	tap_is(rr("{% for i in (1..3) limit: 0 %}{{ i }}{% endfor %}", NULL), "",
	       "for: limit 0 takes nothing");
	tap_is(rr("{% tablerow i in (1..3) limit: 0 %}{{ i }}{% endtablerow %}", NULL),
	       "<tr class=\"row1\">\n</tr>\n", "tablerow: limit 0 takes nothing, as for");
	liquid_buf_init(&out);
	s = "a{{ customer.orders }}";
	t = liquid_parse(s, strlen(s), "x", NULL, &err);
	r = liquid_render(t, ctx, &out, &err);
	r |= liquid_render(t, ctx, &out, &err);
	tap_ok(r == 0 && !strcmp(out.data, "a5a5"), "render appends to the buffer");
	liquid_buf_reset(&out);
	r = liquid_render(t, ctx, &out, &err);
	tap_ok(r == 0 && !strcmp(out.data, "a5"), "reset buffer is reused");
	{
		/* no growth of scratch memory with the number of renders */
		struct arena *a = &((struct scratch *)out.scratch)->tmp;
		size_t before, cap_before = out.cap;
		int i;

		before = a->total;
		for (i = 0; i < 20000; i++) {
			liquid_buf_reset(&out);
			liquid_render(t, ctx, &out, &err);
		}
		tap_ok(a->total == before && out.cap == cap_before,
		       "20000 renders: scratch %zu -> %zu bytes", before, a->total);
	}
	liquid_template_free(t);
	liquid_buf_free(&out);

	/* errors with line and column */
	s = rr("line one\n  {{ customer.id | }}", NULL);
	tap_ok(starts(s, "ERR t.liquid:2:20: expected filter name"), "syntax error position: %s", s);
	s = rr("\n\n   {% frobnicate %}", NULL);
	tap_is(s, "ERR t.liquid:3:4: unknown tag 'frobnicate'", "unknown tag is a parse error");
	s = rr("a\n{% if x %}\nno end", NULL);
	tap_is(s, "ERR t.liquid:2:1: 'if' tag was never closed", "unclosed block names the opener");
	s = rr("{% for x in nums %}{% else %}{% else %}{% endfor %}", NULL);
	tap_ok(starts(s, "ERR t.liquid:1:30: unexpected 'else'"), "second else: %s", s);
	s = rr("{{ 'x' | nosuch }}", NULL);
	tap_is(s, "x", "lax: unknown filter passes the value through");
	liquid_options_init(&o);
	o.strict_filters = 1;
	s = rr("ok\n{{ 'x' | upcase | nosuch: 1 }}", &o);
	tap_is(s, "ERR t.liquid:2:19: unknown filter 'nosuch'", "strict filters: lint error at parse time");
	tap_ok(liquid_filter_exists("truncatewords") && !liquid_filter_exists("nosuch"),
	       "liquid_filter_exists");
	liquid_options_init(&o);
	o.strict_variables = 1;
	s = rr("{{ customer.id }}\n {{ customer.nope }}", &o);
	tap_is(s, "ERR t.liquid:2:5: undefined variable 'customer'", "strict variables: undefined is an error");
	s = rr("{{ 1 | divided_by: 0 }}", NULL);
	tap_is(s, "ERR t.liquid:1:8: divided by 0", "render error names the filter");
	s = rr("{{ 'x' | truncate: 1, 2, 3 }}", NULL);
	tap_ok(starts(s, "ERR t.liquid:1:10: filter 'truncate' takes"), "filter arity checked at parse time");
	s = rr("{% if 'a' < 1 %}{% endif %}", NULL);
	tap_ok(starts(s, "ERR t.liquid:1:11: comparison of string with integer failed"), "bad comparison: %s", s);

	/* limits */
	liquid_options_init(&o);
	o.limits.max_output = 100;
	s = rr("{% for i in (1..1000) %}xxxxxxxxxx{% endfor %}", &o);
	tap_ok(starts(s, "ERR") && strstr(s, "output limit of 100 bytes"), "output limit: %s", s);
	liquid_options_init(&o);
	o.limits.max_iterations = 50;
	s = rr("{% for i in (1..10) %}{% for j in (1..10) %}{% endfor %}{% endfor %}", &o);
	tap_ok(starts(s, "ERR") && strstr(s, "iteration limit of 50"), "iteration limit: %s", s);
	s = rr("{% for i in (1..9999999999) %}{% endfor %}", NULL);
	tap_ok(starts(s, "ERR") && strstr(s, "iteration limit"), "default iteration limit");
	liquid_options_init(&o);
	o.loader = self_loader;
	o.loader_data = "{% render 'me' %}";
	o.limits.max_depth = 5;
	s = rr("{% render 'me' %}", &o);
	tap_ok(starts(s, "ERR") && strstr(s, "nesting deeper than 5"), "render depth limit: %s", s);
	o.loader_data = "x{% include 'me' %}";
	s = rr("{% include 'me' %}", &o);
	tap_ok(starts(s, "ERR") && strstr(s, "nesting deeper than 5"), "include depth limit");
	s = rr("{% render 'bad' %}", &o);
	tap_is(s, "ERR bad:2:3: 'if' tag was never closed", "syntax error inside a partial names the partial");
	s = rr("{% render 'nothere' %}", NULL);
	tap_is(s, "ERR t.liquid:1:1: partial 'nothere' not found", "missing partial is a render error");
	s = rr("{% if false %}{% render 'nothere' %}{% endif %}ok", NULL);
	tap_is(s, "ok", "missing partial not rendered is fine");
	liquid_options_init(&o);
	o.limits.max_template_size = 10;
	s = rr("01234567890", &o);
	tap_ok(starts(s, "ERR") && strstr(s, "limit of 10"), "template size limit: %s", s);
	liquid_options_init(&o);
	o.limits.max_memory = 1 << 20;
	s = rr("{% assign s = 'xxxxxxxxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}",
	       &o);
	tap_ok(starts(s, "ERR") && strstr(s, "memory limit"), "memory limit: %s", s);
	{
		char deep[4000];
		int i;

		for (i = 0; i < 150; i++)
			memcpy(deep + i * 13, "{% if true %}", 13);
		deep[150 * 13] = 0;
		s = rr(deep, NULL);
		tap_ok(starts(s, "ERR") && strstr(s, "nested too deeply"), "nesting limit");
	}

	/* autoescape */
	liquid_options_init(&o);
	o.autoescape = 1;
	tap_is(rr("<p>{{ html }}</p>", &o), "<p>&lt;a href=&quot;x&quot;&gt;T&amp;C&lt;/a&gt;</p>",
	       "autoescape escapes output, not text");
	tap_is(rr("{{ html | escape }}", &o), "&lt;a href=&quot;x&quot;&gt;T&amp;C&lt;/a&gt;",
	       "escape output is not escaped twice");
	tap_is(rr("{{ html | raw }}", &o), "<a href=\"x\">T&C</a>", "raw passes through");
	tap_is(rr("{{ 'a&amp;b' | escape_once }}", &o), "a&amp;b", "escape_once is safe");
	tap_is(rr("{{ customer.orders | plus: 1 }}{% echo '<' %}", &o), "6&lt;", "numbers as is; echo escaped");
	tap_is(rr("{{ html }}", NULL), "<a href=\"x\">T&C</a>", "no autoescape by default");

	tap_is(rr("{{ html | escape | upcase }}|{{ 'a\nb' | escape | newline_to_br }}|{{ html | upcase }}", &o),
	       "&LT;A HREF=&QUOT;X&QUOT;&GT;T&AMP;C&LT;/A&GT;|a<br />\nb|&lt;A HREF=&quot;X&quot;&gt;T&amp;C&lt;/A&gt;",
	       "safety survives case and newline filters, not raw input");

	/* lint */
	lint_log[0] = 0;
	s = "{{ a | nosuch }}\n{{ b | upcase | other: 1 }}";
	r = liquid_lint(s, strlen(s), "l.liquid", NULL, lint_cb, NULL);
	tap_ok(r == 2 && !strcmp(lint_log, "l.liquid:1:8: unknown filter 'nosuch'\n"
					"l.liquid:2:17: unknown filter 'other'\n"),
	       "lint lists every unknown filter");
	lint_log[0] = 0;
	r = liquid_lint("{{ a | nosuch }}{% bogus %}", 27, "l.liquid", NULL, lint_cb, NULL);
	tap_ok(r == 2 && strstr(lint_log, "l.liquid:1:17: unknown tag 'bogus'"), "lint: unknown tag");
	lint_log[0] = 0;
	r = liquid_lint("{{ a | upcase }}", 16, "l.liquid", NULL, lint_cb, NULL);
	tap_ok(r == 0 && !lint_log[0], "lint: clean template");

	/* json */
	tap_is(rr("{{ customer | json }}", NULL),
	       "{\"tier\":\"gold\",\"orders\":5,\"id\":\"c42\",\"tags\":[\"vip\",\"new\"]}", "json of an object");
	tap_is(rr("{{ html | append: '\n\"' | json }}", NULL), "\"<a href=\\\"x\\\">T&C</a>\\n\\\"\"",
	       "json of a string");
	tap_is(rr("{{ nope | json }}{{ 1.5 | json }}{{ (1..3) | json }}", NULL), "null1.5[1,2,3]",
	       "json of nil, float, range");
	tap_is(rr("{{ '\xff' | json }}", NULL), "\"\\ufffd\"", "json output is valid UTF-8");

	/* conditions */
	e = liquid_condition_parse("customer.tier == \"gold\" and customer.orders > 3", "seg.ini", 7, &err);
	tap_ok(e && liquid_condition_eval(e, ctx, &res, &err) == 0 && res == 1, "condition true");
	liquid_expr_free(e);
	e = liquid_condition_parse("customer.tags contains 'vip' and customer.orders > 9 or false", "s", 1, &err);
	tap_ok(e && liquid_condition_eval(e, ctx, &res, &err) == 0 && res == 0, "condition false (right to left)");
	liquid_expr_free(e);
	e = liquid_condition_parse("customer.tier ==", "seg.ini", 7, &err);
	tap_ok(!e && err.line == 7 && err.column == 17 && strstr(err.message, "expected expression"),
	       "condition syntax error at %d:%d: %s", err.line, err.column, err.message);
	e = liquid_condition_parse("customer.tier > 1", "seg.ini", 3, &err);
	tap_ok(e && liquid_condition_eval(e, ctx, &res, &err) == -1 && err.line == 3,
	       "condition evaluation error");
	liquid_expr_free(e);

	/* dates and zones */
	liquid_options_init(&o);
	o.has_now = 1;
	o.fixed_now = 1700000000; /* 2023-11-14 22:13:20 UTC */
	tap_is(rr("{{ 'now' | date: '%Y-%m-%d %H:%M:%S %z' }}", &o), "2023-11-14 22:13:20 +0000", "now, UTC");
	o.timezone = "Europe/Paris";
	o.tz_offset = tz_offset;
	tap_is(rr("{{ 'now' | date: '%a %d %b %H:%M %z' }}", &o), "Tue 14 Nov 23:13 +0100", "time zone via tz_offset");
	tap_is(rr("{{ 1688000000 | date: '%H:%M %z' }}", &o), "02:53 +0200", "DST");
	tap_is(rr("{{ '2024-03-01T10:00:00Z' | date: '%-d/%m %H:%M' }}", &o), "1/03 11:00", "ISO with zone");
	tap_is(rr("{{ 'March 14, 2016 10:30' | date: '%s' }}", &o), "1457947800", "local time in the zone");
	{
		struct liquid_render_options ro = { "America/New_York", 0, 0, 0 };

		s = "{{ 'now' | date: '%H:%M' }}";
		t = liquid_parse(s, strlen(s), "x", &o, &err);
		liquid_buf_init(&out);
		r = liquid_render_ex(t, ctx, &ro, &out, &err);
		tap_ok(r == 0 && !strcmp(out.data, "17:13"), "per-render zone (customer's): %s", out.data);
		liquid_template_free(t);
		liquid_buf_free(&out);
	}

	/* JSON text contexts (liquid_render_json) */
	{
		struct liquid_render_options ro;
		const char *j1 = "{\"customer\":{\"timezone\":\"Asia/Tokyo\",\"n\":\"A\\u00e9\\ud83d\\ude00\"},"
				 "\"xs\":[1,2.5,\"x\",null,true,{\"k\":-3}]}";

		memset(&ro, 0, sizeof(ro));
		ro.customer_zone = 1;
		s = "{{ customer.n }}|{{ xs | size }}|{{ xs[5].k | abs }}|{{ xs | json }}|{{ 'now' | date: '%H:%M' }}";
		t = liquid_parse(s, strlen(s), "x", &o, &err);
		liquid_buf_init(&out);
		r = liquid_render_json(t, j1, strlen(j1), &ro, &out, &err);
		tap_is(r == 0 ? out.data : err.message,
		       "A\xc3\xa9\xf0\x9f\x98\x80|6|3|[1,2.5,\"x\",null,true,{\"k\":-3}]|07:13",
		       "render from JSON text, customer's zone");
		liquid_buf_reset(&out);
		r = liquid_render_json(t, "{\"a\": [1,}", 11, &ro, &out, &err);
		tap_ok(r == -1 && err.line == 1 && strstr(err.message, "invalid JSON"),
		       "bad JSON context: %d:%d %s", err.line, err.column, err.message);
		/* every JSON error keeps its message and column (the loop
		 * parser must report what the recursive one did) */
		{
			static const struct {
				const char *in, *msg;
				int col;
			} bad[] = {
				{ "{\"a\": [1,}", "unexpected character", 10 },
				{ "{\"a\" 1}", "expected ':'", 6 },
				{ "{\"a\": 1, \"b\"", "expected ':'", 13 },
				{ "{\"a\":1 \"b\":2}", "expected ',' or '}'", 8 },
				{ "{\"a\":[1 2]}", "expected ',' or ']'", 9 },
				{ "{,}", "expected a string key", 2 },
				{ "{\"a\":\"x", "unterminated string", 7 },
				{ "{\"a\":\"x\\q\"}", "bad escape in string", 7 },
				{ "{\"a\":\"\\u12\"}", "bad \\u escape", 7 },
				{ "{\"a\":\"\001\\n\"}", "control character in string", 7 },
				{ "{\"a\":-}", "bad number", 6 },
				{ "{\"a\":01}", "leading zero in number", 6 },
				{ "{\"a\":1.}", "bad number", 6 },
				{ "{\"a\":1e}", "bad number", 6 },
				{ "{\"a\":tru}", "unexpected character", 6 },
				{ "{\"a\":1} x", "trailing characters after JSON value", 9 },
				{ "{\"a\":", "unexpected end of JSON", 6 },
				{ "   ", "unexpected end of JSON", 4 },
			};
			char want[128], deep[600];
			size_t i, ok = 0, n = 0;

			for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
				liquid_buf_reset(&out);
				r = liquid_render_json(t, bad[i].in, strlen(bad[i].in),
						       &ro, &out, &err);
				snprintf(want, sizeof(want), "invalid JSON: %s", bad[i].msg);
				if (r == -1 && !strcmp(err.message, want) &&
				    err.line == 1 && err.column == bad[i].col)
					ok++;
				else
					printf("# %s: %d:%d %s\n", bad[i].in, err.line,
					       err.column, err.message);
			}
			tap_ok(ok == i, "JSON errors: message and column (%zu of %zu)", ok, i);
			/* 256 levels are fine, the 257th is at its bracket */
			n += (size_t)snprintf(deep, sizeof(deep), "{\"a\":");
			for (i = 0; i < 256; i++)
				deep[n++] = '[';
			memset(deep + n, ']', 255);
			n += 255;
			deep[n++] = '}';
			liquid_buf_reset(&out);
			r = liquid_render_json(t, deep, n, &ro, &out, &err);
			tap_ok(r == -1 && err.column == 5 + 256 &&
			       !strcmp(err.message, "invalid JSON: JSON nested too deeply"),
			       "JSON nesting limit: %d:%d %s", err.line, err.column, err.message);
			memmove(deep + 5, deep + 6, n - 6); /* one '[' fewer */
			liquid_buf_reset(&out);
			r = liquid_render_json(t, deep, n - 1, &ro, &out, &err);
			tap_ok(r == 0, "255 nested arrays inside the context parse: %s",
			       r ? err.message : "ok");
		}
		liquid_buf_reset(&out);
		r = liquid_render_json(t, "[1]", 3, &ro, &out, &err);
		tap_ok(r == -1 && strstr(err.message, "must be a JSON object"), "context must be an object");
		liquid_buf_reset(&out);
		s = "{\"customer\":{\"timezone\":\"Mars/Base\"}}";
		r = liquid_render_json(t, s, strlen(s), &ro, &out, &err);
		tap_ok(r == 0 && strstr(out.data, "|23:13"), "unknown customer zone falls back: %s", out.data);
		liquid_template_free(t);
		liquid_buf_free(&out);
	}

	/* UTF-8 */
	tap_is(rr("{{ name | size }}|{{ name | slice: 0, 4 }}|{{ name | truncate: 6 }}", NULL),
	       "13|élan|éla...", "size, slice, truncate count characters");
	tap_is(rr("{{ name | upcase }}|{{ 'ÉLAN Ğ' | downcase }}|{{ 'élan' | capitalize }}", NULL),
	       "ÉLAN SSTRASSE Ğ|élan ğ|Élan", "case mapping beyond ASCII");

	/* threads: one template, four threads */
	{
		pthread_t th[4];
		int oks[4], i, all = 1;

		s = "{{ n }}:{{ nums | join: ' ' }} |{{ n | times: 2 }}";
		t = liquid_parse(s, strlen(s), "x", NULL, &err);
		shared_t = t;
		json_object_set_new(ctx, "n", json_integer(0));
		for (i = 0; i < 4; i++)
			pthread_create(&th[i], NULL, thread_main, &oks[i]);
		for (i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			all &= oks[i];
		}
		tap_ok(t && all, "concurrent renders of one template");
		liquid_template_free(t);
	}
	json_decref(ctx);
	return tap_failed ? 1 : 0;
}

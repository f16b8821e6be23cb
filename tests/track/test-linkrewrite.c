/* tests/track/test-linkrewrite.c: the link rewriter alone (no store, no
 * keys): which links of an HTML text it rewrites and how, character
 * references, the three quoting styles, case, comments, doctypes, bogus
 * comments, script / style / RCDATA / plaintext contents, attributes
 * without values, malformed and unfinished HTML, data-herald-notrack, the
 * open pixel's place, and the plain-text part.  The track function here
 * writes T(URL), so each expectation shows the URL the rewriter judged,
 * and its re-escaping. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkrewrite.h"
#include "util.h"
#include "../tap.h"

static int fail_track;

static char *
track (void *data, const char *url, size_t len)
{
  (void) data;
  if (fail_track)
    return NULL;
  return xasprintf ("T(%.*s)", (int) len, url);
}

static const struct linkrewrite plain = {
  "https://t.test/x", "https://t.test/x/u/UNSUB.MAC", NULL, track, NULL
};
static const struct linkrewrite with_pixel = {
  "https://t.test/x", NULL, "https://t.test/x/o/OPEN.MAC.gif", track, NULL
};

#define PIXEL "<img src=\"https://t.test/x/o/OPEN.MAC.gif\" width=\"1\" " \
              "height=\"1\" alt=\"\">"

/* One assertion: the text and the number of links rewritten. */
static void
report (const char *got, long got_links, const char *want, long want_links,
        const char *what)
{
  int ok = got && strcmp (got, want) == 0 && got_links == want_links;

  tap_ok (ok, "%s", what);
  if (!ok)
    printf ("#   got:  '%s' (%ld links)\n#   want: '%s' (%ld links)\n",
            got ? got : "(null)", got_links, want, want_links);
}

/* Rewrite IN (N bytes; -1: strlen) with O; check the text and the count. */
static void
check_n (const struct linkrewrite *o, const char *in, long n_in,
         const char *want, long want_links, const char *what)
{
  struct strbuf out = STRBUF_INIT;
  size_t n = n_in < 0 ? strlen (in) : (size_t) n_in;
  long got = linkrewrite_html (o, in, n, &out);

  report (out.s, got, want, want_links, what);
  strbuf_free (&out);
}

static void
check (const char *in, const char *want, long links, const char *what)
{
  check_n (&plain, in, -1, want, links, what);
}

static void
check_text (const char *in, const char *want, long links, const char *what)
{
  struct strbuf out = STRBUF_INIT;
  long got = linkrewrite_text (&plain, in, strlen (in), &out);
  char *w = xasprintf ("text: %s", what);

  report (out.s, got, want, links, w);
  free (w);
  strbuf_free (&out);
}

static void
check_decode (const char *raw, size_t n, const char *want, const char *what)
{
  struct strbuf out = STRBUF_INIT;

  linkrewrite_attr_decode (raw, n, &out);
  tap_is (out.s ? out.s : "", want, "decode: %s", what);
  strbuf_free (&out);
}

static void
test_quoting (void)
{
  check ("<p><a href=\"http://a.example/x\">A</a></p>",
         "<p><a href=\"T(http://a.example/x)\">A</a></p>", 1,
         "a double-quoted href");
  check ("<a href='https://a.example/'>A</a>",
         "<a href=\"T(https://a.example/)\">A</a>", 1, "a single-quoted href");
  check ("<a href=https://a.example/p?q=1>A</a>",
         "<a href=\"T(https://a.example/p?q=1)\">A</a>", 1, "an unquoted href");
  check ("<a class=x href=https://a.example/ title=y>A</a>",
         "<a class=x href=\"T(https://a.example/)\" title=y>A</a>", 1,
         "an unquoted href between other attributes");
  check ("<a href = \"http://a.example/\" >A</a>",
         "<a href = \"T(http://a.example/)\" >A</a>", 1,
         "spaces around '='");
  check ("<A HREF=\"HTTP://A.EXAMPLE/\">A</A><a hReF='hTTpS://b.example/'>",
         "<A HREF=\"T(HTTP://A.EXAMPLE/)\">A</A><a hReF=\"T(hTTpS://b.example/)\">",
         2, "uppercase and mixed-case tags, attributes and schemes");
  check ("<a\nhref=\"http://a.example/\"\ttarget=_blank>A</a>",
         "<a\nhref=\"T(http://a.example/)\"\ttarget=_blank>A</a>", 1,
         "newline and tab between attributes");
  check ("<a/href=\"http://a.example/\">A</a>",
         "<a/href=\"T(http://a.example/)\">A</a>", 1,
         "a slash before the first attribute");
  check ("<a href=\"http://a.example/\"title=\"t\">A</a>",
         "<a href=\"T(http://a.example/)\"title=\"t\">A</a>", 1,
         "no space after a quoted value");
  check ("<a href=\"http://a.example/\" href=\"http://b.example/\">",
         "<a href=\"T(http://a.example/)\" href=\"http://b.example/\">", 1,
         "a repeated href: the first one counts, the second is left");
  check ("<area shape=rect href=\"http://a.example/\"><link rel=x "
         "href=\"http://b.example/\"><img src=\"http://c.example/i.png\">"
         "<base href=\"http://d.example/\">",
         "<area shape=rect href=\"T(http://a.example/)\"><link rel=x "
         "href=\"http://b.example/\"><img src=\"http://c.example/i.png\">"
         "<base href=\"http://d.example/\">", 1,
         "area is a link; link, img and base are not");
  check ("<abbr href=\"http://a.example/\"><a-b href=\"http://b.example/\">",
         "<abbr href=\"http://a.example/\"><a-b href=\"http://b.example/\">", 0,
         "tags whose names start with a are not a");
}

static void
test_references (void)
{
  check ("<a href=\"http://a.example/?a=1&amp;b=2&#38;c=3&#x26;d=4\">",
         "<a href=\"T(http://a.example/?a=1&amp;b=2&amp;c=3&amp;d=4)\">", 1,
         "&amp; and numeric ampersands decoded, then escaped again");
  check ("<a href=\"http://a.example/?x=1&copy=2&not;&notit;\">",
         "<a href=\"T(http://a.example/?x=1&amp;copy=2\xc2\xac&amp;notit;)\">", 1,
         "legacy names: &copy= kept, &not; decoded, &notit; kept");
  check ("<a href=\"http://a.example/?q=&quot;x&quot;\">",
         "<a href=\"T(http://a.example/?q=&quot;x&quot;)\">", 1,
         "a quote in the URL is escaped in the new value");
  check ("<a href=\"http&#58;//a.example/\">1</a>"
         "<a href=\"&#104;ttps&colon;&sol;&sol;b.example/\">2</a>"
         "<a href=\"&#X68;TTP://c.example/\">3</a>",
         "<a href=\"T(http://a.example/)\">1</a>"
         "<a href=\"T(https://b.example/)\">2</a>"
         "<a href=\"T(hTTP://c.example/)\">3</a>", 3,
         "a scheme spelled with references is judged decoded");
  check ("<a href=\"javascript&colon;alert(1)\">x</a>"
         "<a href=\"&#106;avascript:http://a.example/\">y</a>",
         "<a href=\"javascript&colon;alert(1)\">x</a>"
         "<a href=\"&#106;avascript:http://a.example/\">y</a>", 0,
         "javascript: links are left, however spelled");
  check ("<a href=\"http://a.example/&#1;x\">x</a><a href=\"http://a.example/&#x7F;y\">",
         "<a href=\"http://a.example/&#1;x\">x</a><a href=\"http://a.example/&#x7F;y\">",
         0, "a control character inside the URL: left as it is");
  check ("<a href=\"&#1;http://a.example/&#31;\">x</a>",
         "<a href=\"T(http://a.example/)\">x</a>", 1,
         "controls around the URL are removed as the URL parser does");
  check_n (&plain, "<a href=\"http://a.example/\0\">", 29,
           "<a href=\"T(http://a.example/\xef\xbf\xbd)\">", 1,
           "a NUL in a value is U+FFFD");
  check_decode ("&amp;&lt;&gt;&quot;&apos;&nbsp;", 31,
                "&<>\"'\xc2\xa0", "common names");
  check_decode ("&AMP&LT;&CounterClockwiseContourIntegral;&Bfr;", 46,
                "&<\xe2\x88\xb3\xf0\x9d\x94\x85",
                "uppercase legacy, the longest name, an astral one");
  check_decode ("&#x80;&#150;&#0;&#xD800;&#1114112;&#x110000;", 43,
                "\xe2\x82\xac\xe2\x80\x93\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                "\xef\xbf\xbd",
                "windows-1252 C1 table, NUL, surrogate, past U+10FFFF");
  check_decode ("&#;&#x;&#xg;&;&nosuch;&", 23, "&#;&#x;&#xg;&;&nosuch;&",
                "references that are not: kept as written");
  check_decode ("&#65&#x42;c&amp=&ampx&amp", 25, "ABc&amp=&ampx&",
                "no semicolon: numeric decoded, legacy name before = or "
                "alnum kept, at the end decoded");
  check_decode ("&#99999999999999999999;", 23, "\xef\xbf\xbd",
                "a huge number does not overflow");
  check_decode ("a\r\nb\rc", 6, "a\nb\nc", "CR LF and CR are LF");
}

static void
test_which (void)
{
  check ("<a href=\"mailto:x@example.com\">m</a><a href=\"tel:+331\">t</a>"
         "<a href=\"#top\">h</a><a href=\"/rel\">r</a>"
         "<a href=\"//a.example/\">s</a><a href=\"ftp://a.example/\">f</a>"
         "<a href=\"http:a.example\">o</a><a href=\"http:/a.example\">p</a>",
         "<a href=\"mailto:x@example.com\">m</a><a href=\"tel:+331\">t</a>"
         "<a href=\"#top\">h</a><a href=\"/rel\">r</a>"
         "<a href=\"//a.example/\">s</a><a href=\"ftp://a.example/\">f</a>"
         "<a href=\"http:a.example\">o</a><a href=\"http:/a.example\">p</a>",
         0, "mailto, tel, #, relative, scheme-relative, ftp, no authority: left");
  check ("<a href=\"https:\\\\a.example\\p\">b</a>",
         "<a href=\"T(https:\\\\a.example\\p)\">b</a>", 1,
         "backslashes count as slashes (as browsers read http URLs)");
  check ("<a href=\"\n http://a.example/p\n\tq\t \">x</a>",
         "<a href=\"T(http://a.example/pq)\">x</a>", 1,
         "surrounding spaces, tabs and newlines removed as the URL parser does");
  check ("<a href=\"https://t.test/x/u/UNSUB.MAC\">u</a>"
         "<a href=\"https://t.test/x/c/OTHER\">c</a><a href=\"https://t.test/x\">b</a>"
         "<a href=\"https://t.test/xyz\">n</a>",
         "<a href=\"https://t.test/x/u/UNSUB.MAC\">u</a>"
         "<a href=\"https://t.test/x/c/OTHER\">c</a><a href=\"https://t.test/x\">b</a>"
         "<a href=\"T(https://t.test/xyz)\">n</a>", 1,
         "the unsubscribe URL and links into base_url are left");
  check ("<a href>x</a><a href=>y</a><a href=\"\">z</a><a download "
         "href=\"http://a.example/\" hidden>w</a>",
         "<a href>x</a><a href=>y</a><a href=\"\">z</a><a download "
         "href=\"T(http://a.example/)\" hidden>w</a>", 1,
         "attributes without values");
  check ("<a data-herald-notrack href=\"http://a.example/\">a</a>"
         "<a href=\"http://b.example/\" DATA-HERALD-NOTRACK>b</a>"
         "<a href=http://c.example/ data-herald-notrack/>c</a>"
         "<a data-herald-notrack=\"yes\" href=\"http://d.example/\">d</a>"
         "<a href=\"http://e.example/\" data-herald-notrack=>e</a>"
         "<div data-herald-notrack><a href=\"http://f.example/\">f</a></div>",
         "<a href=\"http://a.example/\">a</a>"
         "<a href=\"http://b.example/\" >b</a>"
         "<a href=http://c.example/ />c</a>"
         "<a href=\"http://d.example/\">d</a>"
         "<a href=\"http://e.example/\" >e</a>"
         "<div data-herald-notrack><a href=\"T(http://f.example/)\">f</a></div>",
         1, "data-herald-notrack: link left, attribute removed (on a only)");
}

static void
test_structure (void)
{
  check ("<!-- <a href=\"http://a.example/\"> --><a href=\"http://b.example/\">",
         "<!-- <a href=\"http://a.example/\"> --><a href=\"T(http://b.example/)\">",
         1, "a link in a comment is not a link");
  check ("<!--> <a href=\"http://a.example/\"><!---> <a href=\"http://b.example/\">",
         "<!--> <a href=\"T(http://a.example/)\"><!---> <a href=\"T(http://b.example/)\">",
         2, "<!--> and <!---> are whole comments");
  check ("<!-- a -- b --!> <a href=\"http://a.example/\"> -->",
         "<!-- a -- b --!> <a href=\"T(http://a.example/)\"> -->", 1,
         "--!> ends a comment");
  check ("<!--[if mso]><a href=\"http://a.example/\"><![endif]-->"
         "<a href=\"http://b.example/\">",
         "<!--[if mso]><a href=\"http://a.example/\"><![endif]-->"
         "<a href=\"T(http://b.example/)\">", 1,
         "an Outlook conditional comment is a comment");
  check ("<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0//EN\" \"x\">"
         "<a href=\"http://a.example/\">",
         "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0//EN\" \"x\">"
         "<a href=\"T(http://a.example/)\">", 1, "a doctype");
  check ("<? <a href=\"http://a.example/\"> ?><a href=\"http://b.example/\">",
         "<? <a href=\"http://a.example/\"> ?><a href=\"T(http://b.example/)\">",
         1, "<? is a bogus comment up to the first >");
  check ("<![CDATA[<a href=\"http://a.example/\">]]><a href=\"http://b.example/\">",
         "<![CDATA[<a href=\"http://a.example/\">]]><a href=\"T(http://b.example/)\">",
         1, "CDATA outside svg is a bogus comment up to the first >");
  check ("</a href=\"http://a.example/\"></ a href=\"http://b.example/\">"
         "</><a href=\"http://c.example/\">",
         "</a href=\"http://a.example/\"></ a href=\"http://b.example/\">"
         "</><a href=\"T(http://c.example/)\">", 1,
         "end tags and </ + space (a bogus comment) are not links");
  check ("a < b <a href=\"http://a.example/\"> 1<2 <3",
         "a < b <a href=\"T(http://a.example/)\"> 1<2 <3", 1,
         "a lone < is text");
  check ("<script>document.write('<a href=\"http://a.example/\">')</script>"
         "<a href=\"http://b.example/\">",
         "<script>document.write('<a href=\"http://a.example/\">')</script>"
         "<a href=\"T(http://b.example/)\">", 1, "script content is not markup");
  check ("<SCRIPT type=x>if (a</b) x('</scripts>')</SCRIPT ><a href=\"http://b.example/\">",
         "<SCRIPT type=x>if (a</b) x('</scripts>')</SCRIPT ><a href=\"T(http://b.example/)\">",
         1, "script ends at </script + space, any case; </scripts> does not end it");
  check ("<script><!--<script></script><a href=\"http://a.example/\"></script>-->"
         "<a href=\"http://b.example/\">",
         "<script><!--<script></script><a href=\"http://a.example/\"></script>-->"
         "<a href=\"T(http://b.example/)\">", 1,
         "script double escaping: <!--<script> then </script> goes back to escaped");
  check ("<script><!-- x --></script><a href=\"http://a.example/\">"
         "<script><!-- </script><a href=\"http://b.example/\">",
         "<script><!-- x --></script><a href=\"T(http://a.example/)\">"
         "<script><!-- </script><a href=\"T(http://b.example/)\">", 2,
         "script escaped: </script> still ends it");
  check ("<style>a[href=\"http://a.example/\"]{}</STYLE >"
         "<a href=\"http://b.example/\">",
         "<style>a[href=\"http://a.example/\"]{}</STYLE >"
         "<a href=\"T(http://b.example/)\">", 1, "style is raw text");
  check ("<textarea><a href=\"http://a.example/\"></textarea>"
         "<title><a href=\"http://b.example/\"></title>"
         "<xmp><a href=\"http://c.example/\"></xmp>"
         "<iframe><a href=\"http://d.example/\"></iframe>"
         "<noembed><a href=\"http://e.example/\"></noembed>"
         "<noframes><a href=\"http://f.example/\"></noframes>"
         "<noscript><a href=\"http://g.example/\"></noscript>",
         "<textarea><a href=\"http://a.example/\"></textarea>"
         "<title><a href=\"http://b.example/\"></title>"
         "<xmp><a href=\"http://c.example/\"></xmp>"
         "<iframe><a href=\"http://d.example/\"></iframe>"
         "<noembed><a href=\"http://e.example/\"></noembed>"
         "<noframes><a href=\"http://f.example/\"></noframes>"
         "<noscript><a href=\"T(http://g.example/)\"></noscript>", 1,
         "RCDATA and RAWTEXT elements; noscript is markup (scripting off)");
  check ("<a title=\"a>b\" href=\"http://a.example/\">x</a>"
         "<a title='<a href=\"http://b.example/\">'>y</a>",
         "<a title=\"a>b\" href=\"T(http://a.example/)\">x</a>"
         "<a title='<a href=\"http://b.example/\">'>y</a>", 1,
         "> and a tag inside a quoted value");
  check ("<a href=http://a.example/\"x'y`<z>A</a>",
         "<a href=\"T(http://a.example/&quot;x'y`<z)\">A</a>", 1,
         "quotes and < inside an unquoted value belong to it");
  check ("<a \"href\"=\"http://a.example/\" 'x=1>b</a><a =href=\"http://b.example/\">",
         "<a \"href\"=\"http://a.example/\" 'x=1>b</a><a =href=\"http://b.example/\">",
         0, "quotes or = in an attribute name make another name");
}

static void
test_unfinished (void)
{
  check_n (&with_pixel, "<p>x</p><a href=\"http://a.example/",
           -1, "<p>x</p>" PIXEL "<a href=\"http://a.example/", 0,
           "the text ends inside a value: no link, the pixel before the tag");
  check_n (&with_pixel, "<a href=\"http://a.example/\"", -1,
           PIXEL "<a href=\"http://a.example/\"", 0,
           "the text ends inside the tag: no link");
  check_n (&with_pixel, "<p>x<!-- <a href=\"http://a.example/\">", -1,
           "<p>x" PIXEL "<!-- <a href=\"http://a.example/\">", 0,
           "an unclosed comment");
  check_n (&with_pixel, "<a href=\"http://a.example/\">x<style>p{}", -1,
           "<a href=\"T(http://a.example/)\">x" PIXEL "<style>p{}", 1,
           "an unclosed style");
  check_n (&with_pixel, "<script><!--<script><a href=\"http://d.example/\"></script>",
           -1, PIXEL "<script><!--<script><a href=\"http://d.example/\"></script>",
           0, "a script still double escaped at the end is unclosed");
  check_n (&with_pixel, "<style>p{}</style foo=\"", -1,
           PIXEL "<style>p{}</style foo=\"", 0,
           "a raw-text end tag unfinished: before the element");
  check_n (&with_pixel, "<p>x<plaintext><a href=\"http://a.example/\"></body>",
           -1, "<p>x" PIXEL "<plaintext><a href=\"http://a.example/\"></body>", 0,
           "plaintext: the rest is text");
  check_n (&with_pixel, "x <!DOCTYPE html", -1, "x " PIXEL "<!DOCTYPE html", 0,
           "an unclosed doctype");
  check_n (&with_pixel, "x <", -1, "x <" PIXEL, 0, "a < at the end is text");
  check_n (&with_pixel, "x </", -1, "x " PIXEL "</", 0,
           "</ at the end: the pixel before it (after it, </<img is a bogus "
           "comment)");
  check_n (&with_pixel, "", 0, PIXEL, 0, "an empty text gets the pixel");
}

static void
test_pixel (void)
{
  check_n (&with_pixel, "<html><body><p>x</p></body></html>", -1,
           "<html><body><p>x</p>" PIXEL "</body></html>", 0, "before </body>");
  check_n (&with_pixel, "<BODY>x</BODY ><p>y</p></body>", -1,
           "<BODY>x" PIXEL "</BODY ><p>y</p></body>", 0,
           "before the first </body>, any case");
  check_n (&with_pixel, "<p>x</p><!-- </body> --><script>'</body>'</script>",
           -1, "<p>x</p><!-- </body> --><script>'</body>'</script>" PIXEL, 0,
           "a </body> in a comment or a script is not one: at the end");
  check_n (&with_pixel, "<p>x</p><bodyx></bodyx>", -1,
           "<p>x</p><bodyx></bodyx>" PIXEL, 0, "</bodyx> is not </body>");
  {
    const struct linkrewrite amp = { "https://t.test/x?a=1&b", NULL,
                                     "https://t.test/x?a=1&b/o/T\".gif",
                                     track, NULL };
    check_n (&amp, "<p>x</p>", -1,
             "<p>x</p><img src=\"https://t.test/x?a=1&amp;b/o/T&quot;.gif\" "
             "width=\"1\" height=\"1\" alt=\"\">", 0,
             "the pixel URL is escaped");
  }
}

static void
test_text (void)
{
  check_text ("Visit https://a.example/p. Or http://b.example/q?x=1&y=2, or not.\n",
              "Visit T(https://a.example/p). Or T(http://b.example/q?x=1&y=2), or not.\n",
              2, "two URLs, trailing punctuation left out");
  check_text ("(see https://a.example/a_(b)) and [https://b.example/]",
              "(see T(https://a.example/a_(b))) and [T(https://b.example/)]", 2,
              "balanced brackets kept, unbalanced ones left out");
  check_text ("<https://a.example/> \"http://b.example/\" HTTPS://C.EXAMPLE/",
              "<T(https://a.example/)> \"T(http://b.example/)\" T(HTTPS://C.EXAMPLE/)",
              3, "angle brackets and quotes end a URL; any case");
  check_text ("xhttps://a.example/ https:// http:/x mailto:a@b.c "
              "https://t.test/x/u/UNSUB.MAC https://t.test/x/c/Q",
              "xhttps://a.example/ https:// http:/x mailto:a@b.c "
              "https://t.test/x/u/UNSUB.MAC https://t.test/x/c/Q", 0,
              "not after a letter, not bare schemes, not ours");
  check_text ("no links at all", "no links at all", 0, "no URL");
}

static void
test_failures (void)
{
  struct strbuf out = STRBUF_INIT;
  const struct linkrewrite none = { NULL, NULL, NULL, NULL, NULL };
  static const char html[] = "<a href=\"http://a.example/\">x</a>";

  fail_track = 1;
  tap_ok (linkrewrite_html (&plain, html, sizeof html - 1, &out) == -1,
          "html: a failing track function fails the rewrite");
  strbuf_reset (&out);
  tap_ok (linkrewrite_text (&plain, "see http://a.example/", 21, &out) == -1,
          "text: a failing track function fails the rewrite");
  fail_track = 0;
  strbuf_reset (&out);
  tap_ok (linkrewrite_html (&none, html, sizeof html - 1, &out) == 0
          && strcmp (out.s, html) == 0,
          "without a track function and pixel, the text is unchanged");
  strbuf_free (&out);
}

int
main (void)
{
  test_quoting ();
  test_references ();
  test_which ();
  test_structure ();
  test_unfinished ();
  test_pixel ();
  test_text ();
  test_failures ();
  return tap_done ();
}

/* plugins/http/http.h: the HTTP layer shared by the sms, push and webhook
 * plugins.  It is compiled into each plugin (never installed, never
 * exported: the plugins export only herald_plugin_entry), so every name here
 * is http_ and has hidden linkage in the shared object.
 *
 * One http_client per channel instance: a libcurl multi handle whose
 * connection cache gives keep-alive and HTTP/2 multiplexing, a pool of easy
 * handles, a token bucket (rate) and a cap on requests in flight
 * (concurrency).  http_client_run performs a batch of requests and returns
 * when every one has an outcome; it never retries by itself (the core owns
 * retries and backoff).  Not thread-safe: one thread per client, as the ABI
 * promises.
 */
#ifndef HERALD_PLUGIN_HTTP_H
#define HERALD_PLUGIN_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>
#include <herald/plugin.h>

/* A growable byte buffer, always NUL-terminated after its len bytes.
 * Owned by whoever holds it; release with http_buf_free. */
struct http_buf {
  char *data;
  size_t len;
  size_t cap;
};

void http_buf_init (struct http_buf *b);
void http_buf_free (struct http_buf *b);
void http_buf_reset (struct http_buf *b);
void http_buf_add (struct http_buf *b, const void *p, size_t n);
void http_buf_adds (struct http_buf *b, const char *s);
void http_buf_printf (struct http_buf *b, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Append s form-urlencoded (RFC 3986 unreserved kept, everything else %XX). */
void http_buf_add_urlenc (struct http_buf *b, const char *s, size_t n);
/* Append "&name=value" (no '&' when the buffer is empty), value encoded. */
void http_buf_add_form (struct http_buf *b, const char *name,
                        const char *value, size_t vlen);

/* Options of a client, read from the channel section by http_conf_common. */
struct http_opts {
  double rate;          /* requests per second; 0 = unlimited */
  long concurrency;     /* requests in flight, >= 1 */
  long timeout_ms;      /* whole request, >= 1 */
  const char *ca_file;  /* PEM bundle to verify servers with, or NULL for
                         * the system's; the client copies it */
};

/* One request and, after http_client_run, its outcome.  The caller owns
 * every pointer it sets (url, headers, body) and must keep them valid until
 * http_client_run returns; the response buffers are owned by the request
 * and released by http_req_free. */
struct http_req {
  /* In. */
  const char *method;              /* "POST" (default when NULL), "GET"... */
  const char *url;
  struct curl_slist *headers;      /* may be NULL */
  const char *body;
  size_t body_len;
  const char *username;            /* HTTP Basic when set */
  const char *password;
  void *user;                      /* the caller's */
  int public_only;                 /* refuse to connect to loopback,
                                    * private, link-local, multicast or
                                    * unspecified addresses (SSRF guard
                                    * for customer-supplied URLs) */

  /* Out. */
  CURLcode curl_code;              /* CURLE_OK when a response arrived */
  int blocked;                     /* public_only refused an address */
  char curl_error[CURL_ERROR_SIZE];
  long status;                     /* HTTP status, 0 when none */
  struct http_buf resp_body;
  struct http_buf resp_headers;    /* raw header block of the last response */
  CURL *easy_;                     /* http.c's: the handle while in flight */
};

void http_req_init (struct http_req *r);
/* Release the response buffers (not the caller's inputs); ready for reuse. */
void http_req_free (struct http_req *r);

/* Value of response header NAME (case-insensitive) copied into out, trimmed;
 * returns its length, or -1 when absent (out is then ""). */
int http_req_header (const struct http_req *r, const char *name,
                     char *out, size_t outlen);

/* Retry-After of the response (RFC 9110 10.2.3: delay-seconds or an
 * HTTP-date) in milliseconds, 0 when absent or unparsable. */
int64_t http_req_retry_after_ms (const struct http_req *r);

struct http_client;

/* New client; NULL after writing a message into err.  Free with
 * http_client_free (NULL is a no-op).  Calls curl_global_init once per
 * process (guarded, harmless if the core already did). */
struct http_client *http_client_new (const struct http_opts *o,
                                     char *err, size_t errlen);
void http_client_free (struct http_client *c);

/* Close every cached connection, so the next requests open new ones (APNs
 * asks for a new connection after 429, 500 and 503).  Only between runs.
 * Returns 0, or -1 (nothing changed) when libcurl is out of memory. */
int http_client_reconnect (struct http_client *c);

/* Perform the n requests, at most concurrency at a time and no faster than
 * rate, and return when each has an outcome.  Returns 0, or -1 when the
 * multi interface itself failed (then every unfinished request carries a
 * curl_code other than CURLE_OK). */
int http_client_run (struct http_client *c, struct http_req **reqs, size_t n);

/* --- Result helpers: fill a herald_result (fixed-size buffers, truncating). */

void http_result_set (struct herald_result *res, int status,
                      const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
void http_result_sent (struct herald_result *res, const char *provider_id,
                       size_t len);
/* Classify a request that got no usable answer or an answer every provider
 * means the same way: transport error, timeout, 408, 429, 5xx -> RETRY
 * (honouring Retry-After, at least min_retry_ms when > 0).  Returns 1 when it
 * filled res, 0 when the status is for the caller to classify.  what names
 * the provider in the error text ("twilio"). */
int http_result_transient (struct herald_result *res,
                           const struct http_req *r, const char *what,
                           int64_t min_retry_ms);

/* A short printable excerpt of a response body for error texts: control
 * characters replaced, cut at max bytes. */
void http_excerpt (char *out, size_t outlen, const char *s, size_t len,
                   size_t max);

/* --- Configuration helpers. ---------------------------------------------- */

/* Write "FILE:LINE: [channel.NAME] KEY: message" into err. */
void http_conf_error (const struct herald_host *h, const char *key,
                      char *err, size_t errlen, const char *fmt, ...)
  __attribute__ ((format (printf, 5, 6)));

/* Read the common keys rate, concurrency, timeout_ms, ca_file (pointing
 * into the host's strings, valid until close); defaults come in o.
 * Returns 0 or -1 with err set. */
/* The value of KEY, a file's path, relative to the gateway file's folder
 * (herald_host.config_path). */
const char *http_conf_path (const struct herald_host *h, const char *key);

int http_conf_common (const struct herald_host *h, struct http_opts *o,
                      char *err, size_t errlen);

/* Integer / boolean keys with defaults and bounds; 0 or -1 with err set. */
int http_conf_long (const struct herald_host *h, const char *key, long def,
                    long min, long max, long *r, char *err, size_t errlen);
int http_conf_bool (const struct herald_host *h, const char *key, int def,
                    int *r, char *err, size_t errlen);

/* A secret given inline as KEY or in the file named by FILE_KEY (first line,
 * trailing whitespace removed).  *r is a malloc'ed copy the caller frees
 * (wiped first with http_secret_free), NULL when neither key is set and
 * required is 0.  The secret never appears in err. */
int http_conf_secret (const struct herald_host *h, const char *key,
                      const char *file_key, int required, char **r,
                      char *err, size_t errlen);
void http_secret_free (char *s);

/* Read a whole file into a malloc'ed NUL-terminated string (caller frees);
 * NULL with err set ("PATH: strerror"). */
char *http_read_file (const char *path, size_t *len_r, char *err,
                      size_t errlen);

/* strdup that aborts on out-of-memory, like every allocation here. */
char *http_strdup (const char *s);
void *http_xmalloc (size_t n);
void *http_xcalloc (size_t n, size_t size);

/* --- Encodings and crypto (OpenSSL). ------------------------------------- */

/* Base64 (RFC 4648 section 4) or base64url without padding (section 5) of
 * len bytes appended to b. */
void http_base64 (struct http_buf *b, const unsigned char *p, size_t len,
                  int url);
/* Decode standard base64 (padding optional) into a malloc'ed buffer the
 * caller frees; NULL when invalid. */
unsigned char *http_unbase64 (const char *s, size_t *len_r);

/* Constant-time comparison of two byte strings of possibly different
 * lengths (the length difference is not hidden). */
int http_ct_equal (const void *a, size_t alen, const void *b, size_t blen);

/* Seconds since the epoch; HERALD_FAKE_NOW (tests) overrides it. */
int64_t http_now (void);

#endif /* HERALD_PLUGIN_HTTP_H */

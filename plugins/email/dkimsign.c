/* dkimsign.c: DKIM signatures (RFC 6376) for the email plugin, through
 * libopendkim.  See dkimsign.h for the contract.
 *
 * All libopendkim calls live in this file.  It must never send a message
 * unsigned when signing is configured (a failure is reported, not
 * skipped), never let libopendkim read a key we have not checked (its own
 * PEM reader would prompt for a passphrase on a terminal), and never keep
 * the key readable after dkimsign_free.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <dkim.h>

#include "dkimsign.h"

/* Longest key file read: a PEM RSA key of 16384 bits is about 13 kB. */
#define DKIMSIGN_KEY_FILE_MAX 65536
/* RFC 8301 section 3.2: signers MUST use RSA keys of at least 1024 bits
 * (and SHOULD use 2048). */
#define DKIMSIGN_RSA_MIN_BITS 1024

static const char dkimsign_field[] = "DKIM-Signature: ";

/* The header fields signed when present; the library lower-cases nothing,
 * so h= spells them as the message does.  libopendkim turns this list into
 * one case-insensitive regex "^(from|to|...)$". */
static const char *const dkimsign_headers[] = {
  "From", "To", "Subject", "Date", "Message-ID", "MIME-Version",
  "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe",
  "List-Unsubscribe-Post", NULL
};

struct dkimsign {
  DKIM_LIB *lib;
  long live;                     /* blocks the library holds for a message */
  unsigned char *domain;
  unsigned char *selector;
  char *key;                     /* unencrypted PKCS#8 PEM, NUL-terminated */
  size_t key_len;
  dkim_alg_t alg;
};

/* RFC 6376 section 3.1 and 3.5: the selector and the d= domain are
 * domain names (sub-domain *("." sub-domain), RFC 5321): labels of 1 to
 * 63 letters, digits and hyphens, no hyphen first or last. */
static int
dkimsign_name_ok (const char *s)
{
  size_t n = strlen (s), label = 0, i;

  if (n == 0 || n > 253)
    return 0;
  for (i = 0; i <= n; i++) {
    char c = s[i];
    if (c == '.' || c == '\0') {
      if (label == 0 || s[i - 1] == '-')
        return 0;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
               || (c >= '0' && c <= '9') || c == '-') {
      if (c == '-' && label == 0)
        return 0;
      if (++label > 63)
        return 0;
    } else
      return 0;
  }
  return 1;
}

/* OpenSSL's passphrase callback: there is none.  Without it the PEM
 * reader would ask on the terminal for an encrypted key's passphrase. */
static int
dkimsign_no_passphrase (char *buf, int size, int rwflag, void *u)
{
  (void) buf;
  (void) size;
  (void) rwflag;
  (void) u;
  return -1;
}

/* Read PATH whole into a new NUL-terminated buffer (*len_r bytes), after
 * checking on the open file itself (no race with a rename) that it is a
 * regular file that only its owner can use.  NULL with err set. */
static char *
dkimsign_read_key_file (const char *path, size_t *len_r, char *err,
                        size_t errlen)
{
  struct stat sb;
  char *buf = NULL;
  size_t len = 0;
  ssize_t got;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    snprintf (err, errlen, "cannot read '%s': %s", path, strerror (errno));
    return NULL;
  }
  if (fstat (fd, &sb) < 0) {
    snprintf (err, errlen, "cannot read '%s': %s", path, strerror (errno));
    goto fail;
  }
  if (!S_ISREG (sb.st_mode)) {
    snprintf (err, errlen, "'%s' is not a regular file", path);
    goto fail;
  }
  /* The private key signs for the whole domain: like ssh with its keys,
   * refuse one that group or others could read (or replace). */
  if ((sb.st_mode & 077) != 0) {
    snprintf (err, errlen, "'%s' is open to group or others (mode %04o): "
              "the private key must be readable by its owner only "
              "(chmod 600)", path, (unsigned) (sb.st_mode & 07777));
    goto fail;
  }
  buf = malloc (DKIMSIGN_KEY_FILE_MAX + 1);
  if (buf == NULL) {
    snprintf (err, errlen, "out of memory");
    goto fail;
  }
  for (;;) {
    got = read (fd, buf + len, DKIMSIGN_KEY_FILE_MAX + 1 - len);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      snprintf (err, errlen, "cannot read '%s': %s", path,
                strerror (errno));
      goto fail;
    }
    if (got == 0)
      break;
    len += (size_t) got;
    if (len > DKIMSIGN_KEY_FILE_MAX) {
      snprintf (err, errlen, "'%s' is too large for a private key (over "
                "%d bytes)", path, DKIMSIGN_KEY_FILE_MAX);
      goto fail;
    }
  }
  close (fd);
  buf[len] = '\0';
  *len_r = len;
  return buf;

fail:
  if (buf != NULL) {
    OPENSSL_cleanse (buf, len);
    free (buf);
  }
  close (fd);
  return NULL;
}

/* Parse the PEM text TEXT[0..LEN) (any private key format OpenSSL reads:
 * PKCS#8 or traditional RSA) and re-encode it as unencrypted PKCS#8 PEM
 * into ds->key, the one form handed to libopendkim; set ds->alg.  0, or -1
 * with err set. */
static int
dkimsign_load_key (struct dkimsign *ds, const char *path, const char *text,
                   size_t len, char *err, size_t errlen)
{
  BIO *in = NULL, *out = NULL;
  EVP_PKEY *pkey = NULL;
  char *pem;
  long pem_len;
  int r = -1, type, bits;

  in = BIO_new_mem_buf (text, (int) len);
  /* secmem: its buffer is wiped when freed, like our own copies. */
  out = BIO_new (BIO_s_secmem ());
  if (in == NULL || out == NULL) {
    snprintf (err, errlen, "out of memory");
    goto out;
  }
  pkey = PEM_read_bio_PrivateKey (in, NULL, dkimsign_no_passphrase, NULL);
  if (pkey == NULL) {
    snprintf (err, errlen, "'%s' is not an unencrypted PEM private key "
              "(make one with: openssl genrsa -out KEY 2048)", path);
    goto out;
  }
  type = EVP_PKEY_base_id (pkey);
  bits = EVP_PKEY_bits (pkey);
  if (type == EVP_PKEY_RSA) {
    if (bits < DKIMSIGN_RSA_MIN_BITS) {
      snprintf (err, errlen, "'%s' is an RSA key of %d bits: DKIM needs at "
                "least %d (RFC 8301), 2048 is the usual size", path, bits,
                DKIMSIGN_RSA_MIN_BITS);
      goto out;
    }
    ds->alg = DKIM_SIGN_RSASHA256;
  } else if (type == EVP_PKEY_ED25519) {
    if (!dkim_libfeature (ds->lib, DKIM_FEATURE_ED25519)) {
      snprintf (err, errlen, "'%s' is an Ed25519 key, and this libopendkim "
                "was built without Ed25519 (RFC 8463): use an RSA key",
                path);
      goto out;
    }
    ds->alg = DKIM_SIGN_ED25519SHA256;
  } else {
    snprintf (err, errlen, "'%s' is neither an RSA nor an Ed25519 key: DKIM "
              "signs with rsa-sha256 (RFC 6376) or ed25519-sha256 "
              "(RFC 8463)", path);
    goto out;
  }
  if (PEM_write_bio_PrivateKey (out, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
    snprintf (err, errlen, "cannot re-encode the key in '%s'", path);
    goto out;
  }
  pem_len = BIO_get_mem_data (out, &pem);
  if (pem_len <= 0 || (ds->key = malloc ((size_t) pem_len + 1)) == NULL) {
    snprintf (err, errlen, "out of memory");
    goto out;
  }
  memcpy (ds->key, pem, (size_t) pem_len);
  ds->key[pem_len] = '\0';
  ds->key_len = (size_t) pem_len;
  r = 0;

out:
  /* A failed parse leaves errors on this thread's OpenSSL queue, where
   * libESMTP's next SSL_get_error would find them. */
  ERR_clear_error ();
  EVP_PKEY_free (pkey);
  BIO_free (in);
  BIO_free (out);
  return r;
}

/* libopendkim's allocator for a signing handle (its memclosure is
 * &ds->live): plain malloc and free, counting the blocks still held, so
 * that the probe at open can see whether the library releases everything
 * a signature took.  Debian 12's 2.11.0~beta2 does not for Ed25519: its
 * dkim_free frees the key state of RSA signatures only, and every Ed25519
 * signature leaks its parsed key (about 700 bytes with what OpenSSL
 * allocates for it; measured with AddressSanitizer). */
static void *
dkimsign_lib_malloc (void *closure, size_t n)
{
  void *p = malloc (n);

  if (p != NULL && closure != NULL)
    (*(long *) closure)++;
  return p;
}

static void
dkimsign_lib_free (void *closure, void *p)
{
  if (p != NULL && closure != NULL)
    (*(long *) closure)--;
  free (p);
}

/* The library's words for STATUS, for an error message. */
static const char *
dkimsign_why (DKIM *d, DKIM_STAT status)
{
  const char *e = d != NULL ? dkim_geterror (d) : NULL;

  if (e != NULL && *e)
    return e;
  e = dkim_getresultstr (status);
  return e != NULL ? e : "unknown error";
}

int
dkimsign_message (struct dkimsign *ds, const char *id, struct mime_buf *msg,
                  char *err, size_t errlen)
{
  struct mime_buf out;
  DKIM_STAT st = DKIM_STAT_OK;
  DKIM *d;
  unsigned char *hdr = NULL;
  size_t hdr_len = 0;
  int r;

  mime_buf_init (&out);
  d = dkim_sign (ds->lib, (const unsigned char *) (id ? id : "herald"),
                 &ds->live, (dkim_sigkey_t) ds->key, ds->selector, ds->domain,
                 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, ds->alg, -1, &st);
  if (d == NULL)
    goto fail;
  st = dkim_chunk (d, (unsigned char *) msg->data, msg->len);
  if (st == DKIM_STAT_OK)
    st = dkim_chunk (d, NULL, 0);
  if (st == DKIM_STAT_OK)
    st = dkim_eom (d, NULL);
  if (st == DKIM_STAT_OK)
    st = dkim_getsighdr_d (d, sizeof dkimsign_field - 1, &hdr, &hdr_len);
  if (st != DKIM_STAT_OK)
    goto fail;
  /* RFC 6376 section 5.6: the signature is prepended to the message.
   * libopendkim folds it with CRLF and a tab. */
  mime_buf_add (&out, dkimsign_field, sizeof dkimsign_field - 1);
  mime_buf_add (&out, hdr, hdr_len);
  mime_buf_add (&out, "\r\n", 2);
  mime_buf_add (&out, msg->data, msg->len);
  if (out.failed) {
    st = DKIM_STAT_NORESOURCE;
    goto fail;
  }
  dkim_free (d);
  mime_buf_free (msg);
  *msg = out;
  return DKIMSIGN_OK;

fail:
  r = st == DKIM_STAT_NORESOURCE ? DKIMSIGN_NOMEM
      : st == DKIM_STAT_SYNTAX ? DKIMSIGN_MESSAGE : DKIMSIGN_FAILED;
  snprintf (err, errlen, "DKIM: cannot sign the message: %s",
            dkimsign_why (d, st));
  if (d != NULL)
    dkim_free (d);
  mime_buf_free (&out);
  ERR_clear_error ();
  return r;
}

int
dkimsign_new (const char *domain, const char *selector, const char *key_file,
              struct dkimsign **ds_r, const char **key_r, char *err,
              size_t errlen)
{
  static const char *const names[] = { "dkim_domain", "dkim_selector",
                                       "dkim_key_file" };
  const char *vals[3];
  struct dkimsign *ds = NULL;
  struct mime_buf probe;
  char *text = NULL, perr[256];
  size_t text_len = 0;
  int i, set = 0, r = -1;

  *ds_r = NULL;
  vals[0] = domain;
  vals[1] = selector;
  vals[2] = key_file;
  for (i = 0; i < 3; i++)
    set += vals[i] != NULL && vals[i][0] != '\0';
  if (set == 0)
    return 0;
  if (set < 3) {
    /* Name the first key that is set, and what is missing. */
    const char *missing[3];
    int n = 0, first = -1;
    for (i = 0; i < 3; i++) {
      if (vals[i] != NULL && vals[i][0] != '\0') {
        if (first < 0)
          first = i;
      } else
        missing[n++] = names[i];
    }
    *key_r = names[first];
    snprintf (err, errlen, "set, but %s%s%s %s not: DKIM needs dkim_domain, "
              "dkim_selector and dkim_key_file", missing[0],
              n > 1 ? " and " : "", n > 1 ? missing[1] : "",
              n > 1 ? "are" : "is");
    return -1;
  }
  if (!dkimsign_name_ok (domain)) {
    *key_r = "dkim_domain";
    snprintf (err, errlen, "'%s' is not a domain name", domain);
    return -1;
  }
  if (!dkimsign_name_ok (selector)) {
    *key_r = "dkim_selector";
    snprintf (err, errlen, "'%s' is not a selector (letters, digits, "
              "hyphens and dots: RFC 6376 section 3.1)", selector);
    return -1;
  }

  *key_r = "dkim_key_file";
  ds = calloc (1, sizeof *ds);
  if (ds == NULL) {
    snprintf (err, errlen, "out of memory");
    return -1;
  }
  ds->domain = (unsigned char *) strdup (domain);
  ds->selector = (unsigned char *) strdup (selector);
  ds->lib = dkim_init (dkimsign_lib_malloc, dkimsign_lib_free);
  if (ds->domain == NULL || ds->selector == NULL || ds->lib == NULL) {
    snprintf (err, errlen, "out of memory");
    goto out;
  }
  if (dkim_options (ds->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
                    (void *) dkimsign_headers, sizeof (char **))
      != DKIM_STAT_OK
      || dkim_options (ds->lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
                       (void *) dkimsign_headers, sizeof (char **))
         != DKIM_STAT_OK) {
    snprintf (err, errlen, "libopendkim refused the list of header fields "
              "to sign");
    goto out;
  }

  text = dkimsign_read_key_file (key_file, &text_len, err, errlen);
  if (text == NULL)
    goto out;
  if (dkimsign_load_key (ds, key_file, text, text_len, err, errlen) < 0)
    goto out;

  /* Sign a small message now, so that a key libopendkim cannot use is a
   * configuration error at open, not a failure of every message; and
   * refuse an algorithm whose signatures the library does not free: a
   * gateway signs millions of messages. */
  {
    static const char head[] = "From: <probe@",
                      rest[] = ">\r\nSubject: probe\r\n\r\nprobe\r\n";
    mime_buf_init (&probe);
    mime_buf_add (&probe, head, sizeof head - 1);
    mime_buf_add (&probe, domain, strlen (domain));
    mime_buf_add (&probe, rest, sizeof rest - 1);
  }
  if (probe.failed) {
    mime_buf_free (&probe);
    snprintf (err, errlen, "out of memory");
    goto out;
  }
  ds->live = 0;
  i = dkimsign_message (ds, "herald-probe", &probe, perr, sizeof perr);
  mime_buf_free (&probe);
  if (i != DKIMSIGN_OK) {
    snprintf (err, errlen, "'%s': %s", key_file, perr);
    goto out;
  }
  if (ds->live != 0) {
    if (ds->alg == DKIM_SIGN_ED25519SHA256)
      snprintf (err, errlen, "'%s' is an Ed25519 key, and this libopendkim "
                "leaks memory on every Ed25519 signature (its dkim_free "
                "releases RSA keys only, as in 2.11.0~beta2 of Debian 12): "
                "use an RSA key", key_file);
    else
      snprintf (err, errlen, "'%s': this libopendkim leaks memory on every "
                "signature with this key", key_file);
    goto out;
  }
  *ds_r = ds;
  ds = NULL;
  r = 0;

out:
  if (text != NULL) {
    OPENSSL_cleanse (text, text_len);
    free (text);
  }
  dkimsign_free (ds);
  return r;
}

const char *
dkimsign_algorithm (const struct dkimsign *ds)
{
  return ds->alg == DKIM_SIGN_ED25519SHA256 ? "ed25519-sha256"
         : "rsa-sha256";
}

void
dkimsign_free (struct dkimsign *ds)
{
  if (ds == NULL)
    return;
  if (ds->lib != NULL)
    dkim_close (ds->lib);
  if (ds->key != NULL) {
    OPENSSL_cleanse (ds->key, ds->key_len);
    free (ds->key);
  }
  free (ds->domain);
  free (ds->selector);
  free (ds);
}

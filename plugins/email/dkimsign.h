/* dkimsign.h: DKIM signatures (RFC 6376) for the email plugin, through
 * libopendkim.
 *
 * One struct dkimsign per plugin state: it holds the library handle
 * (dkim_init compiles the signed-header list into a regex and initialises
 * the resolver: not something to redo per message), the key and the
 * names.  Like the state itself it is used by one thread at a time; two
 * states (two lanes) have two of them.
 *
 * What is signed, and how:
 *  - relaxed/relaxed canonicalisation (RFC 6376 section 3.4), the whole
 *    body (no l= tag), the current time as t=, no x=;
 *  - rsa-sha256 with an RSA key of at least 1024 bits (RFC 8301), or
 *    ed25519-sha256 with an Ed25519 key (RFC 8463) when the library can
 *    and frees what each signature takes (Debian 12's 2.11.0~beta2 leaks
 *    the key of every Ed25519 signature: refused there);
 *  - h= covers From, To, Subject, Date, Message-ID, MIME-Version,
 *    Content-Type, Content-Transfer-Encoding, List-Unsubscribe and
 *    List-Unsubscribe-Post when present, and names each of them once more
 *    (over-signing, RFC 6376 section 8.15): a header field added after
 *    signing, a second From or a List-Unsubscribe on a message that had
 *    none, breaks the signature.
 * The bytes signed are the message itself (CRLF line endings), never its
 * SMTP transport encoding: libESMTP dot-stuffs after us and the receiving
 * server undoes it (RFC 5321 section 4.5.2). */
#ifndef HERALD_DKIMSIGN_H
#define HERALD_DKIMSIGN_H

#include <stddef.h>

#include "../common/mime.h"

struct dkimsign;

/* Set up signing from the three configuration values (each NULL when
 * absent).  None set: *ds_r = NULL and 0 (the channel does not sign).
 * All set and usable: *ds_r is the signer (free with dkimsign_free) and 0.
 * Otherwise -1, with *key_r the configuration key at fault and a message
 * (without the key) in err:
 *  - one or two of the three set;
 *  - a domain or selector that is not a domain name;
 *  - a key file that cannot be read, is not a regular file, or is open to
 *    group or others (any of the mode bits 077: it holds the private key);
 *  - a key that is not an unencrypted PEM private key, is neither RSA nor
 *    Ed25519, is RSA below 1024 bits, is Ed25519 where libopendkim cannot
 *    sign with it, or that libopendkim fails to sign a test message with
 *    or does not free all it took for it (counted through its allocator
 *    hooks). */
int dkimsign_new (const char *domain, const char *selector,
                  const char *key_file, struct dkimsign **ds_r,
                  const char **key_r, char *err, size_t errlen);

/* Release everything; NULL is a no-op.  The key's bytes are wiped. */
void dkimsign_free (struct dkimsign *ds);

/* "rsa-sha256" or "ed25519-sha256": the algorithm ds signs with. */
const char *dkimsign_algorithm (const struct dkimsign *ds);

/* Return codes of dkimsign_message. */
#define DKIMSIGN_OK 0
#define DKIMSIGN_NOMEM (-1)    /* out of memory: try again later */
#define DKIMSIGN_MESSAGE (-2)  /* libopendkim refused this message */
#define DKIMSIGN_FAILED (-3)   /* the signer failed (key, library) */

/* Sign MSG, a complete message as mime_build wrote it, and put its
 * DKIM-Signature header field in front of it (RFC 6376 section 5.6).  ID
 * names the message in the library's own diagnostics (the message key).
 * Returns DKIMSIGN_OK, or one of the codes above after writing a message
 * into err; MSG is then unchanged. */
int dkimsign_message (struct dkimsign *ds, const char *id,
                      struct mime_buf *msg, char *err, size_t errlen);

#endif /* HERALD_DKIMSIGN_H */

/* bounce: what one message of a bounce mailbox says, read through GMime.
 *
 * A bounce mailbox (the MX of a channel's bounce_domain) collects the mail
 * sent to Herald's VERP envelope senders: delivery status notifications
 * (RFC 3464, multipart/report; report-type=delivery-status), complaint
 * reports of feedback loops (ARF, RFC 5965, report-type=feedback-report),
 * the non-standard bounces of MTAs that write prose instead (qmail's "Hi.
 * This is the qmail-send program", Yahoo's "Sorry, we were unable to
 * deliver", Gmail's older "Delivery to the following recipient failed
 * permanently"), and whatever else people and robots answer to an
 * envelope sender (vacation replies, challenge-response).
 *
 * bounce_parse classifies one message and says what it names: the VERP
 * local parts ("b+TOKEN") on its envelope headers and in the returned
 * message's Return-Path (or the ARF Original-Mail-From), and the returned
 * message's Message-ID.  It checks no token and knows no store: mapping to
 * a message is core/cmd_bounces.c's job.  It never guesses: a report whose
 * failure it cannot tell permanent (5.x.x) from transient (4.x.x) is
 * BOUNCE_UNPARSEABLE with the reason, never a hard bounce.
 *
 * bounce_read walks a Maildir (cur/ and new/), an mbox file (GMime's
 * parser in mbox mode) or a single message file, and hands each message's
 * bounce to a callback.  It never changes the mailbox.
 *
 * Every string of a struct bounce is valid UTF-8 on one line (control
 * characters become spaces, bytes that are not UTF-8 '?'), at most
 * BOUNCE_TEXT_MAX bytes: fit for a JSON detail and a terminal alike.
 * bounce_global_init must have been called once in the process (it calls
 * g_mime_init); nothing here is for two threads at once. */
#ifndef HERALD_BOUNCE_H
#define HERALD_BOUNCE_H
#include <stddef.h>
#include <stdint.h>

enum bounce_kind {
  BOUNCE_UNPARSEABLE = 0,    /* not a message, or a bounce that does not
                                say what failed or how */
  BOUNCE_HARD,               /* a permanent failure: status 5.x.x */
  BOUNCE_SOFT,               /* a transient failure the sending MTA gave
                                up on: status 4.x.x, Action: failed */
  BOUNCE_COMPLAINT,          /* an ARF report, Feedback-Type abuse or fraud */
  BOUNCE_IGNORED             /* a message that is no bounce: a delay or
                                success notice, another ARF type, an
                                auto-reply, a person's mail */
};

#define BOUNCE_MAX_TOKENS 8
#define BOUNCE_TEXT_MAX 300

struct bounce {
  enum bounce_kind kind;
  const char *format;        /* static: "dsn", "arf", "qmail", "text" or
                                "" (not recognised) */
  char *why;                 /* UNPARSEABLE and IGNORED: why, else NULL */
  int64_t date;              /* the report's Date, unix seconds; 0 when
                                it has none (bounce_read then uses the
                                Maildir file name's or the mbox From
                                line's time, when there is one) */
  char status[16];           /* "5.1.1" (RFC 3463), or an SMTP reply code
                                "550", or "" */
  char *action;              /* DSN Action of the recipient, or NULL */
  char *recipient;           /* the recipient that failed (DSN
                                Final-Recipient, the text's address) or
                                complained (ARF Original-Rcpt-To), or NULL */
  char *diagnostic;          /* DSN Diagnostic-Code, or the text's reason,
                                or NULL */
  char *feedback_type;       /* ARF Feedback-Type, lower case, or NULL */
  char *tokens[BOUNCE_MAX_TOKENS];  /* "b+TOKEN" local parts found, lower
                                       case, each once, in the order of
                                       the headers that carry them */
  size_t n_tokens;
  char *message_id;          /* the returned message's Message-ID, without
                                its angle brackets, or NULL */
};

/* g_mime_init, once per process, before any other function here; and
 * its undoing, which releases GMime's global tables. */
void bounce_global_init (void);
void bounce_global_shutdown (void);

/* Classify the message DATA[0..LEN) (RFC 5322 bytes, LF or CRLF) into *B,
 * which the caller zeroes first and releases with bounce_free.  Always
 * fills B (kind UNPARSEABLE with a why when the bytes are no message). */
void bounce_parse (const char *data, size_t len, struct bounce *b);

/* Release what B holds and zero it; NULL is a no-op. */
void bounce_free (struct bounce *b);

/* One message of a mailbox, lent to bounce_read's callback. */
struct bounce_item {
  const char *name;          /* the file ("box/new/1700000000.M1.host"),
                                or "FILE, message N at byte OFFSET" in an
                                mbox */
  const char *error;         /* non-NULL: the file or folder could not be
                                read, and why (b is then NULL) */
  const struct bounce *b;
};

/* Read PATH: a Maildir (a folder with cur/ or new/; tmp/ is left alone),
 * an mbox (a file whose first line starts with "From "), or one message
 * (any other file).  Calls CB for each message, in order (a Maildir's
 * files by name, new/ after cur/), and for each file or folder that could
 * not be read (with item->error).  *FILES_R grows by the files read.
 * Returns the number of files (or folders) that could not be read, or -1
 * as soon as CB returns non-zero. */
int bounce_read (const char *path, long *files_r,
                 int (*cb) (void *data, const struct bounce_item *it),
                 void *data);

#endif

/* webhooks.h: the email plugin's inbound entry, the bounce and complaint
 * webhooks of e-mail providers (POST {base_url}/inbound/CHANNEL/PROVIDER):
 *
 *   /mailgun   Mailgun: HMAC-SHA256 signature in the JSON body, keyed with
 *              mailgun_signing_key; stale timestamps and replayed tokens
 *              refused;
 *   /postmark  Postmark: HTTP Basic, postmark_username/postmark_password;
 *   /ses       Amazon SES through SNS: the SNS signature checked with the
 *              certificate at SigningCertURL (https, sns.REGION.amazonaws.com),
 *              for the topics of ses_topic_arn only;
 *   /sendgrid  SendGrid's Event Webhook: ECDSA P-256 signature checked with
 *              sendgrid_public_key.
 *
 * Each provider's endpoint answers 404 until its keys are set.  What a
 * verified callback reports goes to the core's sink as events: "bounced"
 * (hard), "soft_bounced", "complained", "delivered", "opened", "clicked",
 * "unsubscribed", at the provider's own time for it, so that a retried
 * callback is a repeat.  The message is named by its provider id: the
 * "HEX.herald@DOMAIN" that the VERP envelope sender (checked with
 * verp_secret) or the Herald Message-ID the provider quotes gives; else
 * by the recipient's address.  Secrets are never logged. */
#ifndef HERALD_EMAIL_WEBHOOKS_H
#define HERALD_EMAIL_WEBHOOKS_H

#include <herald/plugin.h>

struct email_hooks;

/* Read the webhook keys of HOST's section into *HOOKS_R, and derive a VERP
 * key of its own from bounce_domain and verp_secret (checked by the
 * caller) when set.  FROM_ADDR is the channel's From address: its domain
 * is the provider ids'.  0, or -1 after writing a message naming the key
 * into ERR. */
int email_hooks_new (const struct herald_host *host, const char *from_addr,
                     struct email_hooks **hooks_r, char *err, size_t errlen);

/* Release everything; NULL is a no-op. */
void email_hooks_free (struct email_hooks *h);

/* The plugin's inbound entry for H (plugin.h).  Always fills RESP;
 * returns 0. */
int email_hooks_inbound (struct email_hooks *h,
                         const struct herald_request *req,
                         const struct herald_sink *sink,
                         struct herald_response *resp);

/* The keys email_hooks_new reads, and the secret ones among them. */
#define EMAIL_HOOKS_KEYS \
  "mailgun_signing_key", "postmark_username", "postmark_password", \
  "ses_topic_arn", "ses_cert_host", "ses_ca_file", "sendgrid_public_key"
#define EMAIL_HOOKS_SECRET_KEYS "mailgun_signing_key", "postmark_password"

#endif

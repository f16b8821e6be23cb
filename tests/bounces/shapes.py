"""Bounces as mailbox providers and MTAs write them, for the tests of
herald bounces import and as the fuzzer's seeds (tests/bounces/corpus).

Each function returns the bytes of one message (LF line endings, as a
Maildir or mbox holds them) about the message that went out with envelope
sender VERP (b+TOKEN@bounce_domain) to RCPT with Message-ID MSGID.  The
standard reports (DSN, RFC 3464; ARF, RFC 5965) are built with Python's
email package; the prose bounces (qmail, Yahoo, Gmail's older form) and
the vendor shapes (Postfix, Exchange) are written out as those systems
write them, since their exact wording is what the reader must cope with.
"""
import email.utils
import hashlib
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email import policy


def original(verp, rcpt, msgid, subject='Your December offers', with_return_path=True):
    """The message Herald sent, as the receiving MTA stored it."""
    m = EmailMessage()
    if with_return_path and verp:
        m['Return-Path'] = '<%s>' % verp
    m['Date'] = 'Mon, 07 Dec 2026 09:00:00 +0000'
    m['From'] = '"News" <news@example.com>'
    m['To'] = rcpt
    m['Subject'] = subject
    m['Message-ID'] = msgid
    m['List-Unsubscribe'] = '<https://t.example.com/u/abc>'
    m.set_content('Hello,\nour offers of the week.\n')
    return m


def _stable(*parts):
    """A token that depends on PARTS only: Message-IDs and boundaries of
    the reports, so that make-corpus.py writes the same bytes each time."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _headers_text(m):
    return ''.join('%s: %s\n' % (k, v) for k, v in m.items())


def dsn(verp, rcpt, msgid, date, status='5.1.1', action='failed',
        diagnostic='smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown',
        mta='mx.example.org', attach='message'):
    """A delivery status notification (RFC 3464) built with the email
    package: text/plain, message/delivery-status, then the returned
    message (whole, or text/rfc822-headers)."""
    m = MIMEMultipart('report', report_type='delivery-status')
    m['Return-Path'] = '<>'
    if verp:
        m['Delivered-To'] = verp
    m['Date'] = date
    m['From'] = 'Mail Delivery System <MAILER-DAEMON@%s>' % mta
    m['To'] = verp or 'news@example.com'
    m['Subject'] = ('Undelivered Mail Returned to Sender' if action == 'failed'
                    else 'Delayed Mail (still being retried)')
    m['Auto-Submitted'] = 'auto-replied'
    m['Message-ID'] = '<dsn.%s@%s>' % (_stable(rcpt, date), mta)
    m.set_boundary('=_dsn_' + _stable('dsn', rcpt, date, status))
    m.attach(MIMEText('This is the mail system at host %s.\n\n'
                      'Your message could not be delivered to one or more recipients.\n'
                      % mta))
    per_msg = Message()
    per_msg['Reporting-MTA'] = 'dns; %s' % mta
    per_msg['Arrival-Date'] = 'Mon, 07 Dec 2026 09:00:02 +0000'
    per_rcpt = Message()
    per_rcpt['Final-Recipient'] = 'rfc822; %s' % rcpt
    per_rcpt['Action'] = action
    if status:
        per_rcpt['Status'] = status
    per_rcpt['Remote-MTA'] = 'dns; %s' % mta
    per_rcpt['Diagnostic-Code'] = diagnostic.format(rcpt=rcpt)
    ds = MIMEBase('message', 'delivery-status')
    ds.set_payload([per_msg, per_rcpt])
    m.attach(ds)
    orig = original(verp, rcpt, msgid)
    if attach == 'message':
        m.attach(MIMEMessage(orig))
    elif attach == 'headers':
        m.attach(MIMEText(_headers_text(orig), 'rfc822-headers'))
    return m.as_bytes(policy=policy.compat32.clone(linesep='\n'))


def arf(verp, rcpt, msgid, date, feedback_type='abuse', redact_return_path=False):
    """An ARF complaint (RFC 5965), as Yahoo's and AOL's feedback loops
    send it: to the feedback address, not the VERP one; the envelope sender
    is in Original-Mail-From and the returned message's Return-Path."""
    m = MIMEMultipart('report', report_type='feedback-report')
    m['Date'] = date
    m['From'] = 'Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>'
    m['To'] = 'fbl@example.com'
    m['Subject'] = 'FW: Your December offers'
    m['Message-ID'] = '<arf.%s@arf.mail.yahoo.com>' % _stable(rcpt, date)
    m.set_boundary('=_arf_' + _stable('arf', rcpt, date, feedback_type))
    m.attach(MIMEText('This is an email abuse report for an email message received '
                      'from IP 192.0.2.25 on %s.\nFor more information about this '
                      'format please see http://www.mipassoc.org/arf/.\n' % date))
    fr = MIMEBase('message', 'feedback-report')
    fr.set_payload('Feedback-Type: %s\nUser-Agent: Yahoo!-Mail-Feedback/2.0\n'
                   'Version: 1\n%sOriginal-Rcpt-To: %s\nArrival-Date: %s\n'
                   'Reported-Domain: example.com\nSource-IP: 192.0.2.25\n'
                   % (feedback_type,
                      'Original-Mail-From: <%s>\n' % verp if verp and not redact_return_path
                      else '', rcpt, date))
    m.attach(fr)
    m.attach(MIMEMessage(original(verp, rcpt, msgid,
                                  with_return_path=not redact_return_path)))
    return m.as_bytes(policy=policy.compat32.clone(linesep='\n'))


def postfix(verp, rcpt, msgid, date, code='550 5.1.1', status='5.1.1'):
    """Postfix's bounce(8): a DSN whose human part says "This is the mail
    system at host", with X-Postfix fields and the returned headers only
    (text/rfc822-headers, as with bounce_size_limit or headers-only
    returns)."""
    o = _headers_text(original(verp, rcpt, msgid))
    return ('''Return-Path: <>
X-Original-To: {verp}
Delivered-To: {verp}
Received: by bounce.example.com (Postfix)
\tid 4F1D2A0B3C; {date}
Date: {date}
From: MAILER-DAEMON@mx2.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {verp}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F1D2A0B3C.1796634000/mx2.example.net"
Content-Transfer-Encoding: 8bit
Message-Id: <20261207100000.4F1D2A0B3C@mx2.example.net>

This is a MIME-encapsulated message.

--4F1D2A0B3C.1796634000/mx2.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx2.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{rcpt}>: host mail.example.net[192.0.2.44] said: {code}
    <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox
    table (in reply to RCPT TO command)

--4F1D2A0B3C.1796634000/mx2.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx2.example.net
X-Postfix-Queue-ID: 4F1D2A0B3C
X-Postfix-Sender: rfc822; {verp}
Arrival-Date: Mon,  7 Dec 2026 09:00:01 +0000 (UTC)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: failed
Status: {status}
Remote-MTA: dns; mail.example.net
Diagnostic-Code: smtp; {code} <{rcpt}>: Recipient address rejected: User
    unknown in virtual mailbox table

--4F1D2A0B3C.1796634000/mx2.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{o}
--4F1D2A0B3C.1796634000/mx2.example.net--
''').format(verp=verp, rcpt=rcpt, date=date, code=code, status=status, o=o).encode()


def exchange(verp, rcpt, msgid, date):
    """Exchange Online's non-delivery report: multipart/report with a
    multipart/alternative human part (HTML only says much), the DSN with
    "rfc822;addr" and a three-digit detail (5.1.10), X-MS-Exchange
    headers, the returned message whole."""
    o = original(verp, rcpt, msgid).as_string(policy=policy.compat32.clone(linesep='\n'))
    return ('''Received: from AM0PR01MB1234.eurprd01.prod.exchangelabs.com
 ([::1]) by AM0PR01MB1234.eurprd01.prod.exchangelabs.com with mapi id
 15.20.7000.1; {date}
MIME-Version: 1.0
From: Microsoft Outlook
\t<postmaster@contoso.onmicrosoft.com>
To: <{verp}>
Date: {date}
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="e0b5ea61-bd2e-4c8d-8f0c-1a2b3c4d5e6f"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID:
\t<e0b5ea61-bd2e-4c8d-8f0c-1a2b3c4d5e6f@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>
In-Reply-To: {msgid}
References: {msgid}
Subject: Undeliverable: Your December offers
Auto-Submitted: auto-replied

--e0b5ea61-bd2e-4c8d-8f0c-1a2b3c4d5e6f
Content-Type: multipart/alternative; differences=Content-Type;
\tboundary="2d4e6f80-a1b2-c3d4-e5f6-a7b8c9d0e1f2"

--2d4e6f80-a1b2-c3d4-e5f6-a7b8c9d0e1f2
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to {rcpt} couldn't be delivered.
{rcpt_local} wasn't found at contoso.com.
news   Office 365   {rcpt_local}
Action Required                 Recipient
Unknown To address

--2d4e6f80-a1b2-c3d4-e5f6-a7b8c9d0e1f2
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html><head></head><body><p style=3D"font-size:14pt">Your message to <a hr=
ef=3D"mailto:{rcpt}">{rcpt}</a> couldn't be delivered.</p><p>Remote Server=
 returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found b=
y SMTP address lookup'</p></body></html>

--2d4e6f80-a1b2-c3d4-e5f6-a7b8c9d0e1f2--

--e0b5ea61-bd2e-4c8d-8f0c-1a2b3c4d5e6f
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com
Received-From-MTA: dns;mail.example.com
Arrival-Date: Mon, 7 Dec 2026 09:00:03 +0000

Final-Recipient: rfc822;{rcpt}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient
 not found by SMTP address lookup
X-Display-Name: {rcpt}


--e0b5ea61-bd2e-4c8d-8f0c-1a2b3c4d5e6f
Content-Type: message/rfc822

{o}
--e0b5ea61-bd2e-4c8d-8f0c-1a2b3c4d5e6f--
''').format(verp=verp, rcpt=rcpt, date=date, msgid=msgid, o=o,
            rcpt_local=rcpt.split('@')[0]).encode()


def gmail(verp, rcpt, msgid, date):
    """Gmail's older bounce: one text/plain part, "Delivery to the
    following recipient failed permanently", the SMTP reply spread over
    multi-line 550- lines, and the returned message inline after
    "----- Original message -----" (without Return-Path)."""
    o = original(verp, rcpt, msgid, with_return_path=False).as_string(
        policy=policy.compat32.clone(linesep='\n'))
    return ('''Delivered-To: {verp}
Return-Path: <>
MIME-Version: 1.0
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {verp}
X-Failed-Recipients: {rcpt}
Subject: Delivery Status Notification (Failure)
Message-ID: <047d7b6d8f4a2b1c9e04e8f6@google.com>
Date: {date}
Content-Type: text/plain; charset=ISO-8859-1

Delivery to the following recipient failed permanently:

     {rcpt}

Technical details of permanent failure:
Google tried to deliver your message, but it was rejected by the server for the recipient domain gmail.com by gmail-smtp-in.l.google.com. [2a00:1450:400c:c0b::1b].

The error that the other server returned was:
550-5.1.1 The email account that you tried to reach does not exist. Please try
550-5.1.1 double-checking the recipient's email address for typos or
550-5.1.1 unnecessary spaces. Learn more at
550 5.1.1 https://support.google.com/mail/answer/6596 h4si3046286wjx.98 - gsmtp

----- Original message -----

{o}''').format(verp=verp, rcpt=rcpt, date=date, o=o).encode()


def yahoo(verp, rcpt, msgid, date):
    """Yahoo's "Failure Notice": qmail's shape (a "<address>:" paragraph,
    "--- Below this line is a copy of the message.") with its own
    wording and a bare "554:" reply code."""
    o = original(verp, rcpt, msgid).as_string(policy=policy.compat32.clone(linesep='\n'))
    return ('''Return-Path: <>
Delivered-To: {verp}
From: MAILER-DAEMON@yahoo.com
To: {verp}
Subject: Failure Notice
Date: {date}
Message-ID: <1796634000.12345.mta1025.mail.ne1.yahoo.com>

Sorry, we were unable to deliver your message to the following address.

<{rcpt}>:
554: delivery error: dd This user doesn't have a yahoo.com account ({rcpt}) [0] - mta1025.mail.ne1.yahoo.com

--- Below this line is a copy of the message.

Received: from [192.0.2.25] by mta1025.mail.ne1.yahoo.com with NNFMP; 07 Dec 2026 09:00:02 -0000
{o}''').format(verp=verp, rcpt=rcpt, date=date, o=o).encode()


def qmail(verp, rcpt, msgid, date, soft=False):
    """qmail-send's bounce: plain text, "<address>:" then the reason, the
    status only as "(#5.1.1)" or in the remote reply."""
    o = original(verp, rcpt, msgid).as_string(policy=policy.compat32.clone(linesep='\n'))
    if soft:
        reason = ('192.0.2.44 does not like recipient.\n'
                  'Remote host said: 452 4.2.2 Mailbox full\n'
                  'Giving up on 192.0.2.44.\n'
                  "I'm not going to try again; this message has been in the queue too long.")
    else:
        reason = 'Sorry, no mailbox here by that name. (#5.1.1)'
    return ('''Return-Path: <>
Delivered-To: {verp}
Date: {date}
From: MAILER-DAEMON@mail.example.net
To: {verp}
Subject: failure notice

Hi. This is the qmail-send program at mail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
{reason}

--- Below this line is a copy of the message.

{o}''').format(verp=verp, rcpt=rcpt, date=date, o=o, reason=reason).encode()


def vacation(verp, rcpt, msgid, date):
    """An out-of-office reply to the envelope sender (RFC 3834): no
    bounce."""
    m = EmailMessage()
    m['Date'] = date
    m['From'] = rcpt
    m['To'] = verp
    m['Subject'] = 'Out of Office: Your December offers'
    m['Auto-Submitted'] = 'auto-replied'
    m['X-Autoreply'] = 'yes'
    m['In-Reply-To'] = msgid
    m.set_content('I am away until January.\n')
    return m.as_bytes(policy=policy.compat32.clone(linesep='\n'))


def garbage():
    """Bytes that are no message at all."""
    return bytes(range(256)) * 2 + b'\x00\xff not a message\n'


def forge(verp):
    """VERP with its MAC changed: what a forger who knows the format, but
    not the secret, can write."""
    local, domain = verp.split('@')
    tok = local[2:]
    c = 'a' if tok[-1] != 'a' else 'b'
    return 'b+%s%s@%s' % (tok[:-1], c, domain)


# The shapes a mailbox test sends, by name: (builder, what it must be).
SHAPES = {
    'dsn-hard': (lambda v, r, i, d: dsn(v, r, i, d), 'hard'),
    'dsn-soft': (lambda v, r, i, d: dsn(v, r, i, d, status='4.2.2',
                                        diagnostic='smtp; 452 4.2.2 Mailbox full'), 'soft'),
    'arf': (lambda v, r, i, d: arf(v, r, i, d), 'complaint'),
    'postfix': (lambda v, r, i, d: postfix(v, r, i, d), 'hard'),
    'exchange': (lambda v, r, i, d: exchange(v, r, i, d), 'hard'),
    'gmail': (lambda v, r, i, d: gmail(v, r, i, d), 'hard'),
    'yahoo': (lambda v, r, i, d: yahoo(v, r, i, d), 'hard'),
    'qmail': (lambda v, r, i, d: qmail(v, r, i, d), 'hard'),
    'qmail-soft': (lambda v, r, i, d: qmail(v, r, i, d, soft=True), 'soft'),
}


def date(t):
    """RFC 5322 date of unix time T."""
    return email.utils.formatdate(t, usegmt=True)

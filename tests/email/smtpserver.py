# smtpserver.py: scripted SMTP servers on 127.0.0.1 for the email plugin's
# tests, and a driver for tests/plugin-run.  Imported by the tests in this
# folder; never run by itself.
#
# ScriptedSMTP is aiosmtpd on a free port in a thread of the test process.
# The sender's local part scripts MAIL FROM: badsender... 550 5.1.8,
# big... 552 5.3.4 (too big).
# Recipients script the answers by their local part:
#   t4xx...   RCPT answered 451 4.3.0 (try again)
#   p5xx...   RCPT answered 554 5.7.1 (refused by policy)
#   dead...   RCPT answered 550 5.1.1 (no such user)
#   gone...   RCPT answered 550 5.2.1 (mailbox disabled)
#   nullmx... RCPT answered 556 5.1.10 (null MX, RFC 7505)
#   d4xx...   DATA answered 451 4.3.0 after the data
#   d5xx...   DATA answered 554 5.6.0 after the data
#   drop...   the connection is closed after the data, before any reply
# Everything accepted is recorded in .messages with the raw bytes.
# SilentServer accepts connections and never says anything.
# FaultSMTP is a raw asyncio SMTP server whose every stage is scripted
# (421/450/5xx at the greeting, EHLO, MAIL, RCPT, DATA, end of data; a
# stall; a hang-up), for what aiosmtpd cannot fake.
import asyncio
import json
import os
import socket
import ssl
import subprocess
import logging
import threading
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# AUTH without TLS is on purpose in the tests; keep stderr for real trouble.
warnings.filterwarnings('ignore', module='aiosmtpd')
logging.getLogger('mail.log').setLevel(logging.CRITICAL)


class Recorder:
    def __init__(self, server):
        self.server = server

    async def handle_MAIL(self, server, session, envelope, address, options):
        local = address.split('@')[0]
        if local.startswith('badsender'):
            return '550 5.1.8 Bad sender address domain'
        if local.startswith('big'):
            return '552 5.3.4 Message size exceeds fixed limit'
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return '250 2.1.0 OK'

    async def handle_RCPT(self, server, session, envelope, address, options):
        local = address.split('@')[0]
        if local.startswith('t4xx'):
            return '451 4.3.0 Try again later'
        if local.startswith('p5xx'):
            return '554 5.7.1 Refused by policy'
        if local.startswith('dead'):
            return '550 5.1.1 No such user'
        if local.startswith('gone'):
            return '550 5.2.1 Mailbox disabled'
        if local.startswith('nullmx'):
            return '556 5.1.10 Recipient address has null MX'
        envelope.rcpt_tos.append(address)
        return '250 2.1.5 OK'

    async def handle_DATA(self, server, session, envelope):
        rcpts = list(envelope.rcpt_tos)
        locals_ = [r.split('@')[0] for r in rcpts]
        rec = {
            'session': self.server.session_no(session),
            'mail_from': envelope.mail_from,
            'rcpt_tos': rcpts,
            'data': envelope.original_content,
            'tls': server.transport.get_extra_info('sslcontext') is not None,
            'auth': session.authenticated,
        }
        if any(l.startswith('drop') for l in locals_):
            server.transport.abort()
            self.server.dropped.append(rec)
            return '421 4.3.0 never seen'
        if any(l.startswith('d4xx') for l in locals_):
            return '451 4.3.0 Queue full'
        if any(l.startswith('d5xx') for l in locals_):
            return '554 5.6.0 Content refused'
        self.server.messages.append(rec)
        return '250 2.0.0 Ok: queued as Q%d' % len(self.server.messages)


class ScriptedSMTP:
    """aiosmtpd on 127.0.0.1:free port, in a thread; stop() always."""

    def __init__(self, tls_cert=None, tls_key=None, require_starttls=False,
                 auth=None, auth_required=False):
        self.messages = []
        self.dropped = []
        self.sessions = {}
        self.auth_attempts = []
        self.loop = asyncio.new_event_loop()
        self.tls_context = None
        if tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(tls_cert, tls_key)
            self.tls_context = ctx
        self.require_starttls = require_starttls
        self.auth = auth
        self.auth_required = auth_required
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError('SMTP test server did not start')

    def session_no(self, session):
        return self.sessions.setdefault(id(session), len(self.sessions) + 1)

    def _authenticator(self, server, session, envelope, mechanism, data):
        ok = (isinstance(data, LoginPassword) and self.auth is not None
              and (data.login.decode(), data.password.decode()) == self.auth)
        self.auth_attempts.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)

    def _factory(self):
        kw = dict(hostname='herald-test', tls_context=self.tls_context,
                  require_starttls=self.require_starttls,
                  auth_required=self.auth_required,
                  auth_require_tls=False, timeout=30)
        if self.auth is not None or self.auth_required:
            kw['authenticator'] = self._authenticator
        return SMTP(Recorder(self), **kw)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.srv = self.loop.run_until_complete(
            self.loop.create_server(self._factory, '127.0.0.1', 0))
        self.port = self.srv.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self.srv.close()
        self.loop.run_until_complete(self.srv.wait_closed())
        self.loop.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except socket.timeout:
                pass
            except OSError:
                break

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


class FullBacklog:
    """127.0.0.1:port whose accept queue is full (backlog 0, filled, never
    accepted): the kernel drops further SYNs, as a firewalled or overloaded
    host does, so a connect completes no handshake."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fill = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(('127.0.0.1', self.port))
            except BlockingIOError:
                pass
            self.fill.append(c)
        time.sleep(0.1)

    def answers(self):
        c = socket.socket()
        c.settimeout(1)
        try:
            c.connect(('127.0.0.1', self.port))
            return True
        except OSError:
            return False
        finally:
            c.close()

    def stop(self):
        for c in self.fill:
            c.close()
        self.sock.close()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def plugin_path():
    return os.path.join(os.environ['HERALD_PLUGIN_DIR'], 'email.so')


def plugin_run(keys, messages, batch=None, timeout=60, extra=()):
    """Run tests/plugin-run on the email plugin; returns (rc, results, stderr,
    seconds)."""
    exe = os.path.join(os.environ['HERALD_BUILDDIR'], 'tests', 'plugin-run')
    cmd = [exe, plugin_path(), '-n', 'email']
    for k, v in keys.items():
        cmd += ['-k', '%s=%s' % (k, v)]
    if batch:
        cmd += ['-b', str(batch)]
    cmd += list(extra)
    inp = ''.join(json.dumps(m) + '\n' for m in messages)
    t0 = time.monotonic()
    p = subprocess.run(cmd, input=inp.encode(), capture_output=True,
                       timeout=timeout)
    dt = time.monotonic() - t0
    results = [json.loads(l) for l in p.stdout.decode().splitlines()
               if l.strip()]
    return p.returncode, results, p.stderr.decode(), dt


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print('%sok %d - %s' % ('' if cond else 'not ', self.n, name))
        if not cond and diag is not None:
            for line in str(diag).splitlines():
                print('#   ' + line)
        return cond

    def done(self):
        print('1..%d' % self.n, flush=True)
        return 1 if self.failed else 0


class FaultSMTP:
    """A raw SMTP server on 127.0.0.1 (asyncio, in a thread) whose every
    stage can be scripted, including those aiosmtpd cannot fake (the
    greeting, EHLO, a hang-up in the middle of the data).

    .script maps a stage to an action; it can be changed between runs:
      'greeting', 'ehlo', 'helo', 'mail', 'data', 'eod' (the reply to the
      end of the data): a reply line such as '421 4.3.2 Busy', or
      'stall' (never answer), 'drop' (hang up without a word), and for
      'eod' also 'accept_close' (answer 250, then hang up) and
      'queue_drop' (keep the message, hang up before the reply);
      'rcpt': the same for every recipient;
      'rcpt:PREFIX': the same for recipients whose local part starts with
      PREFIX (takes precedence);
      'data_mid': 'drop' hangs up after the first 100 bytes of the data.
    Replies to stages not in the script are the usual 2xx/354.  A message
    counts as delivered (.messages) only once its end of data was answered
    2xx: what a real server would have queued."""

    def __init__(self, pipelining=False):
        self.script = {}
        self.pipelining = pipelining
        self.messages = []
        self.sessions = 0
        self.log = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError('fault SMTP server did not start')

    def _action(self, stage, default, rcpt=None):
        if rcpt is not None:
            local = rcpt.split('@')[0].lstrip('<')
            for k, v in self.script.items():
                if k.startswith('rcpt:') and local.startswith(k[5:]):
                    return v
        return self.script.get(stage, default)

    async def _session(self, reader, writer):
        self.sessions += 1
        sess = self.sessions
        stalled = []

        async def say(line):
            writer.write(line.encode() + b'\r\n')
            await writer.drain()

        # Returns True when the session must end here.
        async def act(a):
            self.log.append((sess, a))
            if a == 'stall':
                stalled.append(1)
                await reader.read()     # until the client gives up
                return True
            if a == 'drop':
                return True
            await say(a)
            return a.startswith('421')

        try:
            if await act(self._action('greeting', '220 faults ESMTP')):
                return
            mail_from, rcpts = None, []
            while True:
                line = await reader.readline()
                if not line:
                    return
                cmd = line.decode('latin-1').rstrip('\r\n')
                verb = cmd[:4].upper()
                if verb == 'EHLO':
                    a = self._action('ehlo', None)
                    if a is None:
                        caps = ['faults', 'ENHANCEDSTATUSCODES', '8BITMIME',
                                'SIZE 10000000']
                        if self.pipelining:
                            caps.append('PIPELINING')
                        for c in caps[:-1]:
                            writer.write(('250-%s\r\n' % c).encode())
                        await say('250 ' + caps[-1])
                    elif await act(a):
                        return
                elif verb == 'HELO':
                    if await act(self._action('helo', '250 faults')):
                        return
                elif verb == 'MAIL':
                    mail_from, rcpts = cmd, []
                    if await act(self._action('mail', '250 2.1.0 Ok')):
                        return
                elif verb == 'RCPT':
                    addr = cmd.split(':', 1)[1].strip().strip('<>')
                    a = self._action('rcpt', '250 2.1.5 Ok', rcpt=addr)
                    if await act(a):
                        return
                    if a.startswith('2'):
                        rcpts.append(addr)
                elif verb == 'DATA':
                    a = self._action('data', '354 End data with '
                                     '<CR><LF>.<CR><LF>')
                    if not rcpts and a.startswith('354'):
                        # RFC 5321 section 3.3: no valid recipient.
                        a = '554 5.5.1 Error: no valid recipients'
                    elif mail_from is None and a.startswith('354'):
                        a = '503 5.5.1 Error: need MAIL command'

                    if await act(a):
                        return
                    if not a.startswith('354'):
                        continue
                    data = b''
                    while True:
                        l = await reader.readline()
                        if not l:
                            return
                        if l == b'.\r\n':
                            break
                        data += l
                        if (self.script.get('data_mid') == 'drop'
                                and len(data) > 100):
                            self.log.append((sess, 'drop mid-DATA'))
                            return
                    a = self._action('eod', '250 2.0.0 Ok: queued')
                    if a == 'queue_drop':
                        # Queued, then the reply is lost (RFC 1047).
                        self._record(sess, mail_from, rcpts, data)
                        self.log.append((sess, 'queued, no reply'))
                        return
                    if a == 'accept_close':
                        await say('250 2.0.0 Ok: queued, then hung up')
                        self._record(sess, mail_from, rcpts, data)
                        return
                    if a.startswith('2'):
                        self._record(sess, mail_from, rcpts, data)
                    if await act(a):
                        return
                elif verb == 'RSET':
                    mail_from, rcpts = None, []
                    await say('250 2.0.0 Ok')
                elif verb == 'NOOP':
                    await say('250 2.0.0 Ok')
                elif verb == 'QUIT':
                    await say('221 2.0.0 Bye')
                    return
                else:
                    await say('502 5.5.2 Command not implemented')
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _record(self, sess, mail_from, rcpts, data):
        mid = None
        for l in data.split(b'\r\n'):
            if l.lower().startswith(b'message-id:'):
                mid = l.split(b':', 1)[1].strip().decode()
            if not l:
                break
        self.messages.append({'session': sess, 'mail_from': mail_from,
                              'rcpt_tos': list(rcpts), 'message_id': mid,
                              'data': data})

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.srv = self.loop.run_until_complete(
            asyncio.start_server(self._session, '127.0.0.1', 0))
        self.port = self.srv.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self.srv.close()
        self.loop.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

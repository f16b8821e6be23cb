#!/bin/sh
# bench/email/run.sh: messages per second of the email plugin into Postfix's
# smtp-sink on loopback, against Postfix's own smtp-source into the same
# sink in the same run, one session and P parallel sessions.  Never run by
# make check (the machine is shared: it prints medians of several runs).
#
# Usage: bench/email/run.sh [BUILDDIR]
#   BUILDDIR  the build tree (default: $HERALD_BUILDDIR, else .)
# Environment: N (messages per measurement, default 5000), RUNS (default 5),
#   PAR (parallel sessions, default 4), SMTP_SINK, SMTP_SOURCE (paths).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
build=${1:-${HERALD_BUILDDIR:-.}}
build=$(cd "$build" && pwd)
sink=${SMTP_SINK:-$(command -v smtp-sink || echo /usr/sbin/smtp-sink)}
source=${SMTP_SOURCE:-$(command -v smtp-source || echo /usr/sbin/smtp-source)}
for f in "$build/tests/plugin-run" "$build/plugins/.libs/email.so" "$sink" "$source"; do
  [ -x "$f" ] || [ -f "$f" ] || { echo "run.sh: missing $f (build with make check_PROGRAMS first)" >&2; exit 2; }
done
exec /usr/bin/python3 - "$srcdir" "$build" "$sink" "$source" <<'PY'
import json, os, socket, statistics, subprocess, sys, tempfile, time

srcdir, build, sink, source = sys.argv[1:5]
N = int(os.environ.get('N', '5000'))
RUNS = int(os.environ.get('RUNS', '5'))
PAR = int(os.environ.get('PAR', '4'))
run = os.path.join(build, 'tests', 'plugin-run')
so = os.path.join(build, 'plugins', '.libs', 'email.so')
tmp = tempfile.mkdtemp(prefix='herald-email-bench-')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


# Messages as templates/welcome renders them (the core's Liquid renderer is
# not part of this measurement; the bytes are what it produces for these
# customers, with the shared footer partial).
def render(i):
    first = ['Zoë', 'Ana', 'Łukasz', 'Mei', 'Olu', 'Jean-Luc'][i % 6]
    tier = ['gold', 'silver', 'platinum'][i % 3]
    pts = 37 * i % 5000
    unsub = 'https://t.herald.example/u/%040x' % (i * 2654435761)
    fav = '' if i % 2 else 'flat white'
    tier_txt = ' as a %s member' % tier if tier != 'silver' else ''
    text = ('Hello %s,\n\nThank you for joining Herald Café%s.\n'
            'You have %d points to spend.\n' % (first, tier_txt, pts)
            + ('\nWe think you will love our %s.\n\n' % fav if fav else '')
            + 'See you soon,\nThe Herald Café team\n\n--\n'
            "Herald Café · 1 rue de l'Exemple · 75001 Paris\n"
            'Unsubscribe: %s\n' % unsub)
    html = ('<!doctype html>\n<html lang="fr">\n<body style="font-family:sans-serif">\n'
            '  <h1>Hello %s!</h1>\n  <p>Thank you for joining Herald Café%s.</p>\n'
            '  <p>You have <strong>%d</strong> points to spend.</p>\n'
            % (first, ' as a <strong>%s</strong> member' % tier.capitalize()
               if tier_txt else '', pts)
            + ('  <p>We think you will love our %s.</p>\n' % fav if fav else '')
            + '  <p><a href="https://herald.example.com/shop?c=c%d">Visit the shop</a></p>\n'
            '  <p style="color:#888;font-size:12px">Herald Café · 1 rue de l\'Exemple · 75001 Paris<br>\n'
            '<a href="%s">Unsubscribe</a></p>\n</body>\n</html>\n' % (i, unsub))
    return dict(key='welcome:0:c%d' % i, campaign='welcome', customer='c%d' % i,
                to='c%d@bench.example' % i, to_name='%s Example' % first,
                parts={'email.subject': 'Welcome, %s!' % first,
                       'email.text': text, 'email.html': html},
                unsubscribe_url=unsub,
                unsubscribe_mailto='unsub+c%d@herald.example' % i)


def write_msgs(path, lo, hi):
    with open(path, 'w') as f:
        for i in range(lo, hi):
            f.write(json.dumps(render(i)) + '\n')


port = free_port()
dump = os.path.join(tmp, 'dump')
sink_cmd = [sink] + (['-u', 'nobody'] if os.getuid() == 0 else []) + \
    ['-D', dump, '127.0.0.1:%d' % port, '256']
sinkp = subprocess.Popen(sink_cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
try:
    os.chmod(tmp, 0o777)
    for _ in range(50):
        try:
            socket.create_connection(('127.0.0.1', port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    keys = ['-k', 'server=127.0.0.1:%d' % port,
            '-k', 'from=Herald Café <news@herald.example>',
            '-k', 'starttls=no', '-k', 'timeout_ms=30000']

    # Calibrate smtp-source's message length on ours: one dumped message.
    one = os.path.join(tmp, 'one.jsonl')
    write_msgs(one, 0, 50)
    with open(one) as f:
        subprocess.run([run, so, '-n', 'email'] + keys, stdin=f, check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
    time.sleep(0.3)
    size = max(200, os.path.getsize(dump) // 50)
    sinkp.terminate()
    sinkp.wait(10)
    sink_cmd.remove('-D')
    sink_cmd.remove(dump)
    sinkp = subprocess.Popen(sink_cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    time.sleep(0.3)

    files = []
    per = N // PAR
    all_path = os.path.join(tmp, 'all.jsonl')
    write_msgs(all_path, 0, N)
    for p in range(PAR):
        path = os.path.join(tmp, 'part%d.jsonl' % p)
        write_msgs(path, p * per, (p + 1) * per)
        files.append(path)

    def timed(cmds, stdins):
        t0 = time.monotonic()
        procs = []
        for c, s in zip(cmds, stdins):
            procs.append(subprocess.Popen(
                c, stdin=open(s) if s else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        outs = [p.communicate(timeout=600) for p in procs]
        dt = time.monotonic() - t0
        for p, (o, e) in zip(procs, outs):
            if p.returncode != 0:
                sys.exit('bench: %s failed: %s' % (p.args[0], e.decode()))
        return dt, outs

    def plugin(n_inst):
        if n_inst == 1:
            cmds, ins, n = [[run, so, '-n', 'email', '-b', str(N)] + keys +
                            ['-k', 'batch=%d' % N]], [all_path], N
        else:
            cmds = [[run, so, '-n', 'email', '-b', str(per)] + keys +
                    ['-k', 'batch=%d' % per] for _ in range(n_inst)]
            ins, n = files, per * n_inst
        dt, outs = timed(cmds, ins)
        sent = sum(o.decode().count('"status":"sent"') for o, _ in outs)
        if sent != n:
            sys.exit('bench: only %d of %d sent' % (sent, n))
        return n / dt

    def smtp_source(sessions):
        n = N if sessions == 1 else per * sessions
        cmd = [source, '-d', '-s', str(sessions), '-m', str(n), '-l',
               str(size), '-f', 'news@herald.example', '-t',
               'c@bench.example', '127.0.0.1:%d' % port]
        dt, _ = timed([cmd], [None])
        return n / dt

    res = {k: [] for k in ('src1', 'her1', 'srcP', 'herP')}
    for r in range(RUNS):
        # Alternate the order so drift in the machine's load hits both.
        order = [('src1', lambda: smtp_source(1)), ('her1', lambda: plugin(1)),
                 ('srcP', lambda: smtp_source(PAR)), ('herP', lambda: plugin(PAR))]
        if r % 2:
            order = [order[1], order[0], order[3], order[2]]
        for k, f in order:
            res[k].append(f())
        print('run %d: smtp-source %.0f/s, herald %.0f/s (1 session); '
              'smtp-source %.0f/s, herald %.0f/s (%d sessions)'
              % (r + 1, res['src1'][-1], res['her1'][-1], res['srcP'][-1],
                 res['herP'][-1], PAR), flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    ratios1 = [h / s for h, s in zip(res['her1'], res['src1'])]
    ratiosP = [h / s for h, s in zip(res['herP'], res['srcP'])]
    print('messages: %d per measurement, about %d octets each (templates/welcome, '
          'multipart text+html, UTF-8, QP)' % (N, size))
    print('median, 1 session:   herald %.0f msg/s, smtp-source %.0f msg/s, '
          'ratio %.2f (median of per-run ratios %.2f)'
          % (med['her1'], med['src1'], med['her1'] / med['src1'],
             statistics.median(ratios1)))
    print('median, %d sessions:  herald %.0f msg/s, smtp-source %.0f msg/s, '
          'ratio %.2f (median of per-run ratios %.2f)'
          % (PAR, med['herP'], med['srcP'], med['herP'] / med['srcP'],
             statistics.median(ratiosP)))
    print('herald %d sessions / herald 1 session: %.2f'
          % (PAR, med['herP'] / med['her1']))
finally:
    sinkp.terminate()
    sinkp.wait(10)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
PY

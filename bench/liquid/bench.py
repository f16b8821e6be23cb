#!/usr/bin/env python3
"""bench.py: renders per second of `herald render --each` against Shopify's
Liquid (ruby-liquid) on the same templates and data, in the same run.
Run through run.sh.  Prints, per template, the median rate of RUNS runs of
each engine, the ratio, whether the outputs agree, and herald's peak RSS
for N/10 and N renders (memory must not grow with the number of renders).
"""
import os, resource, statistics, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
herald = os.environ["HERALD"]
golden = os.environ.get("GOLDEN", "")
n = int(os.environ.get("N", "100000"))
rn = int(os.environ.get("RUBY_N", str(n)))
runs = int(os.environ.get("RUNS", "3"))
work = tempfile.mkdtemp(prefix="liquid-bench.")


def run(cmd, out_path):
    """(wall seconds, cpu seconds) of one child"""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(out_path, "wb") as out:
        subprocess.run(cmd, stdout=out, check=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, max(cpu, 1e-6)


def peak_rss_kb(cmd):
    """peak RSS of one child, measured in a fresh python process"""
    code = ("import resource,subprocess,sys;"
            "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,check=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", code] + cmd, capture_output=True,
                       text=True, check=True)
    return int(r.stdout.strip())


def head(src, dst, k):
    with open(src) as f, open(dst, "w") as g:
        for i, line in enumerate(f):
            if i >= k:
                break
            g.write(line)


customers = os.path.join(work, "customers.jsonl")
with open(customers, "w") as f:
    subprocess.run([sys.executable, os.path.join(here, "gen.py"), str(n)],
                   stdout=f, check=True)
cases = [("email.html (60 lines)", os.path.join(here, "email.html.liquid"),
          customers, None, ["--autoescape"] if os.environ.get("AUTOESCAPE") else []),
         ("sms.body", os.path.join(here, "sms.body.liquid"), customers, None, [])]
if golden and os.path.exists(golden):
    gdir = os.path.join(work, "golden")
    picked = subprocess.run([sys.executable, os.path.join(here, "golden_pick.py"),
                             golden, gdir, str(n)], capture_output=True,
                            text=True, check=True).stdout.split()
    for p in picked:
        cases.append(("golden: " + p, os.path.join(gdir, p + ".liquid"),
                      os.path.join(gdir, p + ".jsonl"),
                      os.path.join(gdir, p + "-partials"), []))
    print("note: the golden suite has no benchmark fixtures; using representative "
          "golden cases: " + ", ".join(picked))
else:
    print("note: golden_liquid.json not found; golden cases skipped")

print("herald renders %d customers per run, ruby-liquid the first %d; %d runs each; "
      "medians" % (n, rn, runs))
print("rates are renders per second of wall time; 'cpu ratio' uses CPU time "
      "(user+sys), steadier on a shared machine")
print("%-26s %12s %12s %8s %10s  %s" % ("template", "herald r/s", "ruby r/s",
                                        "ratio", "cpu ratio", "same output"))
for name, tpl, data, parts, extra in cases:
    rdata = data + ".ruby"
    head(data, rdata, rn)
    hcmd = [herald, "render", tpl, "--each", data, "--timezone", "UTC"] + extra
    if parts:
        hcmd += ["--partials", parts]
    rcmd = ["ruby", os.path.join(here, "ref.rb"), tpl, rdata] + ([parts] if parts else [])
    hout, rout = os.path.join(work, "h.out"), os.path.join(work, "r.out")
    hrates, rrates, hcpu, rcpu = [], [], [], []
    for i in range(runs):
        w, c = run(hcmd, hout)
        hrates.append(n / w)
        hcpu.append(n / c)
        w, c = run(rcmd, rout)
        rrates.append(rn / w)
        rcpu.append(rn / c)
    # compare herald's first rn renders with ruby's
    hsub = os.path.join(work, "h.sub")
    subprocess.run(hcmd[:4] + [rdata] + hcmd[5:], stdout=open(hsub, "wb"), check=True)
    same = open(hsub, "rb").read() == open(rout, "rb").read()
    if not same:
        hl = open(hsub, "rb").read().split(b"\n")
        rl = open(rout, "rb").read().split(b"\n")
        diff = sum(1 for a, b in zip(hl, rl) if a != b)
        same_s = "no (%d lines differ)" % diff
    else:
        same_s = "yes"
    h, r = statistics.median(hrates), statistics.median(rrates)
    hc, rc = statistics.median(hcpu), statistics.median(rcpu)
    print("%-26s %12.0f %12.0f %7.1fx %9.1fx  %s" % (name, h, r, h / r, hc / rc,
                                                    same_s))
    sys.stdout.flush()

small = os.path.join(work, "small.jsonl")
head(customers, small, max(1, n // 10))
tpl = os.path.join(here, "email.html.liquid")
m1 = peak_rss_kb([herald, "render", tpl, "--each", small, "--timezone", "UTC"])
m2 = peak_rss_kb([herald, "render", tpl, "--each", customers, "--timezone", "UTC"])
print("herald peak RSS: %d KiB for %d renders, %d KiB for %d renders" %
      (m1, max(1, n // 10), m2, n))
print("work files in %s" % work)

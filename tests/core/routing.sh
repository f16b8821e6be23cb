#!/bin/sh
# Routing over a few thousand generated customers with known histories:
# the channel distribution engagement gives, caps across campaigns, quiet
# hours deferring then sending once, holdout, and re-runs changing nothing.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3

G="$T/g.ini"
write_gateway "$G"
write_templates "$T/tpl"
NOW=1793520000    # 2026-11-01T08:00:00Z, 09:00 in Paris
$PY - "$T" "$NOW" <<'PYEOF'
import json, sys, datetime
T, now = sys.argv[1], int(sys.argv[2])
def iso(t):
    return datetime.datetime.utcfromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")
cust, ev = open(T + "/cust.jsonl", "w"), open(T + "/ev.jsonl", "w")
for i in range(2000):
    g = "ABCD"[i // 500]
    c = {"id": "%s%04d" % (g, i), "email": "x%d@example.com" % i,
         "phone": "+33700%06d" % i, "push": [{"platform": "ios", "token": "t%d" % i}],
         "timezone": "Europe/Paris",
         "consent": {"email": True, "sms": g != "D", "push": True},
         "preferred_channels": ["email", "sms", "push"],
         "attributes": {"first_name": "N%d" % i, "group": g}}
    if g == "B":
        c["preferred_channels"] = ["push", "email"]
    cust.write(json.dumps(c) + "\n")
    if g == "A":   # ignored ten e-mails, clicked five of ten SMS last month
        for k in range(10):
            ev.write(json.dumps({"customer": c["id"], "channel": "email", "type": "delivered", "at": iso(now - 86400 * (k + 1))}) + "\n")
        for k in range(10):
            ev.write(json.dumps({"customer": c["id"], "channel": "sms", "type": "delivered", "at": iso(now - 86400 * (k + 2))}) + "\n")
            if k % 2:
                ev.write(json.dumps({"customer": c["id"], "channel": "sms", "type": "clicked", "at": iso(now - 86400 * (k + 2) + 600)}) + "\n")
    if g == "C":   # clicks e-mail
        for k in range(6):
            ev.write(json.dumps({"customer": c["id"], "channel": "email", "type": "delivered", "at": iso(now - 86400 * (k + 1))}) + "\n")
            ev.write(json.dumps({"customer": c["id"], "channel": "email", "type": "clicked", "at": iso(now - 86400 * (k + 1) + 60)}) + "\n")
PYEOF
"$HERALD" -c "$G" customers import "$T/cust.jsonl" >/dev/null && "$HERALD" -c "$G" events import "$T/ev.jsonl" >/dev/null
is "$?" 0 "2000 customers and their histories imported"

printf '[campaign]\nid = eng\ntemplates = tpl\nchannels = email, sms, push\npolicy = engagement\n' > "$T/eng.ini"
HERALD_NOW=$NOW "$HERALD" -c "$G" run "$T/eng.ini" > "$T/run1.out" 2>&1
is "$?" 0 "engagement campaign runs"
dist () {  # per group, the channel chosen: "A:sms=500 ..."
  cat "$T"/out/*/messages.jsonl 2>/dev/null | $PY -c '
import json, sys, collections
c = collections.Counter()
for l in sys.stdin:
    m = json.loads(l)
    if m["campaign"] == sys.argv[1]:
        c[m["customer"][0] + ":" + m["channel"]] += 1
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))' "$1"
}
is "$(dist eng)" "A:sms=500 B:push=500 C:email=500 D:email=500" \
   "engagement: ignored e-mails + clicked SMS -> SMS; no history -> first preference; e-mail clickers -> e-mail"
out=$("$HERALD" -c "$G" preview "$T/eng.ini" --customer A0001 2>&1)
like "$out" "reason: sms: engagement [0-9.]+ > email [0-9.]+" "preview shows the engagement scores"

HERALD_NOW=$((NOW + 60)) "$HERALD" -c "$G" run "$T/eng.ini" > "$T/run2.out" 2>&1
is "$(cat "$T"/out/*/messages.jsonl | wc -l | tr -d ' ')" 2000 "re-run sends nothing more"

# Caps count what any campaign sent: a second campaign capped at one
# message a week on every channel skips everyone.
printf '[campaign]\nid = cap\ntemplates = tpl\nchannels = email, sms, push\n[caps]\nall = 1/7d\n' > "$T/cap.ini"
out=$(HERALD_NOW=$((NOW + 3600)) "$HERALD" -c "$G" run "$T/cap.ini" 2>&1)
like "$out" "capped +2000" "cap all = 1/7d: all 2000 skipped as capped"
# A per-channel cap shifts to the next channel.
printf '[campaign]\nid = shift\ntemplates = tpl\nchannels = email, sms, push\n[caps]\nemail = 1/7d\nsms = 1/7d\n' > "$T/shift.ini"
HERALD_NOW=$((NOW + 7200)) "$HERALD" -c "$G" run "$T/shift.ini" > "$T/shift.out" 2>&1
# A got SMS, B push, C and D e-mail: C shifts to SMS, D (no SMS consent) to push.
is "$(dist shift)" "A:email=500 B:push=500 C:sms=500 D:push=500" "per-channel caps shift to the next usable channel"
like "$(cat "$T/shift.out")" "sms +500 .* 500$" "the summary counts shifted messages"

# Quiet hours: at 23:00 in Paris (22:00Z) SMS is deferred to 08:00 the next
# morning (07:00Z), then sent once.
printf '[campaign]\nid = quiet\ntemplates = tpl\nchannels = sms\n[quiet_hours]\nsms = 21:00-08:00\n' > "$T/quiet.ini"
LATE=$((NOW + 14 * 3600))   # 23:00 Paris
out=$(HERALD_NOW=$LATE "$HERALD" -c "$G" run "$T/quiet.ini" 2>&1)
like "$out" "deferred by quiet hours: 1500, due from 2026-11-02T07:00:00Z" "quiet hours: deferred until 08:00 Paris (07:00Z)"
is "$(dist quiet)" "" "quiet hours: nothing sent at night"
HERALD_NOW=$((LATE + 3600)) "$HERALD" -c "$G" run "$T/quiet.ini" >/dev/null 2>&1
is "$(dist quiet)" "" "quiet hours: still nothing at midnight"
HERALD_NOW=$((LATE + 9 * 3600)) "$HERALD" -c "$G" run "$T/quiet.ini" >/dev/null 2>&1
is "$(dist quiet)" "A:sms=500 B:sms=500 C:sms=500" "quiet hours: sent after 08:00"
HERALD_NOW=$((LATE + 10 * 3600)) "$HERALD" -c "$G" run "$T/quiet.ini" >/dev/null 2>&1
is "$(dist quiet)" "A:sms=500 B:sms=500 C:sms=500" "quiet hours: sent once"

# Holdout: about 10%, the same customers on every run (dry run twice).
printf '[campaign]\nid = hold\ntemplates = tpl\nchannels = email\n[holdout]\npercent = 10\n[variant.a]\n[variant.b]\n' > "$T/hold.ini"
o1=$(HERALD_NOW=$NOW "$HERALD" -c "$G" run "$T/hold.ini" --dry-run 2>&1)
o2=$(HERALD_NOW=$NOW "$HERALD" -c "$G" run "$T/hold.ini" --dry-run 2>&1)
is "$o1" "$o2" "holdout and variants: the same on every run"
held=$(printf '%s\n' "$o1" | sed -n 's/^  held out: //p')
ok "$([ "${held:-0}" -ge 150 ] && [ "${held:-0}" -le 250 ]; echo $?)" "holdout about 10% ($held of 2000)"
like "$o1" "a +[0-9]+" "dry run forecasts per variant"

# The report: conversions per variant against the holdout, with uplift.
HERALD_NOW=$NOW "$HERALD" -c "$G" run "$T/hold.ini" >/dev/null 2>&1
$PY - "$T" "$NOW" > "$T/conv.jsonl" <<'PYEOF'
import json, sys, datetime
T, now = sys.argv[1], int(sys.argv[2])
at = datetime.datetime.utcfromtimestamp(now + 600).strftime("%Y-%m-%dT%H:%M:%SZ")
for i in range(2000):
    if i % 4 == 0:   # every fourth customer converts
        print(json.dumps({"customer": "%s%04d" % ("ABCD"[i // 500], i), "channel": "email", "type": "converted", "at": at, "campaign": "hold"}))
PYEOF
"$HERALD" -c "$G" events import "$T/conv.jsonl" >/dev/null
"$HERALD" -c "$G" report hold --json > "$T/hold.json"
is "$?" 0 "report with an experiment: exit 0"
got=$($PY - "$T" <<'PYEOF'
import json, sys, collections
T = sys.argv[1]
r = json.load(open(T + "/hold.json"))["experiment"]
sent = {}
for l in open(T + "/out/email/messages.jsonl"):
    m = json.loads(l)
    if m["campaign"] == "hold":
        sent[m["customer"]] = m["variant"]
ids = ["%s%04d" % ("ABCD"[i // 500], i) for i in range(2000)]
conv = {c for i, c in enumerate(ids) if i % 4 == 0}
held = [c for c in ids if c not in sent]
want_h = (len(held), sum(c in conv for c in held))
got_h = (r["holdout"]["customers"], r["holdout"]["converted"])
ok = want_h == got_h
for v in r["variants"]:
    mem = [c for c, vv in sent.items() if vv == v["variant"]]
    ok &= (v["customers"], v["converted"]) == (len(mem), sum(c in conv for c in mem))
    u = v["uplift"]
    ok &= abs(u["value"] - (v["rate"] - r["holdout"]["rate"])) < 1e-9 and u["ci95_low"] < u["value"] < u["ci95_high"]
print("ok" if ok else "bad %r %r" % (got_h, want_h))
PYEOF
)
is "$got" "ok" "report: holdout and variant conversions counted, uplift = rate difference inside its 95% CI"
out=$("$HERALD" -c "$G" report hold)
like "$out" "uplift [+-][0-9.]+ pts \(95% CI" "text report shows the uplift with its interval"
like "$out" "Rates \(messages with the event" "text report shows rates"

done_testing

#!/bin/sh
# Partials are read once, when the campaign is loaded: a partial named at
# render time ({% include customer.tier %}) reaches no file per message.
# herald run over 40 customers under strace: each partial file is opened
# once, whatever the number of messages; the messages hold the partial
# each customer's tier names (own folder first, then the shared one, a
# sub-folder name too); and a name that is no partial is a render error
# naming it.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
if ! command -v strace >/dev/null 2>&1; then echo "1..0 # SKIP strace not installed"; exit 0; fi

write_gateway "$T/g.ini"
mkdir -p "$T/tpl/c/_partials/tiers" "$T/tpl/_partials"
printf 'Tier {{ customer.tier }}' > "$T/tpl/c/email.subject.liquid"
printf '{%% include customer.tier %%}|{%% assign p = "tiers/" | append: customer.tier %%}{%% include p %%}\n' \
  > "$T/tpl/c/email.text.liquid"
printf 'GOLD' > "$T/tpl/c/_partials/gold.liquid"
printf 'SILVER' > "$T/tpl/_partials/silver.liquid"      # the shared folder
printf 'OWN-FIRST' > "$T/tpl/c/_partials/shared.liquid"
printf 'SHARED' > "$T/tpl/_partials/shared.liquid"
printf 'deep-{{ customer.id }}' > "$T/tpl/c/_partials/tiers/gold.liquid"
printf 'deep-{{ customer.id }}' > "$T/tpl/c/_partials/tiers/silver.liquid"
printf 'deep-{{ customer.id }}' > "$T/tpl/c/_partials/tiers/shared.liquid"
printf '[campaign]\nid = p\ntemplates = tpl/c\nchannels = email\n' > "$T/c.ini"
$PY - "$T/cust.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(40):
        tier = ["gold", "silver", "shared"][i % 3] if i < 39 else "nosuch"
        f.write(json.dumps({"id": "c%02d" % i, "email": "c%02d@example.com" % i,
                            "consent": {"email": True}, "attributes": {"tier": tier}}) + "\n")
EOF
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
is "$?" 0 "40 customers imported"

# LeakSanitizer cannot work under ptrace: off for this run (an ASan build).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
strace -f -qq -e trace=open,openat -o "$T/strace.out" \
  "$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/run.out" 2>&1
is "$?" 0 "herald run under strace"
opens=$(grep -c '_partials/[^"]*\.liquid"' "$T/strace.out")
is "$opens" 7 "each of the 7 partial files opened once for 39 rendered messages ($opens opens)"

$PY - "$T/out/email/messages.jsonl" > "$T/bodies" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    print(m["customer"], m["parts"]["email.text"].strip())
EOF
is "$(grep -c . "$T/bodies")" 39 "39 messages written"
is "$(sed -n 1p "$T/bodies")" "c00 GOLD|deep-c00" "gold: the own folder's partial, and a sub-folder name"
is "$(sed -n 2p "$T/bodies")" "c01 SILVER|deep-c01" "silver: the shared folder's partial"
is "$(sed -n 3p "$T/bodies")" "c02 OWN-FIRST|deep-c02" "a name in both folders: the own folder's"
like "$(cat "$T/run.out")" "render_error" "a tier that names no partial: a render error"
reason=$(sqlite3 "$T/herald.db" "SELECT error FROM outbox WHERE key = 'p:1:c39'")
like "$reason" "partial 'nosuch' not found" "... naming the partial"

done_testing

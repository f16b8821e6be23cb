# lib.sh: shared helpers for the core's shell tests (sourced).  TAP output,
# a scratch directory removed on exit, and a plugin directory holding the
# build's plugins and the test plugins.
set -u
: "${HERALD:?HERALD must name the herald binary (make check sets it)}"
: "${HERALD_BUILDDIR:?}"
: "${HERALD_SRCDIR:?}"
unset HERALD_PLUGIN_DIR HERALD_NOW

T=$(mktemp -d "${TMPDIR:-/tmp}/herald-test.XXXXXX")
trap '[ -n "${KEEP_T:-}" ] || rm -rf "$T"' EXIT
tap_n=0
tap_failed=0

ok () {     # ok CONDITION-STATUS DESCRIPTION
  tap_n=$((tap_n + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $tap_n - $2"
  else
    echo "not ok $tap_n - $2"
    tap_failed=$((tap_failed + 1))
  fi
}

is () {     # is GOT WANT DESCRIPTION
  tap_n=$((tap_n + 1))
  if [ "$1" = "$2" ]; then
    echo "ok $tap_n - $3"
  else
    echo "not ok $tap_n - $3"
    printf '#   got:  %s\n#   want: %s\n' "$1" "$2"
    tap_failed=$((tap_failed + 1))
  fi
}

like () {   # like TEXT GREP-PATTERN DESCRIPTION
  tap_n=$((tap_n + 1))
  if printf '%s\n' "$1" | grep -qE -- "$2"; then
    echo "ok $tap_n - $3"
  else
    echo "not ok $tap_n - $3"
    printf '%s\n' "$1" | sed 's/^/#   got: /' | head -20
    printf '#   want (regex): %s\n' "$2"
    tap_failed=$((tap_failed + 1))
  fi
}

done_testing () {
  echo "1..$tap_n"
  [ "$tap_failed" -eq 0 ]
}

# A plugin directory with the outbox plugin and the test plugins.
PLUGINS="$T/plugins"
mkdir -p "$PLUGINS"
for so in "$HERALD_BUILDDIR"/plugins/.libs/outbox.so \
          "$HERALD_BUILDDIR"/tests/plugins/.libs/testplug.so; do
  [ -f "$so" ] && cp "$so" "$PLUGINS/"
done

# write_gateway FILE [EXTRA-LINES]: a gateway with outbox channels under
# $T/out/KIND, the store in $T/herald.db.
write_gateway () {
  cat > "$1" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $PLUGINS
[tracking]
base_url = https://t.example.com
secret = test-secret-0123456789abcdef
unsubscribe_mailto = unsub@example.com
[channel.email]
plugin = outbox
dir = $T/out/email
from = Test Sender <sender@example.com>
[channel.sms]
plugin = outbox
dir = $T/out/sms
[channel.push]
plugin = outbox
dir = $T/out/push
[channel.webhook]
plugin = outbox
dir = $T/out/webhook
${2:-}
INI
}

# write_templates DIR: a minimal template set for every channel.
write_templates () {
  mkdir -p "$1"
  printf 'Hello {{ customer.first_name }}' > "$1/email.subject.liquid"
  printf 'Hi {{ customer.first_name }}, you have {{ customer.points }} points.\n' > "$1/email.text.liquid"
  printf '<p>Hi {{ customer.first_name }} &amp; welcome</p>\n' > "$1/email.html.liquid"
  printf 'Hi {{ customer.first_name }}: {{ customer.points }} points' > "$1/sms.body.liquid"
  printf 'Hi {{ customer.first_name }}' > "$1/push.body.liquid"
  printf '{"customer": {{ customer.id | json }}}' > "$1/webhook.body.liquid"
}

# write_customers FILE N: N customers u00000.. consenting to e-mail and
# SMS; two in three have an e-mail address, the others a phone number.
write_customers () {
  /usr/bin/python3 - "$2" > "$1" <<'PYEOF'
import json, sys
for i in range(int(sys.argv[1])):
    c = {"id": "u%05d" % i, "consent": {"email": True, "sms": True},
         "attributes": {"first_name": "N%d" % i, "points": i}}
    if i % 3:
        c["email"] = "u%d@example.com" % i
    else:
        c["phone"] = "+3361%07d" % i
    print(json.dumps(c))
PYEOF
}

# write_email_customers FILE N [PREFIX]: N customers PREFIX00000..
# (default c), each with an e-mail address PREFIXi@example.com and
# consent to e-mail only.
write_email_customers () {
  /usr/bin/python3 - "$2" "${3:-c}" > "$1" <<'PYEOF'
import json, sys
n, p = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    print(json.dumps({"id": "%s%05d" % (p, i), "email": "%s%d@example.com" % (p, i),
                      "consent": {"email": True}}))
PYEOF
}

count_lines () { if [ -f "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }

# wait_until SECONDS COMMAND...: run COMMAND every 50 ms until it succeeds
# (0), or give up when SECONDS have passed (1).  Tests wait on a condition
# with a generous deadline, never on a sleep that guesses how long
# something takes on a loaded machine.
wait_until () {
  _wu_end=$(( $(date +%s) + $1 ))
  shift
  until "$@"; do
    [ "$(date +%s)" -ge "$_wu_end" ] && return 1
    sleep 0.05
  done
  return 0
}

# alive PID: the process runs (not exited; a zombie not yet waited for
# counts as exited).
alive () {
  kill -0 "$1" 2>/dev/null || return 1
  case "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null)" in
    Z*) return 1 ;;
  esac
  return 0
}

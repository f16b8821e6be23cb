# config.sh: the email plugin's open() refuses bad values with
# "FILE:LINE: [channel.NAME] KEY: message" (plugin-run puts key N of the
# command line on line N+1 of test.ini).
run="$HERALD_BUILDDIR/tests/plugin-run"
so="$HERALD_PLUGIN_DIR/email.so"
n=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herald-email-config.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# expect WANT -k ... : open must fail and stderr must contain WANT.
expect () {
  want=$1
  shift
  n=$((n + 1))
  out=$(timeout 20 "$run" "$so" -n email "$@" </dev/null 2>&1)
  rc=$?
  case "$out" in
    *"$want"*)
      if [ $rc -eq 1 ]; then
        echo "ok $n - $want"
        return
      fi ;;
  esac
  failed=$((failed + 1))
  echo "not ok $n - $want"
  echo "#   rc=$rc: $out"
}

S='server=127.0.0.1:25'
F='from=Herald <news@herald.example>'
expect "test.ini:4: [channel.email] timeout_ms: 'abc' is not a number" \
  -k "$S" -k "$F" -k timeout_ms=abc
expect "test.ini:5: [channel.email] timeout_ms: '0' is out of range" \
  -k "$S" -k "$F" -k starttls=no -k timeout_ms=0
expect "test.ini:4: [channel.email] connect_timeout_ms: '2s' is not a number" \
  -k "$S" -k "$F" -k connect_timeout_ms=2s
expect "test.ini:5: [channel.email] connect_timeout_ms: '0' is out of range" \
  -k "$S" -k "$F" -k starttls=no -k connect_timeout_ms=0
expect "test.ini:2: [channel.email] server: 'mail.example:smtp' is not host:port" \
  -k server=mail.example:smtp -k "$F"
expect "test.ini:2: [channel.email] server: '127.0.0.1:70000' is not host:port" \
  -k server=127.0.0.1:70000 -k "$F"
expect "[channel.email] server: missing" -k "$F"
expect "[channel.email] from: missing" -k "$S"
expect "test.ini:3: [channel.email] from: 'Herald <news>' is not a mailbox" \
  -k "$S" -k 'from=Herald <news>'
expect "test.ini:3: [channel.email] starttls: 'maybe' is not no, yes or required" \
  -k "$S" -k starttls=maybe -k "$F"
expect "test.ini:4: [channel.email] batch: '-3' is out of range" \
  -k "$S" -k "$F" -k batch=-3
expect "test.ini:4: [channel.email] batch: '10x' is not a number" \
  -k "$S" -k "$F" -k batch=10x
expect "test.ini:4: [channel.email] rate: 'fast' is not a number" \
  -k "$S" -k "$F" -k rate=fast
expect "test.ini:4: [channel.email] rate: '-1' is out of range" \
  -k "$S" -k "$F" -k rate=-1
expect "test.ini:4: [channel.email] tls_verify: 'perhaps' is not yes or no" \
  -k "$S" -k "$F" -k tls_verify=perhaps
expect "test.ini:4: [channel.email] username: set, but neither password" \
  -k "$S" -k "$F" -k username=u
expect "test.ini:4: [channel.email] password: set, but username is not" \
  -k "$S" -k "$F" -k password=p
expect "test.ini:6: [channel.email] password_file: give password or password_file, not both" \
  -k "$S" -k "$F" -k username=u -k password=p -k password_file=/nonexistent
expect "test.ini:5: [channel.email] password_file: cannot read '$tmp/none'" \
  -k "$S" -k "$F" -k username=u -k "password_file=$tmp/none"
expect "test.ini:4: [channel.email] tls_ca_file: '$tmp/none' is not a readable PEM CA bundle" \
  -k "$S" -k "$F" -k "tls_ca_file=$tmp/none"
expect "[channel.email] colour: unknown key" -k "$S" -k "$F" -k colour=blue

# A password never shows in an error.
n=$((n + 1))
out=$(timeout 20 "$run" "$so" -n email -k "$S" -k "$F" -k password=hunter2 </dev/null 2>&1)
case "$out" in
  *hunter2*) failed=$((failed + 1)); echo "not ok $n - password kept out of errors"; echo "#   $out" ;;
  *) echo "ok $n - password kept out of errors" ;;
esac

# Good values open (and send nothing).
n=$((n + 1))
if out=$(timeout 20 "$run" "$so" -n email -k server=localhost -k "$F" \
    -k starttls=required -k timeout_ms=1500 -k rate=2.5 -k batch=50 \
    -k tls_verify=yes </dev/null 2>&1); then
  echo "ok $n - good values open"
else
  failed=$((failed + 1))
  echo "not ok $n - good values open"
  echo "#   $out"
fi

echo "1..$n"
[ $failed -eq 0 ]

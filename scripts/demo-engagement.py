#!/usr/bin/python3
"""Write a sample of customer engagement for the demo's welcome campaign.

Reads the messages the welcome run wrote into the outbox
(OUTBOX/*/messages.jsonl) and the demo customers, and writes, as JSON lines
that `herald events import` reads, what those customers "did" with them:
deliveries, opens, clicks and replies per channel, and conversions, which
variant B earns more often than variant A and the holdout (customers of the
audience who got no message) least.  The quick start imports the file, so
`herald report welcome` shows real rates and an uplift, and the win-back
run routes on the new engagement.

Every draw is a hash of the customer and the event type: the same messages
give the same events.  Each event is timed between the message's creation
and the moment the file is first written, so a conversion counts for the
message; an existing OUT file is kept as it is, which makes the import
idempotent when the quick start runs again.

Usage: demo-engagement.py CAMPAIGN OUTBOX_DIR CUSTOMERS.jsonl OUT.jsonl
"""

import glob
import hashlib
import json
import os
import sys
import time

# Share of messages with each event, per channel, in the order they happen.
RATES = {
    "email": [("delivered", 0.97), ("opened", 0.48), ("clicked", 0.14)],
    "sms": [("delivered", 0.98), ("clicked", 0.10), ("replied", 0.04)],
    "push": [("delivered", 0.95), ("opened", 0.22)],
    "webhook": [("delivered", 1.00)],
}
# Share of customers who convert after the campaign: the experiment.
CONVERT = {"A": 0.12, "B": 0.20, None: 0.02}


def draw(customer, what):
    """A number in [0, 1) fixed by the customer and what is drawn."""
    h = hashlib.sha256(("demo:%s:%s" % (customer, what)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__.split("\n\n")[-1].strip() + "\n")
        return 2
    campaign, outbox, customers_path, out = argv[1:]
    if os.path.exists(out):
        print("demo engagement: keeping %s" % out)
        return 0
    messages = {}
    for path in sorted(glob.glob(os.path.join(outbox, "*", "messages.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = json.loads(line)
                if m.get("campaign") == campaign:
                    messages[m["customer"]] = m
    if not messages:
        sys.stderr.write("demo-engagement: no message of campaign '%s' in %s\n"
                         % (campaign, outbox))
        return 1
    now = int(time.time())
    events = []

    def event(customer, channel, type_, t, key):
        e = {"customer": customer, "channel": channel, "type": type_,
             "at": rfc3339(t), "campaign": campaign}
        if key:
            e["message"] = key
        events.append(e)

    for cid, m in sorted(messages.items()):
        span = max(0, now - m["created"])
        steps = RATES.get(m["channel"], [])
        for i, (type_, rate) in enumerate(steps):
            # Funnel: an open needs the delivery, a click the open, ...
            if draw(cid, type_) >= rate:
                break
            t = m["created"] + span * (i + 1) // (len(steps) + 2)
            event(cid, m["channel"], type_, t, m["id"])
        if draw(cid, "converted") < CONVERT.get(m.get("variant"), 0.0):
            event(cid, m["channel"], "converted", m["created"] + span, m["id"])
    # The customers who got no welcome message (the holdout among them)
    # convert too, less often: the baseline of the uplift.
    with open(customers_path, encoding="utf-8") as f:
        for line in f:
            cid = json.loads(line)["id"]
            if cid not in messages and draw(cid, "converted") < CONVERT[None]:
                event(cid, "email", "converted", now, None)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    print("demo engagement: %d events for %d %s messages, written to %s"
          % (len(events), len(messages), campaign, out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

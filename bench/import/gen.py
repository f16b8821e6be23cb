#!/usr/bin/python3
"""Generate N varied customers for the import benchmark and tests.

gen.py N OUT.jsonl [OUT.csv]: JSON lines in Herald's customer format and,
optionally, the same customers as CSV (Herald's columns; JSON-valued cells
as JSON text) for the sqlite3 CLI's .import, the peer.  Deterministic."""
import csv
import json
import random
import sys

ZONES = ["Europe/Paris", "Europe/London", "Europe/Berlin", "America/New_York",
         "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata",
         "Australia/Sydney", "Africa/Lagos", "UTC"]
LOCALES = ["en", "en-US", "en-GB", "fr-FR", "de-DE", "pt-BR", "ja-JP", "es"]
CHANNELS = ["email", "sms", "push", "webhook"]
PLANS = ["free", "silver", "gold", "platinum"]
FIRST = ["Ana", "Ben", "Chloé", "Dev", "Eve", "Finn", "Gia", "Hugo", "Ines", "Jon", "Kenji", "Lea"]


def customer(i, rnd):
    c = {"id": "cust-%07d" % rnd.randrange(10**7) + "-%d" % i}
    if rnd.random() < 0.9:
        c["email"] = "user%d.%s@example%d.com" % (i, rnd.choice(FIRST).lower().replace("é", "e"), i % 97)
    if rnd.random() < 0.6:
        c["phone"] = "+%d%09d" % (rnd.choice([1, 33, 44, 49, 81, 91]), rnd.randrange(10**9))
    if rnd.random() < 0.3:
        c["push"] = [{"platform": rnd.choice(["ios", "android", "web"]), "token": "tok%016x" % rnd.getrandbits(64)}]
    if rnd.random() < 0.05:
        c["webhook"] = "https://hooks.example.com/c/%d" % i
    c["timezone"] = rnd.choice(ZONES)
    c["locale"] = rnd.choice(LOCALES)
    c["consent"] = {ch: rnd.random() < 0.8 for ch in rnd.sample(CHANNELS, rnd.randint(1, 3))}
    if rnd.random() < 0.5:
        c["preferred_channels"] = rnd.sample(CHANNELS, rnd.randint(1, 3))
    c["attributes"] = {"first_name": rnd.choice(FIRST), "plan": rnd.choice(PLANS),
                       "orders": rnd.randint(0, 200), "ltv": round(rnd.random() * 1000, 2)}
    return c


def main():
    n = int(sys.argv[1])
    rnd = random.Random(42)
    cols = ["id", "email", "phone", "push", "webhook", "timezone", "locale", "consent",
            "preferred_channels", "attributes"]
    jf = open(sys.argv[2], "w")
    cf = open(sys.argv[3], "w", newline="") if len(sys.argv) > 3 else None
    w = csv.writer(cf) if cf else None
    if w:
        w.writerow(cols)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for i in range(n):
        c = customer(i, rnd)
        jf.write(dumps(c) + "\n")
        if w:
            w.writerow([(dumps(c[k]) if isinstance(c.get(k), (dict, list)) else c.get(k, ""))
                        for k in cols])
    jf.close()
    if cf:
        cf.close()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Generate sample customers (and events) for Herald: varied consent,
preferences, time zones, UTF-8 names.  Deterministic for a given seed.

usage: gen-customers.py N [--seed S] [--events FILE] [--csv] > customers.jsonl
"""
import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone

FIRST = ["Anna", "Zoë", "Łukasz", "Søren", "José", "Chloé", "Mehmet", "Ayşe",
         "Björn", "Renée", "Jürgen", "Ğülşen", "Hiroshi", "美咲", "Olga",
         "Nguyễn", "Fatima", "Émile", "Priya", "Liam", "Noah", "Emma", "Mia",
         "Lucas", "Sofía", "Ingrid", "Dmitri", "Aoife", "Kwame", "Élodie"]
LAST = ["Müller", "García", "Kowalski", "Nielsen", "Dubois", "Yılmaz",
        "Smith", "Rossi", "Tanaka", "Ivanova", "O'Brien", "Nguyễn", "Khan",
        "Jensen", "Silva", "Łęcki", "Fernández", "Schäfer", "Haddad", "Ng"]
ZONES = ["Europe/Paris", "Europe/Berlin", "Europe/London", "America/New_York",
         "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney",
         "Europe/Istanbul", "Asia/Kolkata", "America/Sao_Paulo", "UTC"]
LOCALES = ["fr-FR", "de-DE", "en-GB", "en-US", "en-US", "ja-JP", "en-AU",
           "tr-TR", "en-IN", "pt-BR", "en"]
CHANNELS = ["email", "sms", "push", "webhook"]
TIERS = ["bronze", "silver", "gold", "platinum"]
PRODUCTS = ["espresso machine", "grinder", "milk jug", "coffee beans",
            "tamper", "kettle", "café au lait bowl"]


def customer(i, rnd):
    zi = rnd.randrange(len(ZONES))
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    cid = "c%06d" % i
    c = {"id": cid, "timezone": ZONES[zi], "locale": LOCALES[zi]}
    if rnd.random() < 0.93:
        c["email"] = "%s.%d@example.com" % (cid, i % 97)
    if rnd.random() < 0.7:
        c["phone"] = "+%d%09d" % (rnd.choice([33, 49, 44, 1, 81, 61]),
                                  rnd.randrange(10**8, 10**9))
    if rnd.random() < 0.4:
        c["push"] = [{"platform": rnd.choice(["ios", "android"]),
                      "token": "%064x" % rnd.getrandbits(256)}
                     for _ in range(rnd.choice([1, 1, 2]))]
    if rnd.random() < 0.1:
        c["webhook"] = "https://hooks.example.com/herald/%s" % cid
    consent = {}
    for ch in CHANNELS:
        r = rnd.random()
        if r < 0.75:
            consent[ch] = True
        elif r < 0.85:
            consent[ch] = False
    c["consent"] = consent
    prefs = CHANNELS[:]
    rnd.shuffle(prefs)
    c["preferred_channels"] = prefs[:rnd.choice([0, 1, 2, 3])]
    c["attributes"] = {
        "first_name": first, "last_name": last,
        "name": "%s %s" % (first, last),
        "tier": rnd.choice(TIERS),
        "orders": rnd.choice([0, 0, 1, 2, 3, 5, 8, 13]),
        "favourite_product": rnd.choice(PRODUCTS),
        "points": rnd.randrange(0, 5000),
    }
    return c


def events(c, rnd, now, out):
    n = rnd.choice([0, 0, 1, 3, 6, 10])
    for _ in range(n):
        ch = rnd.choice(CHANNELS[:3])
        at = now - timedelta(days=rnd.uniform(0, 60))
        kinds = ["delivered", "delivered", "opened", "clicked", "replied",
                 "converted"]
        e = {"customer": c["id"], "channel": ch, "type": rnd.choice(kinds),
             "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        out.write(json.dumps(e, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--events")
    ap.add_argument("--events-now", default="2026-11-01T00:00:00Z")
    ap.add_argument("--csv", action="store_true")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    now = datetime.strptime(a.events_now, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc)
    ev = open(a.events, "w", encoding="utf-8") if a.events else None
    out = sys.stdout
    if a.csv:
        import csv
        cols = ["id", "email", "phone", "push", "webhook", "timezone",
                "locale", "consent", "preferred_channels", "attributes"]
        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
    for i in range(1, a.n + 1):
        c = customer(i, rnd)
        if a.csv:
            w.writerow([c.get(k, "") if isinstance(c.get(k, ""), str)
                        else json.dumps(c[k], ensure_ascii=False)
                        for k in cols])
        else:
            out.write(json.dumps(c, ensure_ascii=False) + "\n")
        if ev:
            events(c, rnd, now, ev)
    if ev:
        ev.close()


if __name__ == "__main__":
    main()

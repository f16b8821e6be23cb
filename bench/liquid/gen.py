#!/usr/bin/env python3
"""gen.py N: N varied customers as JSON Lines (deterministic), for bench."""
import json, random, sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
rnd = random.Random(42)
firsts = ["ada", "Élodie", "bob", "çağla", "dmitri", "eve", "Zoë", "oliver",
          "ming", "", "sam", "Łukasz", "nora", "jürgen", "ana"]
tiers = ["gold", "platinum", "silver", "standard", None]
locales = ["en", "fr", "de", "fr-FR", "es", "en-GB"]
tags = ["vip", "new", "loyal", "sale_hunter", "mobile", "newsletter"]
words = ["Linen", "Shirt", "Wool", "Scarf", "Leather", "Boots", "Cotton",
         "Dress", "Denim", "Jacket", "Silk", "Tie", "Summer", "Hat"]
out = sys.stdout
for i in range(n):
    prods = []
    for j in range(rnd.randint(0, 6)):
        prods.append({
            "title": " ".join(rnd.choice(words) for _ in range(rnd.randint(2, 6))),
            "price": round(rnd.uniform(5, 400), 2),
            "discount": rnd.choice([0, 0, 10, 15, 25, 50]),
            "url": "https://shop.example.com/p/%d" % rnd.randint(1, 99999),
            "image": "https://cdn.example.com/i/%d.jpg" % rnd.randint(1, 99999),
        })
    c = {
        "customer": {
            "id": "c%06d" % i,
            "first_name": rnd.choice(firsts),
            "email": "user%d@example.com" % i,
            "tier": rnd.choice(tiers),
            "orders": rnd.randint(0, 20),
            "points": rnd.randint(0, 3000),
            "locale": rnd.choice(locales),
            "timezone": rnd.choice(["Europe/Paris", "America/New_York", "UTC", "Asia/Tokyo"]),
            "tags": rnd.sample(tags, rnd.randint(0, 4)),
            "sizes": rnd.sample(["S", "M", "L", "XL", "M"], rnd.randint(0, 4)),
            "last_order_at": "2024-%02d-%02dT%02d:%02d:00Z" % (rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59)),
            "signup_at": 1500000000 + rnd.randint(0, 200000000),
        },
        "products": prods,
        "campaign": {"id": "spring sale/2025", "name": "Spring Sale",
                     "preheader": "Up to 50% off on everything you love, only this week, while stocks last, do not miss it!",
                     "company": "Example Shop", "address": "1 Main St\nSpringfield",
                     "short_url": "https://ex.am/s"},
        "unsubscribe_url": "https://t.example.com/u/%d?sig=%08x" % (i, rnd.getrandbits(32)),
    }
    out.write(json.dumps(c, ensure_ascii=False))
    out.write("\n")

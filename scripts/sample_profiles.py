"""Write a sample user-profile dataset (JSON Lines) with the seed's sensitive fields.

Card numbers are Luhn-valid test numbers and SSNs are in the 9xx range the SSA never
issues: the data looks real to a scanner and belongs to nobody.
Usage: python scripts/sample_profiles.py OUT.jsonl [COUNT]
"""

from __future__ import annotations

import json
import random
import sys


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return digits + str((10 - total % 10) % 10)


def ssn(rng: random.Random) -> str:
    return f"9{rng.randrange(10, 99)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"


def main() -> None:
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rng = random.Random(7)
    with open(out, "w", encoding="utf-8") as fh:
        for i in range(count):
            record = {
                "_id": f"user-{i:06d}",
                "name": f"User {i}",
                "ssn": ssn(rng),
                "credit_card": luhn_complete("4", 16, rng),
                "personal_info": {
                    "email": f"user{i}@example.com",
                    "phone": f"+1-555-{rng.randrange(1000, 9999)}",
                    "address": {"city": rng.choice(["Austin", "Boston", "Denver"]), "zip": "00000"},
                },
                "plan": rng.choice(["basic", "pro", "enterprise"]),
            }
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Recompute a month's spot-check selection from its published seed, independently of miaopi.

Standard library only, so anyone can run it:

    python3 scripts/verify_draw.py period.json          # a saved GET /v1/audit/periods/{YYYY-MM}
    python3 scripts/verify_draw.py period.json --commitment HEX   # the seed_sha256 kept from
                                                        # during the month: the seed is that one
    python3 scripts/verify_draw.py --url http://127.0.0.1:8000 --key "$KEY" --period 2026-10

Rule (policy.md §8): a case is selected iff HMAC-SHA256(key = the seed's bytes, message = the
case id in UTF-8), read as a big-endian integer n, satisfies n / 2^256 < rate, with the rate an
exact decimal. Prints the recomputed selection, one case id a line, and exits 1 if it differs
from what the service published (or if the seed does not match the SHA-256 shown during the
month). While the month runs its seed is not published: the script says so, prints the
commitment (the seed's SHA-256) to keep, and checks only that it is one.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import urllib.request
from fractions import Fraction


def selected(seed: bytes, case_id: str, rate: str) -> bool:
    n = int.from_bytes(hmac.new(seed, case_id.encode("utf-8"), hashlib.sha256).digest(), "big")
    return Fraction(n, 2**256) < Fraction(rate)


def verify(published: dict, commitment: str | None = None) -> tuple[list[str], list[str]]:
    """The recomputed selection and every disagreement with the published one."""
    seed = bytes.fromhex(published["seed"])
    problems = []
    if hashlib.sha256(seed).hexdigest() != published.get("seed_sha256"):
        problems.append("the seed does not hash to the published seed_sha256")
    if commitment is not None and hashlib.sha256(seed).hexdigest() != commitment.lower():
        problems.append("the seed does not hash to the commitment kept from during the month")
    mine = []
    for d in published["draws"]:
        drawn = selected(seed, d["case_id"], d["rate"])
        if drawn:
            mine.append(d["case_id"])
        if drawn != d["selected"]:
            problems.append(f"{d['case_id']}: published selected={d['selected']}, recomputed not")
    if sorted(mine) != sorted(published["selected"]):
        problems.append("the recomputed selection differs from the published list")
    return mine, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", help="saved period JSON, or - for standard input")
    parser.add_argument("--url", help="miaopi base URL")
    parser.add_argument("--key", help="an auditor's or admin's API key")
    parser.add_argument("--period", help="YYYY-MM")
    parser.add_argument(
        "--commitment", help="the seed_sha256 published while the month ran, kept to check the seed"
    )
    args = parser.parse_args()
    if args.url:
        if not (args.key and args.period):
            parser.error("--url needs --key and --period")
        if not args.url.startswith(("http://", "https://")):
            parser.error("--url must be http:// or https://")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            f"{args.url.rstrip('/')}/v1/audit/periods/{args.period}",
            headers={"Authorization": f"Bearer {args.key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            published = json.load(response)
    elif args.file:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        with stream:
            published = json.load(stream)
    else:
        parser.error("give a file or --url")
    if not published.get("seed"):
        return _running(published)
    mine, problems = verify(published, args.commitment)
    for case_id in mine:
        print(case_id)
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    print(
        f"{published['period']}: {len(published['draws'])} approvals, {len(mine)} selected, "
        + ("matches the published selection" if not problems else "DOES NOT MATCH"),
        file=sys.stderr,
    )
    return 1 if problems else 0


def _running(published: dict) -> int:
    """A month still running: its seed is secret until it ends; only its commitment is shown."""
    commitment = str(published.get("seed_sha256") or "")
    period = published.get("period")
    if len(commitment) != 64 or any(c not in "0123456789abcdef" for c in commitment):
        print(f"MISMATCH: {period}: no seed and no valid commitment published", file=sys.stderr)
        return 1
    print(
        f"{period}: the month is still running, so its seed is not published yet. "
        f"Its commitment (the seed's SHA-256) is {commitment}: keep it, and after the month "
        f"verify the selection with --commitment {commitment}.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``vidsr models [--json]``: list the models this install can use."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list available models")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidsr.engine.upscaler import model_listing
    from vidsr.models.registry import REGISTRY

    rows = model_listing()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<16} {'family':<11} {'colour':<6} {'scales':<8} {'params':>9}  description")
    for row in rows:
        scales = ",".join(str(s) for s in row["scales"]) or "-"
        print(f"{row['name']:<16} {row['family']:<11} {row['colour']:<6} {scales:<8} {row['parameters']:>9}  "
              f"{REGISTRY[row['name']].description}")
    return 0

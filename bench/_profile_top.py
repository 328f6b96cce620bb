"""Summarise a py-spy speedscope profile: top frames by self and by inclusive samples.

    python bench/_profile_top.py profile.json [--top 30] [--filter SUBSTRING]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--filter", default=None, help="only frames whose file contains this")
    p.add_argument("--by-function", action="store_true",
                   help="merge the lines of a function (py-spy keeps one frame per line)")
    p.add_argument("--thread", default=None,
                   help="only profiles (threads) whose name contains this, e.g. MainThread")
    args = p.parse_args()
    doc = json.load(open(args.path))
    frames = doc["shared"]["frames"]
    if args.by_function:  # map every frame to the first frame of the same function
        first: dict[tuple[str, str], int] = {}
        canon = [first.setdefault((f["name"], f.get("file", "")), i) for i, f in enumerate(frames)]
        for prof in doc["profiles"]:
            prof["samples"] = [[canon[i] for i in st] for st in prof["samples"]]
    self_c: Counter[int] = Counter()
    incl: Counter[int] = Counter()
    total = 0
    for prof in doc["profiles"]:
        if args.thread and args.thread not in prof.get("name", ""):
            continue
        for stack, w in zip(prof["samples"], prof["weights"], strict=True):
            total += w
            if stack:
                self_c[stack[-1]] += w
            for f in set(stack):
                incl[f] += w

    def name(i: int) -> str:
        f = frames[i]
        file = f.get("file", "")
        for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
            if cut in file:
                file = file.split(cut, 1)[1]
        line = "" if args.by_function else f":{f.get('line', '')}"
        return f"{f['name']} ({file}{line})"

    def keep(i: int) -> bool:
        return args.filter is None or args.filter in frames[i].get("file", "")

    print("threads:", ", ".join(f"{q.get('name')} ({sum(q['weights']):.0f})"
                                for q in doc["profiles"]))
    print(f"total samples: {total:.0f}")
    print("\n== self ==")
    for i, c in [x for x in self_c.most_common() if keep(x[0])][: args.top]:
        print(f"{100 * c / total:6.1f}%  {name(i)}")
    print("\n== inclusive ==")
    for i, c in [x for x in incl.most_common() if keep(x[0])][: args.top]:
        print(f"{100 * c / total:6.1f}%  {name(i)}")


if __name__ == "__main__":
    main()

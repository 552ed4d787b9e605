#!/usr/bin/env python3
"""The fused decode kernels against the ATen operations they replace, on the
GPU machine (perf.sh phase `check`): model_tool --dump_json files of the same
teacher-forced steps with --fused_kernels=on (FUSED), off (UNFUSED, the graphs
with ATen operations) and the eager pass (EAGER, no graphs), in bfloat16.

Bfloat16 results differ by roundings between any two of these (sums in
another order); the check is that fused-vs-unfused is of the size of
unfused-vs-eager (the difference round 1 accepted), for the logits and the
captured scores of every decode step:

  python3 tools/gpu/check_fused.py FUSED.json UNFUSED.json EAGER.json

Prints the largest difference over the largest |value|, per pair, and PASS
or FAIL (exit status 1).
"""

import json
import sys


def steps(path):
    with open(path) as f:
        data = json.load(f)
    sequences = data["sequences"] if isinstance(data, dict) else data
    out = []
    for s in sequences:
        for step in s["steps"][1:]:  # decode steps (the first is the prefill)
            scores = [v for a in step.get("attention", []) for v in a["scores"]]
            out.append((step["logits"], scores, step["argmax"]))
    return out


def diff(a, b):
    worst_logits = worst_scores = 0.0
    scale_logits = scale_scores = 1e-30
    same_argmax = 0
    for (la, sa, ma), (lb, sb, mb) in zip(a, b):
        worst_logits = max(worst_logits, max(abs(x - y) for x, y in zip(la, lb)))
        scale_logits = max(scale_logits, max(abs(x) for x in lb))
        if sa and sb:
            worst_scores = max(worst_scores, max(abs(x - y) for x, y in zip(sa, sb)))
            scale_scores = max(scale_scores, max(abs(x) for x in sb))
        same_argmax += ma == mb
    return worst_logits / scale_logits, worst_scores / scale_scores, same_argmax, len(a)


def main():
    fused, unfused, eager = (steps(p) for p in sys.argv[1:4])
    if not fused or len(fused) != len(unfused) or len(unfused) != len(eager):
        print("FAIL: the dumps have different steps (%d, %d, %d)" %
              (len(fused), len(unfused), len(eager)))
        return 1
    f_u = diff(fused, unfused)
    u_e = diff(unfused, eager)
    f_e = diff(fused, eager)
    for name, d in (("fused vs unfused", f_u), ("unfused vs eager", u_e), ("fused vs eager", f_e)):
        print("%-17s logits %.2e  scores %.2e  (of the largest |value|)  argmax same %d/%d"
              % (name, d[0], d[1], d[2], d[3]))
    limit_logits = max(4 * u_e[0], 2e-2)
    limit_scores = max(4 * u_e[1], 2e-2)
    ok = f_u[0] <= limit_logits and f_u[1] <= limit_scores and f_e[0] <= limit_logits
    print("%s (limits: logits %.2e, scores %.2e)" % ("PASS" if ok else "FAIL", limit_logits,
                                                      limit_scores))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

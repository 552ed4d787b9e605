#!/usr/bin/python3
"""Entropix thresholds calibrated to a model, from traces of its own generations.

entropix's thresholds (low entropy 0.1, high 5.0, ...) were chosen for Llama 3 models,
which are confident on most tokens. A small model is not: on models/tiny the median
next-token entropy is ~5.7 bits and varentropy ~11, so with the defaults nearly every
token falls in resample or explore and the modes say little. This script puts each
threshold at a quantile of the signals the model itself produces, so that each mode
fires on a share of tokens like the one it has on a large model, and prints the
SamplerSpec text (samplerctl --spec) and the share of each mode it predicts on the
traces given.

  build/bin/samplerctl generate --server=... --prompt=... --sampler=entropix \\
      --trace=run1.jsonl            # several prompts and seeds
  /usr/bin/python3 models/tiny/calibrate_entropix.py run*.jsonl > models/tiny/entropix.txtpb

The quantiles (percent) are flags; their defaults gave models/tiny/entropix.txtpb.
Policy (sampler/policies/entropix.cc): flowing H < low_H and V < low_V; clarify H > medium_H and
V < low_V; explore H < high_H and V > high_V; resample H > high_H and V > high_V;
otherwise adaptive.
"""

import argparse
import collections
import json
import sys

import numpy as np

MODES = ("flowing", "clarify", "explore", "resample", "adaptive")


def mode_of(h, v, t):
    if h < t["low_entropy"] and v < t["low_varentropy"]:
        return "flowing"
    if h > t["medium_entropy"] and v < t["low_varentropy"]:
        return "clarify"
    if h < t["high_entropy"] and v > t["high_varentropy"]:
        return "explore"
    if h > t["high_entropy"] and v > t["high_varentropy"]:
        return "resample"
    return "adaptive"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+", help="JSONL traces (samplerctl generate --trace)")
    parser.add_argument("--low_entropy_q", type=float, default=25)
    parser.add_argument("--low_varentropy_q", type=float, default=30)
    parser.add_argument("--medium_entropy_q", type=float, default=95)
    parser.add_argument("--high_entropy_q", type=float, default=55)
    parser.add_argument("--high_varentropy_q", type=float, default=70)
    args = parser.parse_args()

    h, v = [], []
    for path in args.traces:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                try:
                    signals = json.loads(line)["signals"]
                    h.append(float(signals["entropy"]))
                    v.append(float(signals["varentropy"]))
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit(f"{path}:{number}: not a trace record with signals ({e})")
    if len(h) < 100:
        sys.exit(f"only {len(h)} tokens in the traces: give at least 100")
    h, v = np.array(h), np.array(v)
    t = {
        "low_entropy": np.percentile(h, args.low_entropy_q),
        "low_varentropy": np.percentile(v, args.low_varentropy_q),
        "medium_entropy": np.percentile(h, args.medium_entropy_q),
        "high_entropy": np.percentile(h, args.high_entropy_q),
        "high_varentropy": np.percentile(v, args.high_varentropy_q),
    }
    t = {k: round(float(x), 2) for k, x in t.items()}
    shares = collections.Counter(mode_of(a, b, t) for a, b in zip(h, v))
    print(f"# entropix thresholds calibrated on {len(h)} tokens of {len(args.traces)} trace(s)"
          " by models/tiny/calibrate_entropix.py")
    print("# (quantiles: low H %g, low V %g, medium H %g, high H %g, high V %g)" % (
        args.low_entropy_q, args.low_varentropy_q, args.medium_entropy_q,
        args.high_entropy_q, args.high_varentropy_q))
    print("# predicted modes on those tokens: " + ", ".join(
        f"{m} {shares[m] / len(h):.0%}" for m in MODES))
    print("entropix {")
    for key, value in t.items():
        print(f"  {key}: {value}")
    print("}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Cross-checks every signal of sampler/core/signals.h against NumPy in float64.

Generates rows with a seeded NumPy RNG -- logits of V in {1000, 32000, 151936}
with a few -inf (masked) tokens, and attention scores [8, 300] -- encodes them
as FLOAT32, FLOAT16 and BFLOAT16 wire tensors, runs signals_tool on each, and
compares with an independent float64 computation from the decoded values
(log_softmax, then the definitions of docs/SAMPLERS.md "Signals").

Tolerance, per signal: |tool - numpy| <= ATOL + RTOL * |numpy|, with
RTOL = 1e-5 and ATOL = 1e-5 (bits, bits^2, or probability units for
agreement), and 1e-6 absolute for log_normalizer (nats). The kernels keep
~1e-6 relative (float lanes summed into double per 1024-element block, a
~1e-7 relative 2^x) and the tool prints float32 results; the worst error
seen is ~2% of this tolerance (27% for log_normalizer).

  /usr/bin/python3 tests/sampler/core/signals_numpy_check.py --tool build/bin/signals_tool

--fit_exp2 instead prints the coefficients of the 2^r polynomial used by
sampler/core/signals.cc (minimax for the relative error on [-1/2, 1/2]).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

RTOL = 1e-5
ATOL = 1e-5
LOG_NORMALIZER_ATOL = 1e-6
LN2 = np.log(2.0)

VOCABS = (1000, 32000, 151936)
HEADS, KEYS = 8, 300
DTYPES = ("float32", "float16", "bfloat16")
SEED = 20240611


def encode(values32, dtype):
    """float32 array -> (wire bytes, the float64 values those bytes decode to)."""
    values32 = np.asarray(values32, dtype=np.float32)
    if dtype == "float32":
        return values32.astype("<f4").tobytes(), values32.astype(np.float64)
    if dtype == "float16":
        half = values32.astype("<f2")  # round to nearest even
        return half.tobytes(), half.astype(np.float64)
    # bfloat16: round the float32 bits to nearest even on bit 16 (no NaNs here).
    bits = values32.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    decoded = (rounded.astype(np.uint32) << 16).view(np.float32)
    return rounded.astype("<u2").tobytes(), decoded.astype(np.float64)


def make_logits(rng, vocab, kind):
    if kind == "gaussian":  # a typical LLM row: broad, with a few strong candidates
        z = rng.normal(0.0, 3.0, vocab)
        z[rng.choice(vocab, 5, replace=False)] += rng.uniform(8.0, 14.0, 5)
    elif kind == "peaked":  # near-greedy: one token far above the rest
        z = rng.normal(-5.0, 2.0, vocab)
        z[rng.integers(vocab)] = 25.0
    elif kind == "flat":  # near-uniform (an untrained model)
        z = rng.normal(10.0, 0.05, vocab)
    else:
        raise ValueError(kind)
    z[rng.choice(vocab, 7, replace=False)] = -np.inf
    return z.astype(np.float32)


def make_attention(rng):
    s = rng.normal(0.0, 2.0, (HEADS, KEYS))
    s[:, 0] += 6.0                    # an attention sink on the first key
    s[1] = rng.normal(0.0, 0.01, KEYS)  # a near-uniform head
    s[2, 150] += 30.0                 # a near-one-hot head
    return s.astype(np.float32)


def reference_logits(z):
    finite = np.isfinite(z)
    m = z[finite].max()
    log_normalizer = m + np.log(np.exp(z[finite] - m).sum())
    log_p = z[finite] - log_normalizer
    p = np.exp(log_p)
    entropy = -(p * log_p).sum() / LN2
    varentropy = (p * (log_p / LN2 + entropy) ** 2).sum()
    return {
        "entropy": entropy,
        "varentropy": varentropy,
        "argmax": int(np.argmax(z)),  # first occurrence
        "max_logit": m,
        "log_normalizer": log_normalizer,
        "finite": int(finite.sum()),
    }


def reference_attention(s):
    shifted = s - s.max(axis=1, keepdims=True)
    log_a = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    a = np.exp(log_a)
    h = -(a * log_a).sum(axis=1) / LN2
    v = (a * (log_a / LN2 + h[:, None]) ** 2).sum(axis=1)
    return {
        "attn_entropy": h.mean(),
        "attn_varentropy": v.mean(),
        "attn_entropy_spread": h.var(),  # population variance, as jnp.var
        "agreement": np.abs(a - a.mean(axis=0, keepdims=True)).mean(),
        "interaction_strength": np.abs(s).mean(),
    }


def run_tool(tool, workdir, logits_bytes, vocab, dtype, attention_bytes):
    logits_path = os.path.join(workdir, "logits.bin")
    attention_path = os.path.join(workdir, "attention.bin")
    with open(logits_path, "wb") as f:
        f.write(logits_bytes)
    with open(attention_path, "wb") as f:
        f.write(attention_bytes)
    out = subprocess.run(
        [tool, f"--logits={logits_path}", f"--dtype={dtype}", f"--vocab={vocab}",
         f"--attention={attention_path}", f"--attention_dtype={dtype}",
         f"--heads={HEADS}", f"--keys={KEYS}"],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def fit_exp2(degree=6, nodes=4001, iterations=60):
    """2^r ~ 1 + sum_k c_k r^k on [-1/2, 1/2], minimising the max relative
    error by iteratively reweighted least squares (Lawson) on Chebyshev nodes."""
    r = np.cos(np.linspace(0.0, np.pi, nodes)) * 0.5
    f = np.exp2(r)
    powers = np.stack([r ** k for k in range(1, degree + 1)], axis=1)
    weights = np.ones_like(r)
    for _ in range(iterations):
        sw = np.sqrt(weights)
        c, *_ = np.linalg.lstsq(powers / f[:, None] * sw[:, None], (f - 1) / f * sw, rcond=None)
        err = (1 + powers @ c - f) / f
        weights = weights * (np.abs(err) / np.abs(err).max()) ** 0.3 + 1e-12
    print(f"max relative error {np.abs(err).max():.3g}")
    for k, ck in enumerate(c, 1):
        print(f"constexpr float kExp2C{k} = {ck:.12e}f;")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", help="path to the signals_tool binary")
    parser.add_argument("--fit_exp2", action="store_true",
                        help="print the 2^r polynomial coefficients and exit")
    args = parser.parse_args()
    if args.fit_exp2:
        fit_exp2()
        return 0
    if not args.tool:
        parser.error("--tool is required")

    rng = np.random.default_rng(SEED)
    failures = []
    worst = {}  # signal -> worst |err| / (ATOL + RTOL |ref|)
    cases = 0
    with tempfile.TemporaryDirectory() as workdir:
        for dtype in DTYPES:
            for vocab in VOCABS:
                for kind in ("gaussian", "peaked", "flat"):
                    logits_bytes, z = encode(make_logits(rng, vocab, kind), dtype)
                    attention_bytes, s = encode(make_attention(rng), dtype)
                    got = run_tool(args.tool, workdir, logits_bytes, vocab, dtype,
                                   attention_bytes)
                    want = reference_logits(z)
                    want.update(reference_attention(s))
                    cases += 1
                    if not got["has_attention"]:
                        failures.append(f"{dtype} V={vocab} {kind}: has_attention is false")
                    # max_logit is printed with 9 digits: equal as float32.
                    got["max_logit"] = float(np.float32(got["max_logit"]))
                    for key in ("argmax", "finite", "max_logit"):
                        if got[key] != want[key]:
                            failures.append(f"{dtype} V={vocab} {kind}: {key} = {got[key]}, "
                                            f"numpy {want[key]}")
                    for key, ref in want.items():
                        if key in ("argmax", "finite", "max_logit"):
                            continue
                        if key == "log_normalizer":
                            allowed = LOG_NORMALIZER_ATOL
                        else:
                            allowed = ATOL + RTOL * abs(ref)
                        err = abs(got[key] - ref)
                        worst[key] = max(worst.get(key, 0.0), err / allowed)
                        if not err <= allowed:
                            failures.append(
                                f"{dtype} V={vocab} {kind}: {key} = {got[key]!r}, numpy "
                                f"{ref!r} (|err| {err:.3g} > {allowed:.3g})")
    print(f"{cases} rows checked; worst error as a fraction of the tolerance:")
    for key in sorted(worst):
        print(f"  {key:22s} {worst[key]:.3f}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

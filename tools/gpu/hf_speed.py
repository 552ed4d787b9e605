#!/usr/bin/env python3
"""transformers' decode speed on a checkpoint, for the side-by-side figures of
docs/PERFORMANCE.md: greedy generate() of NEW tokens after a PROMPT-token random
prompt per sequence, at each batch size, in bf16 on CUDA, in three set-ups:

  eager    attn_implementation="sdpa", the default dynamic cache, no compile
  static   sdpa and cache_implementation="static", compile disabled
  compiled sdpa, static cache, and torch.compile of the decoding forward
           (transformers' generate compiles it itself for a static cache;
           mode "reduce-overhead": CUDA graphs), its fastest path

tokens/s = batch * NEW over the wall time of one generate() (the prefill
included), best of --runs after one warm-up call (which compiles). Prints a
table and writes --json.

  python3 tools/gpu/hf_speed.py --model DIR [--batch 1,32] [--new 128] [--prompt 16]
"""

import argparse
import json
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def generate_once(model, ids, new_tokens, setup):
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                  pad_token_id=0)
    if setup in ("static", "compiled"):
        kwargs["cache_implementation"] = "static"
    if setup == "compiled":
        kwargs["compile_config"] = transformers.CompileConfig(fullgraph=True,
                                                              mode="reduce-overhead")
    else:
        kwargs["disable_compile"] = True
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    assert out.shape[1] == ids.shape[1] + new_tokens, out.shape
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--setups", default="eager,static,compiled")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.cuda.get_device_name()}", flush=True)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16,
                                                 attn_implementation="sdpa").cuda().eval()
    vocab = model.config.vocab_size
    results = []
    for setup in args.setups.split(","):
        for batch in [int(b) for b in args.batch.split(",")]:
            gen = torch.Generator().manual_seed(batch)
            ids = torch.randint(1000, vocab - 1000, (batch, args.prompt), generator=gen).cuda()
            try:
                warm = generate_once(model, ids, args.new, setup)
                best = min(generate_once(model, ids, args.new, setup) for _ in range(args.runs))
            except Exception as e:  # report and go on with the other set-ups
                print(f"{setup} batch {batch}: failed: {e!r}", flush=True)
                results.append({"setup": setup, "batch": batch, "error": repr(e)})
                continue
            row = {"setup": setup, "batch": batch, "warmup_s": warm, "best_s": best,
                   "tokens_per_s": batch * args.new / best,
                   "ms_per_step": 1e3 * best / args.new}
            results.append(row)
            print(f"{setup:9s} batch {batch:3d}: {row['tokens_per_s']:8.1f} tok/s "
                  f"({row['ms_per_step']:.2f} ms/step incl. prefill; warm-up {warm:.1f} s)",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "new": args.new, "prompt": args.prompt,
                       "torch": torch.__version__, "transformers": transformers.__version__,
                       "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

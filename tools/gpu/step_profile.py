#!/usr/bin/env python3
"""Where a graphed decode step's time goes, op by op, without the C++ runner:
one decode step of the random Llama-3.2-1B shape in bf16, written with the
operations of model_runner/model/decode_graphs.cc (the same kernels), captured
as a CUDA graph and replayed, at each batch size, in variants that leave parts
out:

  full        the step as the runner records it (fused q/k/v and gate/up)
  gemm        the matrix products alone (the weights' floor plus their launches)
  no_attn     full without the attention (the gather, scores, softmax, values)
  no_norm     full with RMSNorm as a plain copy of x
  no_rope     full without the rotation of q and k

and the device-to-host copy of a step's logits, float32 against bfloat16, into
page-locked memory. Prints one table (ms per replay, median of 200 after a
warm-up) and the kernel count of one eager step (torch.profiler).

  python3 tools/gpu/step_profile.py [--batch 1,16,32] [--keys 256]
"""

import argparse
import statistics

import torch

HIDDEN, LAYERS, HEADS, KV_HEADS, DH, INTER, VOCAB = 2048, 16, 32, 8, 64, 8192, 128256
EPS = 1e-5


def make_weights(dev):
    g = torch.Generator(device=dev).manual_seed(0)
    w = lambda *s: (torch.randn(*s, device=dev, generator=g) * 0.02).to(torch.bfloat16)
    layers = [dict(qkv=w((HEADS + 2 * KV_HEADS) * DH, HIDDEN), o=w(HIDDEN, HEADS * DH),
                   gate_up=w(2 * INTER, HIDDEN), down=w(HIDDEN, INTER),
                   n1=torch.ones(HIDDEN, device=dev, dtype=torch.bfloat16),
                   n2=torch.ones(HIDDEN, device=dev, dtype=torch.bfloat16))
              for _ in range(LAYERS)]
    return layers, w(VOCAB, HIDDEN)


def rms_norm(x, weight, variant):
    if variant == "no_norm":
        return x.clone()
    h = torch.rms_norm(x.float(), (x.shape[-1],), None, EPS)
    return weight * h.to(x.dtype)


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin


def step(state, variant):
    layers, lm_head, pool, ids, pos, rows, out, embed = state
    B = ids.shape[0]
    keys = pool.shape[4]
    inv = 1.0 / (500000 ** (torch.arange(0, DH, 2, device=ids.device).float() / DH))
    f = pos.float().unsqueeze(1) * inv.unsqueeze(0)
    ang = torch.cat((f, f), -1)
    cos, sin = ang.cos().bfloat16().unsqueeze(1), ang.sin().bfloat16().unsqueeze(1)
    masked = (torch.arange(keys, device=ids.device).unsqueeze(0) > pos.unsqueeze(1)).unsqueeze(1)
    per_row = LAYERS * 2 * KV_HEADS
    base = ((rows * per_row).unsqueeze(1) + torch.arange(KV_HEADS, device=ids.device)) * keys \
        + pos.unsqueeze(1)
    widx = base.view(1, -1) + torch.arange(2 * LAYERS, device=ids.device).unsqueeze(1) * (
        KV_HEADS * keys)
    x = embed.index_select(0, ids)
    for l, L in enumerate(layers):
        if variant == "gemm":
            qkv = torch.nn.functional.linear(x, L["qkv"])
            x = x + torch.nn.functional.linear(qkv[:, :HEADS * DH], L["o"])
            gu = torch.nn.functional.linear(x, L["gate_up"])
            x = x + torch.nn.functional.linear(gu[:, :INTER], L["down"])
            continue
        h = rms_norm(x, L["n1"], variant)
        qkv = torch.nn.functional.linear(h, L["qkv"])
        qk = qkv[:, :(HEADS + KV_HEADS) * DH].view(B, HEADS + KV_HEADS, DH)
        if variant != "no_rope":
            qk = rotate(qk, cos, sin)
        q, k = qk[:, :HEADS], qk[:, HEADS:]
        v = qkv[:, (HEADS + KV_HEADS) * DH:].view(B, KV_HEADS, DH)
        if variant == "no_attn":
            att = q.reshape(B, HEADS * DH)
        else:
            kv = pool.select(1, l).transpose(0, 1).index_select(1, rows)
            flat = pool.view(-1, DH)
            flat.index_copy_(0, widx[2 * l], k.reshape(-1, DH))
            flat.index_copy_(0, widx[2 * l + 1], v.reshape(-1, DH))
            query = q.reshape(B, KV_HEADS, HEADS // KV_HEADS, DH)
            s = (torch.matmul(query, kv[0].transpose(2, 3)) * DH ** -0.5).view(B, HEADS, keys)
            s = s.masked_fill(masked, float("-inf"))
            p = torch.softmax(s, -1, dtype=torch.float).to(torch.bfloat16)
            att = torch.matmul(p.view(B, KV_HEADS, HEADS // KV_HEADS, keys), kv[1]).reshape(B, -1)
        y = x + torch.nn.functional.linear(att, L["o"])
        h = rms_norm(y, L["n2"], variant)
        gu = torch.nn.functional.linear(h, L["gate_up"])
        x = y + torch.nn.functional.linear(torch.nn.functional.silu(gu[:, :INTER]) * gu[:, INTER:],
                                           L["down"])
    logits = torch.nn.functional.linear(rms_norm(x, layers[0]["n1"], "full"), lm_head)
    out.copy_(logits)


def time_graph(fn, reps=200):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    for _ in range(10):
        g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def time_copy(src, dst, reps=50):
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        dst.copy_(src, non_blocking=True)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", default="1,16,32")
    p.add_argument("--keys", type=int, default=256)
    a = p.parse_args()
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    layers, lm_head = make_weights(dev)
    embed = lm_head
    print("batch  variant    ms/step   (bf16 1B shape, keys %d, CUDA graph replay)" % a.keys)
    for B in [int(b) for b in a.batch.split(",")]:
        pool = torch.randn(B + 1, LAYERS, 2, KV_HEADS, a.keys, DH, device=dev).bfloat16()
        ids = torch.randint(0, VOCAB, (B,), device=dev)
        pos = torch.full((B,), a.keys // 2, device=dev, dtype=torch.long)
        rows = torch.arange(B, device=dev)
        out = torch.empty(B, VOCAB, device=dev, dtype=torch.float)
        state = (layers, lm_head, pool, ids, pos, rows, out, embed)
        for variant in ("full", "gemm", "no_attn", "no_norm", "no_rope"):
            ms = time_graph(lambda: step(state, variant))
            print("%5d  %-8s  %8.3f" % (B, variant, ms), flush=True)
        for dtype in (torch.float, torch.bfloat16):
            src = torch.randn(B, VOCAB, device=dev).to(dtype)
            dst = torch.empty(B, VOCAB, dtype=dtype, pin_memory=True)
            print("%5d  d2h %-8s %7.3f ms (%.1f MB)" % (B, str(dtype).split(".")[1],
                  time_copy(src, dst), src.numel() * src.element_size() / 1e6), flush=True)
        if B == 1:
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                step(state, "full")
                torch.cuda.synchronize()
            kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
            print("kernels in one eager full step: %d" % len(kernels))
            names = {}
            for e in kernels:
                names[e.name[:60]] = names.get(e.name[:60], 0) + 1
            for n, c in sorted(names.items(), key=lambda kv: -kv[1])[:25]:
                print("  %4d  %s" % (c, n))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The PyTorch way of doing what latent's kernels do, timed on the same GPU, written in the
Google Benchmark JSON shape so tools/bench_table.py can put each beside its latent kernel.

Each entry is named like the latent benchmark it is the baseline of, without the
"/manual_time" suffix that bench_table.py drops anyway (e.g. "BM_copy/67108864",
"BM_attention_fused_forward/128/4/32", "BM_layer_norm_fused/rows:6272/C:128"), and counts
bytes and FLOPs with the latent benchmark's formulas (tests/op_cases.h, bench/*_bench.cpp),
so the GB/s and TFLOP/s columns compare. Eager PyTorch, float32, CUDA events, warm-up first,
median of repeated runs. Each entry's "label" says what PyTorch call was timed.

The transformer prior's kernels (bench/attention_bench, cross_entropy_bench, layer_norm_bench,
embedding_bench):
  attention      F.scaled_dot_product_attention(q, k, v, is_causal=True), T = 49, at the
                 bench's (B, H, d): forward, and forward + backward (torch.autograd.grad of
                 q, k, v for a given dL/dout). Two layouts: q, k, v given as [B, H, T, d] (the
                 way SDPA is called; named exactly like the latent benchmark, so the table
                 pairs it), and from a packed qkv [B, T, 3C] through view/permute with the
                 output transposed back to [B, T, C] (what latent's op takes and returns;
                 name + "/packed_qkv", in the JSON only: bench_table.py pairs one entry a name).
  cross_entropy  F.cross_entropy at rows = 6272 and K = 256, 512, 1000, 4096: forward
                 (reduction="none": one loss a row, as the fused kernel writes), and forward +
                 backward of the mean through autograd (also written as
                 BM_cross_entropy_op_forward_backward: the op through its autograd).
  layer_norm     F.layer_norm at the bench's (rows, C): forward, and forward + backward of
                 x, weight and bias through autograd (BM_layer_norm_fused_backward).
  embedding      F.embedding forward at 6272 ids into a 1024 × 128 table; backward as autograd
                 runs it, torch.ops.aten.embedding_dense_backward (random ids, and every id the
                 same: BM_embedding_backward_hot).
  gelu           F.gelu (exact erf form) at the element counts of the element-wise entries, as
                 BM_unary_gelu/<n> (read 4, write 4 bytes an element).

Usage: torch_baselines.py [--quick] --out FILE.json
  --quick: only the sizes of tools/gpu-check's quick benchmark list (2^26 elements, every GEMM
  shape, the argmin shapes N = 65536 at K 1024/16384 and D 8/64/256 and N = 262144, K = 16384,
  D = 256, the training step; attention at (B, H, d) = (128, 4, 32) and (4096, 4, 32), cross
  entropy at K = 512 and 4096, layer norm at (6272, 128) and (65536, 1024), the embedding).

Checking without a GPU: torch_baselines.py --dry-run [--device cpu] [--out FILE.json] runs
each of the prior's entries (attention, cross_entropy, layer_norm, embedding, gelu) once, at
the smallest shape of each family, on the given device (e.g. the CPU build of torch in
.tools/torch-venv), timed by the wall clock; it catches API and shape errors, its times mean
nothing. Without --out it prints the entries.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def timed(fn, repeats=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1e-3)
    times.sort()
    return times[len(times) // 2]


def timed_once(fn, repeats=1):
    """--dry-run: one call, wall clock (any device); the time means nothing."""
    del repeats
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def entry(name, seconds, bytes_moved=0.0, flops=0.0, label="PyTorch eager"):
    e = {"name": name, "real_time": seconds * 1e6, "time_unit": "us", "label": label}
    if bytes_moved:
        e["bytes_per_second"] = bytes_moved / seconds
    if flops:
        e["FLOP/s"] = flops / seconds
    return e


# ---------------------------------------------------------------- the transformer prior's kernels
# Each function takes the device, the shapes and the timer (timed on a GPU, timed_once for
# --dry-run) and returns its entries. Shapes and byte/FLOP formulas are those of the latent
# benchmark named in each entry.

ATTENTION_TOKENS = 49  # bench/attention_bench's kTokens: a start token and a 7 x 7 grid
ATTENTION_SHAPES = [(128, 4, 32), (128, 8, 64), (512, 4, 32), (4096, 4, 32)]  # (B, H, d)
ATTENTION_QUICK = [(128, 4, 32), (4096, 4, 32)]
CROSS_ENTROPY_ROWS = 6272  # cases::kCrossEntropyBenchRows
CROSS_ENTROPY_CLASSES = [256, 512, 1000, 4096]  # cases::cross_entropy_bench_classes()
CROSS_ENTROPY_QUICK = [512, 4096]
LAYER_NORM_SHAPES = [(6272, 128), (6272, 256), (6272, 512), (65536, 1024)]  # (rows, C)
LAYER_NORM_QUICK = [(6272, 128), (65536, 1024)]
LAYER_NORM_EPS = 1e-5
EMBEDDING_SHAPE = (6272, 1024, 128)  # cases::embedding_bench_shape(): rows, V, C


def attention_entries(dev, shapes, timer):
    t = ATTENTION_TOKENS
    out = []
    for b, h, d in shapes:
        c = h * d
        # bench/attention_bench: forward_bytes, backward_bytes, head_flops (2x forward, 7x both)
        fwd_bytes = 4.0 * b * t * (3 * c + c + h)
        bwd_bytes = 4.0 * b * t * (3 * c * 2 + 2 * c + h)
        head_flops = float(b * h) * t * (t + 1) / 2.0 * d * 2.0
        size = f"{b}/{h}/{d}"
        # q, k, v as SDPA takes them: [B, H, T, d], contiguous.
        q, k, v = (torch.rand(b, h, t, d, device=dev) * 4 - 2 for _ in range(3))
        g = torch.rand(b, h, t, d, device=dev) * 2 - 1
        label = "PyTorch eager: F.scaled_dot_product_attention(is_causal=True), q/k/v [B, H, T, d] given"
        with torch.no_grad():
            seconds = timer(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
        out.append(entry(f"BM_attention_fused_forward/{size}", seconds, fwd_bytes,
                         2 * head_flops, label))
        leaves = [x.detach().requires_grad_() for x in (q, k, v)]

        def bhtd_forward_backward():
            o = F.scaled_dot_product_attention(*leaves, is_causal=True)
            return torch.autograd.grad(o, leaves, g)

        out.append(entry(f"BM_attention_fused_forward_backward/{size}",
                         timer(bhtd_forward_backward), fwd_bytes + bwd_bytes, 7 * head_flops,
                         label + "; backward by torch.autograd.grad"))
        # From a packed qkv [B, T, 3C] (latent's input: token t's queries of every head, then
        # its keys, then its values) to out [B, T, C] (heads side by side, latent's output).
        qkv = torch.rand(b, t, 3 * c, device=dev) * 4 - 2
        dout = torch.rand(b, t, c, device=dev) * 2 - 1

        def packed(x):
            qp, kp, vp = x.view(b, t, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
            o = F.scaled_dot_product_attention(qp, kp, vp, is_causal=True)
            return o.transpose(1, 2).reshape(b, t, c)

        label = ("PyTorch eager: F.scaled_dot_product_attention(is_causal=True) from packed qkv "
                 "[B, T, 3C] (view/permute in, transpose/reshape to [B, T, C] out)")
        with torch.no_grad():
            seconds = timer(lambda: packed(qkv))
        out.append(entry(f"BM_attention_fused_forward/{size}/packed_qkv", seconds, fwd_bytes,
                         2 * head_flops, label))
        leaf = qkv.detach().requires_grad_()
        seconds = timer(lambda: torch.autograd.grad(packed(leaf), leaf, dout))
        out.append(entry(f"BM_attention_fused_forward_backward/{size}/packed_qkv", seconds,
                         fwd_bytes + bwd_bytes, 7 * head_flops,
                         label + "; backward by torch.autograd.grad"))
    return out


def cross_entropy_entries(dev, classes, timer):
    rows = CROSS_ENTROPY_ROWS
    out = []
    for k in classes:
        n = float(rows) * k
        # cases::cross_entropy_forward / cross_entropy_backward (float32, int32 targets)
        fwd_bytes = 4.0 * (n + 3.0 * rows) + 4.0 * rows
        bwd_bytes = 4.0 * (2.0 * n + 3.0 * rows) + 4.0 * rows
        logits = torch.randn(rows, k, device=dev) * 2
        targets = torch.randint(k, (rows,), device=dev)  # int64: what F.cross_entropy takes
        with torch.no_grad():
            seconds = timer(lambda: F.cross_entropy(logits, targets, reduction="none"))
        out.append(entry(f"BM_cross_entropy_fused_forward/{k}", seconds, fwd_bytes,
                         label="PyTorch eager: F.cross_entropy(reduction='none')"))
        x = logits.detach().requires_grad_()
        seconds = timer(lambda: torch.autograd.grad(F.cross_entropy(x, targets), x))
        label = "PyTorch eager: F.cross_entropy (mean), backward by torch.autograd.grad"
        for name in ("fused_forward_backward", "op_forward_backward"):
            out.append(entry(f"BM_cross_entropy_{name}/{k}", seconds, fwd_bytes + bwd_bytes,
                             label=label))
    return out


def layer_norm_entries(dev, shapes, timer):
    out = []
    for rows, c in shapes:
        n = float(rows) * c
        # cases::layer_norm_forward / layer_norm_backward (float32)
        fwd_bytes, fwd_flops = 4.0 * (2.0 * n + 2.0 * rows + 2.0 * c), 12.0 * n
        bwd_bytes, bwd_flops = 4.0 * (3.0 * n + 2.0 * rows + 3.0 * c), 15.0 * n
        x = torch.randn(rows, c, device=dev)
        weight = torch.rand(c, device=dev) + 0.5
        bias = torch.rand(c, device=dev) - 0.5
        g = torch.randn(rows, c, device=dev)
        size = f"rows:{rows}/C:{c}"
        with torch.no_grad():
            seconds = timer(lambda: F.layer_norm(x, (c,), weight, bias, LAYER_NORM_EPS))
        out.append(entry(f"BM_layer_norm_fused/{size}", seconds, fwd_bytes, fwd_flops,
                         "PyTorch eager: F.layer_norm"))
        leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]

        def forward_backward():
            y = F.layer_norm(leaves[0], (c,), leaves[1], leaves[2], LAYER_NORM_EPS)
            return torch.autograd.grad(y, leaves, g)

        out.append(entry(f"BM_layer_norm_fused_backward/{size}", timer(forward_backward),
                         fwd_bytes + bwd_bytes, fwd_flops + bwd_flops,
                         "PyTorch eager: F.layer_norm, backward of x, weight, bias by "
                         "torch.autograd.grad"))
    return out


def embedding_entries(dev, timer):
    rows, v, c = EMBEDDING_SHAPE
    # cases::embedding_forward / embedding_backward (float32, int32 ids)
    fwd_bytes = 4.0 * rows + 4.0 * (2.0 * rows * c)
    bwd_bytes = 4.0 * rows + 4.0 * (float(rows) * c + float(v) * c)
    table = torch.randn(v, c, device=dev)
    ids = torch.randint(v, (rows,), device=dev)  # int64, as users make them
    dout = torch.randn(rows, c, device=dev)
    with torch.no_grad():
        seconds = timer(lambda: F.embedding(ids, table))
    out = [entry("BM_embedding_forward", seconds, fwd_bytes, label="PyTorch eager: F.embedding")]
    hot = torch.full((rows,), 7, dtype=torch.int64, device=dev)
    for name, which in (("backward", ids), ("backward_hot", hot)):
        # What autograd runs for F.embedding's weight gradient (dense, padding_idx = -1).
        seconds = timer(lambda: torch.ops.aten.embedding_dense_backward(dout, which, v, -1, False))
        out.append(entry(f"BM_embedding_{name}", seconds, bwd_bytes,
                         label="PyTorch eager: aten.embedding_dense_backward (F.embedding's "
                               "backward)" + (", every id the same" if name == "backward_hot" else "")))
    return out


def gelu_entry(dev, n, timer):
    x = torch.randn(n, device=dev)
    with torch.no_grad():
        seconds = timer(lambda: F.gelu(x))
    return entry(f"BM_unary_gelu/{n}", seconds, 8.0 * n, label="PyTorch eager: F.gelu (erf)")


def prior_entries(dev, quick, timer):
    """The transformer prior's kernels but GELU (main() times that with the element-wise ones)."""
    return (attention_entries(dev, ATTENTION_QUICK if quick else ATTENTION_SHAPES, timer)
            + cross_entropy_entries(dev, CROSS_ENTROPY_QUICK if quick else CROSS_ENTROPY_CLASSES,
                                    timer)
            + layer_norm_entries(dev, LAYER_NORM_QUICK if quick else LAYER_NORM_SHAPES, timer)
            + embedding_entries(dev, timer))


def dry_run(dev, out_path):
    """Each of the prior's entries once, at the smallest shape of its family."""
    out = (attention_entries(dev, ATTENTION_SHAPES[:1], timed_once)
           + cross_entropy_entries(dev, CROSS_ENTROPY_CLASSES[:1], timed_once)
           + layer_norm_entries(dev, LAYER_NORM_SHAPES[:1], timed_once)
           + embedding_entries(dev, timed_once)
           + [gelu_entry(dev, 1 << 16, timed_once)])
    if out_path:
        write(out_path, out)
    else:
        print(json.dumps(out, indent=1))
    print(f"torch_baselines: dry run on {dev}: {len(out)} entries ran", file=sys.stderr)


def write(path, out):
    with open(path, "w") as f:
        json.dump({"context": {"library": "torch " + torch.__version__}, "benchmarks": out}, f, indent=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--quick", action="store_true", help="only gpu-check's quick sizes")
    parser.add_argument("--dry-run", action="store_true",
                        help="the prior's entries once each, smallest shapes (see the docstring)")
    parser.add_argument("--device", default="cuda", help="with --dry-run: e.g. cpu")
    args = parser.parse_args()
    if args.dry_run:
        dry_run(torch.device(args.device), args.out)
        return
    if not args.out:
        parser.error("--out is required")
    if args.device != "cuda":
        parser.error("--device: only with --dry-run (the baselines are timed on the GPU)")
    dev = torch.device("cuda")
    out = []
    for log2 in (26,) if args.quick else range(16, 27, 2):
        n = 1 << log2
        x = torch.rand(n, device=dev)
        y = torch.empty_like(x)
        out.append(entry(f"BM_copy/{n}", timed(lambda: y.copy_(x)), 8.0 * n))
        out.append(entry(f"BM_unary_exp/{n}", timed(lambda: torch.exp(x, out=y)), 8.0 * n))
        z = torch.rand(n, device=dev)
        out.append(entry(f"BM_binary_add/{n}", timed(lambda: torch.add(x, z, out=y)), 12.0 * n))
        out.append(entry(f"BM_sum_all/{n}", timed(lambda: x.sum()), 4.0 * n))
        # AdamW on one parameter of n elements (foreach off: one parameter anyway).
        p = torch.nn.Parameter(torch.rand(n, device=dev))
        p.grad = torch.rand(n, device=dev)
        opt = torch.optim.AdamW([p], lr=1e-3, fused=True)
        out.append(entry(f"BM_adamw_fused/{n}", timed(opt.step), 28.0 * n))
        # Reparameterization + KL, the eager composition.
        mu, logvar = torch.rand(n, device=dev), torch.rand(n, device=dev)

        def reparam_kl():
            eps = torch.randn_like(mu)
            z = mu + torch.exp(0.5 * logvar) * eps
            kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum()
            return z, kl

        out.append(entry(f"BM_reparam_kl_fused_forward/{n}", timed(reparam_kl), 12.0 * n))
        # The Philox fills of bench/random_bench (torch's own generator: same job, other bits).
        out.append(entry(f"BM_random_uniform/{n}", timed(lambda: y.uniform_()), 4.0 * n))
        out.append(entry(f"BM_random_normal/{n}", timed(lambda: y.normal_()), 4.0 * n))
        out.append(gelu_entry(dev, n, timed))
    # GEMM at bench/gemm_bench's shapes (cases::gemm_bench_shapes in tests/op_cases.h).
    for m, k, n in ((128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
                    (6272, 512, 64)):
        a, b = torch.randn(m, k, device=dev), torch.randn(k, n, device=dev)
        out.append(entry(f"BM_gemm_forward/M:{m}/K:{k}/N:{n}", timed(lambda: a @ b),
                         4.0 * (m * k + k * n + m * n), 2.0 * m * n * k))
    # The transformer prior's kernels: attention, cross-entropy, layer norm, embedding.
    out += prior_entries(dev, args.quick, timed)
    write(args.out, out)  # what is done so far, should the time limit stop the rest
    # Nearest-codebook argmin: cdist + argmin (forms the N x K matrix).
    # Sizes of bench/vq_bench's GPU suite.
    shapes = [(n, k, d) for n in (4096, 65536, 262144) for k in (512, 1024, 8192, 16384)
              for d in (8, 32, 64, 256)]
    if args.quick:
        shapes = [(65536, k, d) for k in (1024, 16384) for d in (8, 64, 256)] + [(262144, 16384, 256)]
    for n, k, d in shapes:
        zq = torch.rand(n, d, device=dev)
        codebook = torch.rand(k, d, device=dev)
        seconds = timed(lambda: torch.cdist(zq, codebook).argmin(dim=1), repeats=5)
        out.append(entry(f"BM_vq_argmin_fused/N:{n}/K:{k}/D:{d}", seconds,
                         4.0 * (n + k) * d, 2.0 * n * k * d))
    write(args.out, out)
    # One training step of the same autoencoder (batch 256).
    enc = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 4, 2, 1), torch.nn.SiLU(), torch.nn.Conv2d(32, 64, 4, 2, 1),
        torch.nn.SiLU(), torch.nn.Conv2d(64, 4, 3, 1, 1))
    dec = torch.nn.Sequential(
        torch.nn.Conv2d(4, 64, 3, 1, 1), torch.nn.SiLU(), torch.nn.ConvTranspose2d(64, 32, 4, 2, 1),
        torch.nn.SiLU(), torch.nn.ConvTranspose2d(32, 1, 4, 2, 1))
    model = torch.nn.Sequential(enc, dec).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    images = torch.rand(256, 1, 28, 28, device=dev)

    def step():
        loss = torch.nn.functional.mse_loss(torch.sigmoid(model(images)), images)
        opt.zero_grad()
        loss.backward()
        opt.step()

    seconds = timed(step)
    e = entry("BM_train_step_ae/256", seconds)
    e["images/s"] = 256 / seconds
    out.append(e)
    write(args.out, out)


if __name__ == "__main__":
    main()

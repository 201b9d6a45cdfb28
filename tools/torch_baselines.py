#!/usr/bin/env python3
"""The PyTorch way of doing what latent's kernels do, timed on the same GPU, written in the
Google Benchmark JSON shape so tools/bench_table.py can put each beside its latent kernel.

Each entry is named like the latent benchmark it is the baseline of (e.g. "BM_copy/67108864").
Eager PyTorch, float32, CUDA events, warm-up first, median of repeated runs.

Usage: torch_baselines.py [--quick] --out FILE.json
  --quick: only the sizes of tools/gpu-check's quick benchmark list (2^26 elements, every GEMM
  shape, the argmin shapes N = 65536 at K 1024/16384 and D 8/64/256 and N = 262144, K = 16384,
  D = 256, the training step).
"""
import argparse
import json

import torch


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


def entry(name, seconds, bytes_moved=0.0, flops=0.0):
    e = {"name": name, "real_time": seconds * 1e6, "time_unit": "us", "label": "PyTorch eager"}
    if bytes_moved:
        e["bytes_per_second"] = bytes_moved / seconds
    if flops:
        e["FLOP/s"] = flops / seconds
    return e


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true", help="only gpu-check's quick sizes")
    args = parser.parse_args()
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
    # GEMM at bench/gemm_bench's shapes (cases::gemm_bench_shapes in tests/op_cases.h).
    for m, k, n in ((128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
                    (6272, 512, 64)):
        a, b = torch.randn(m, k, device=dev), torch.randn(k, n, device=dev)
        out.append(entry(f"BM_gemm_forward/M:{m}/K:{k}/N:{n}", timed(lambda: a @ b),
                         4.0 * (m * k + k * n + m * n), 2.0 * m * n * k))
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
    with open(args.out, "w") as f:
        json.dump({"context": {"library": "torch " + torch.__version__}, "benchmarks": out}, f, indent=1)


if __name__ == "__main__":
    main()

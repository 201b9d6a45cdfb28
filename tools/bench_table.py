#!/usr/bin/env python3
"""Turns a folder of Google Benchmark JSON files (and tools/torch_baselines.py output) into
one markdown table: device, kernel, size, time, GB/s or TFLOP/s, % of the measured copy
bandwidth, baseline and speed-up.

The copy bandwidth is the best bytes/s of BM_copy (a device-to-device copy) at its largest
size. A benchmark's baseline is the benchmark of the same binary and argument whose name
marks it as the alternative (unfused, naive, cublas, atomic, composition) or, for PyTorch, the
torch/ entry with the same kernel name and size. The binaries are bench/<family>_bench, one per
kernel family (adam, conv, elementwise, fsq, gemm, random, reduce, train_step, vae, vq); "gemm"
names a family (bench/gemm_bench), not a baseline.

Usage: bench_table.py RESULTS_DIR > RESULTS_DIR/README.md
"""
import json
import os
import re
import sys

BASELINE_MARKERS = ("unfused", "naive", "cublas", "atomic", "composition", "baseline")
# Words that name a variant rather than the operation: "vq_argmin_fused" and
# "vq_argmin_cublas" are the same operation, "reparam_kl_fused_forward" and
# "reparam_kl_unfused_forward" too.
VARIANT_WORDS = set(BASELINE_MARKERS) | {"fused", "tiled", "shared", "sorted", "deterministic"}


def operation(kernel):
    return "_".join(w for w in kernel.split("_") if w not in VARIANT_WORDS)


def load(folder):
    rows, context = [], {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(folder, name)) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError:
                continue
        context = data.get("context", context)
        for b in data.get("benchmarks", []):
            if b.get("run_type") == "aggregate" or b.get("error_occurred") or not b.get("real_time"):
                continue
            rows.append(dict(b, file=name))
    return rows, context


def split_name(full):
    """'latent::bench::BM_adamw_fused/65536/manual_time' -> ('adamw_fused', '65536')."""
    parts = full.split("/")
    kernel = re.sub(r"^.*::", "", parts[0])
    kernel = re.sub(r"^BM_", "", kernel)
    args = [p for p in parts[1:] if not p.endswith("_time") and not p.startswith("threads:")]
    return kernel, "/".join(args)


def seconds(b):
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def main():
    folder = sys.argv[1]
    rows, context = load(folder)
    copy = [b for b in rows if split_name(b["name"])[0] == "copy"]
    largest = max(copy, key=lambda b: int(split_name(b["name"])[1] or 0), default=None)
    copy_bw = largest.get("bytes_per_second", 0) if largest else 0
    by_key = {}
    for b in rows:
        kernel, size = split_name(b["name"])
        by_key[(b["file"], kernel, size)] = b
    print(f"# GPU results: {context.get('date', '')}\n")
    print(f"Host: {context.get('host_name', '?')}; {context.get('num_cpus', '?')} CPUs. "
          f"Measured device-to-device copy: {copy_bw / 1e9:.0f} GB/s (bytes read + written).\n")
    print("| device | kernel | size | time | GB/s | TFLOP/s | % of copy | baseline | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for b in rows:
        kernel, size = split_name(b["name"])
        if any(m in kernel.split("_") for m in BASELINE_MARKERS) or b["file"].startswith("torch"):
            continue
        t = seconds(b)
        bw = b.get("bytes_per_second", 0)
        flops = b.get("FLOP/s", 0)
        baseline = None
        for (file, other, other_size), candidate in by_key.items():
            # The same name in the same file is this row itself; in a torch file it is its
            # PyTorch twin.
            if other_size != size or (other == kernel and file == b["file"]):
                continue
            same_family = (file == b["file"] and operation(other) == operation(kernel)
                           and any(m in other.split("_") for m in BASELINE_MARKERS))
            torch_twin = file.startswith("torch") and other == kernel
            if same_family or torch_twin:
                if baseline is None or seconds(candidate) < seconds(baseline):
                    baseline = candidate
        base_name = split_name(baseline["name"])[0] if baseline else ""
        if baseline and baseline["file"].startswith("torch"):
            base_name = "PyTorch " + base_name
        speedup = f"{seconds(baseline) / t:.2f}x" if baseline else ""
        pct = f"{100 * bw / copy_bw:.0f} %" if bw and copy_bw else ""
        print(f"| {b.get('label', '')} | {kernel} | {size} | {t * 1e6:.1f} us | "
              f"{bw / 1e9:.1f} | {flops / 1e12:.2f} | {pct} | {base_name} | {speedup} |"
              .replace("| 0.0 |", "|  |").replace("| 0.00 |", "|  |"))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Instructions per 8-deep slice of the fused argmin's main loop, from its sm_90 SASS.

The measure of docs/vq.md ("The machine code"): the instructions one code tile of
S = ceil(D / 8) slices executes, its fold included, divided by S, and the share of them that
are FFMA. Counted on the path a tile takes when another tile follows it and all 128 of its
codes exist (the steady state), every instruction on the path once (a predicated instruction
counts whether or not it runs).

How the path is found, for any loop shape: the tile loop is the loop around the kernel's
main loop (tools/kernel_report.py's innermost loop that loads from global memory); the paths
through one iteration of it are enumerated with the back edges of inner loops removed, each
inner loop's body counted once per iteration. A path serves a tile of S slices when its
barriers (one per slice) plus whole iterations of the inner loop it enters make S. Of the
paths that do, the one with the most shared stores (the next tile's first slice is stored)
and the fewest global loads (a whole tile's norms are two 16-byte loads) is the steady state.

  tools/vq_argmin_sass.py                 compile src/backends/cuda/vq.cu (kernel-report's
                                          flags) and print the table for every float instance
  tools/vq_argmin_sass.py --sass FILE     read an nvdisasm listing instead of compiling
  tools/kernel-report prints the same table for the float4 path under its main table.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_report as kr  # noqa: E402

DEPTHS = (8, 24, 32, 40, 64, 72, 128, 136, 256)
KERNEL = "vq_argmin_tiled_kernel"


def blocks(instrs, labels):
    """Basic blocks: [(start, end_index_exclusive)], plus successors by block index."""
    addr_to_i = {a: i for i, (a, _, _) in enumerate(instrs)}
    leaders = {0} | {addr_to_i[a] for a in labels.values() if a in addr_to_i}
    for i, (_, op, _) in enumerate(instrs):
        if op.startswith(("BRA", "EXIT", "RET")) and i + 1 < len(instrs):
            leaders.add(i + 1)
    starts = sorted(leaders)
    bl = [(s, starts[k + 1] if k + 1 < len(starts) else len(instrs)) for k, s in enumerate(starts)]
    start_to_b = {s: k for k, (s, _) in enumerate(bl)}
    succ = []
    for k, (s, e) in enumerate(bl):
        a, op, body = instrs[e - 1]
        out = []
        conditional = body.startswith("@")
        if op.startswith("BRA"):
            m = re.search(r"`\((\.L_x_\d+)\)", body)
            if m and m.group(1) in labels:
                out.append(start_to_b[addr_to_i[labels[m.group(1)]]])
            if conditional and k + 1 < len(bl):
                out.append(k + 1)
        elif op.startswith(("EXIT", "RET")):
            if conditional and k + 1 < len(bl):
                out.append(k + 1)
        elif k + 1 < len(bl):
            out.append(k + 1)
        succ.append(out)
    return bl, succ


def count(instrs, idx):
    ops = [instrs[i][1] for i in idx if instrs[i][1] != "NOP"]
    return dict(n=len(ops), ffma=sum(op.startswith("FFMA") for op in ops),
                bar=sum(op.startswith("BAR") for op in ops),
                sts=sum(op.startswith("STS") for op in ops),
                ldg=sum(op.startswith("LDG") for op in ops))


def extra_barriers(instrs, idx):
    """Barriers that end no slice: a barrier with no FFMA since the barrier before it on the
    path (the odd-S tile's last slice stores the next tile's first slice in place, behind a
    second barrier)."""
    extra, seen_bar, ffma_since = 0, False, False
    for i in idx:
        op = instrs[i][1]
        if op.startswith("FFMA"):
            ffma_since = True
        elif op.startswith("BAR"):
            if seen_bar and not ffma_since:
                extra += 1
            seen_bar, ffma_since = True, False
    return extra


def tile_paths(f):
    """Every path through one iteration of each tile loop: its counts and the inner loop it
    enters (None, or that loop's counts)."""
    instrs, labels = f["instrs"], f["labels"]
    addr = [a for a, _, _ in instrs]
    ls = sorted(set(kr.loops(f)))

    def has(l, prefix):
        return any(op.startswith(prefix) for a, op, _ in instrs if l[0] <= a <= l[1])

    inside = lambda l, o: o != l and o[0] <= l[0] and l[1] <= o[1]
    with_bar = [l for l in ls if has(l, "BAR") and has(l, "LDG")]
    tiles = [l for l in with_bar if not any(inside(l, o) for o in with_bar)]
    bl, succ = blocks(instrs, labels)
    first = lambda b: addr[bl[b][0]]
    last = lambda b: addr[bl[b][1] - 1]
    paths = []
    for th, tt in tiles:
        inner = {h: count(instrs, [i for i, a in enumerate(addr) if h <= a <= t])
                 for h, t in ls if inside((h, t), (th, tt))}
        b0 = next(b for b in range(len(bl)) if first(b) == th)

        def walk(b, seen, enters):
            seen = seen + [b]
            if last(b) == tt:  # the tile loop's back edge: one iteration done
                idx = [i for k in seen for i in range(*bl[k])]
                c = count(instrs, idx)
                c["extra"] = extra_barriers(instrs, idx)
                c["inner"] = inner[enters] if enters is not None else None
                paths.append(c)
                return
            for s in succ[b]:
                if first(s) <= last(b):  # an inner back edge: its body is counted once
                    continue
                if first(s) > tt or first(s) < th:
                    continue
                walk(s, seen, first(s) if first(s) in inner else enters)
        walk(b0, [], None)
    return paths


def per_slice(paths, depth):
    """Instructions and FFMA per slice for a tile of S = ceil(depth / 8) slices: the path whose
    barriers (less its extra ones) and inner-loop iterations make S; where several do, the one whose inner loop
    takes the most slices per iteration (the kernel's dispatch: its two-slice loop for even S),
    then the most shared stores and the fewest global loads."""
    s = -(-depth // 8)
    best = None
    for p in paths:
        loop = p["inner"]
        slices = p["bar"] - p["extra"]
        if loop:
            rest = s - slices
            if rest < 0 or rest % loop["bar"]:
                continue
            reps, step = rest // loop["bar"], loop["bar"]
        else:
            if slices != s:
                continue
            reps, step = 0, 0
        key = (-step, -p["sts"], p["ldg"])
        if best is None or key < best[0]:
            best = (key, p, reps)
    if best is None:
        return None
    _, p, reps = best
    loop = p["inner"] or dict(n=0, ffma=0, bar=1)
    n = p["n"] + reps * loop["n"]
    ffma = p["ffma"] + reps * loop["ffma"]
    return dict(per_slice=n / s, ffma_share=ffma / n, loop=loop)


def analyse(f):
    paths = tile_paths(f)
    if not paths:
        return None
    rows = {d: per_slice(paths, d) for d in DEPTHS}
    return dict(rows=rows)


def kernels(sass_text):
    funcs = kr.parse_sass(sass_text)
    names = kr.demangle([m for m in funcs if KERNEL in m])
    out = []
    for mangled, short in sorted((m, kr.short_name(d)) for m, d in names.items()):
        if short.startswith(KERNEL + "<float"):
            out.append((short, analyse(funcs[mangled])))
    return out


def table(results):
    lines = ["| instance | inner loop per slice (D = 256) | " +
             " | ".join(f"D = {d}: instr / slice, FFMA" for d in DEPTHS) + " |",
             "| --- | --- | " + " | ".join("---" for _ in DEPTHS) + " |"]
    for short, r in results:
        if r is None:
            lines.append(f"| `{short}` | no tile loop found |" + " |" * len(DEPTHS))
            continue
        lp = next((x["loop"] for x in (r["rows"][d] for d in reversed(DEPTHS))
                   if x and x["loop"]["n"]), dict(n=0, ffma=0, bar=1))
        cells = []
        for d in DEPTHS:
            x = r["rows"][d]
            cells.append("–" if x is None else f"{x['per_slice']:.0f}, {100 * x['ffma_share']:.1f} %")
        lines.append(f"| `{short}` | {lp['n'] / lp['bar']:.0f} ({lp['ffma'] / lp['bar']:.0f} FFMA) | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sass", help="an nvdisasm listing of vq.cu's cubin")
    args = ap.parse_args()
    if args.sass:
        text = open(args.sass).read()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cubin = os.path.join(tmp, "vq.cubin")
            src = os.path.join(kr.ROOT, "src", "backends", "cuda", "vq.cu")
            r = subprocess.run([kr.NVCC, *kr.FLAGS, "-o", cubin, src], capture_output=True,
                               text=True)
            if r.returncode != 0:
                sys.exit(f"vq_argmin_sass: nvcc failed:\n{r.stderr}")
            text = subprocess.run([kr.tool("nvdisasm"), "-c", cubin], capture_output=True,
                                  text=True, check=True).stdout
    print(table(kernels(text)))


if __name__ == "__main__":
    main()

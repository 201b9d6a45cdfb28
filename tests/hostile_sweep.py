#!/usr/bin/env python3
"""Hostile-input sweep of the `latent` command-line tool.

Builds about 1200 hostile inputs -- malformed .npy arrays, token files, safetensors
checkpoints, PNG images, IDX datasets and option values -- each in its own directory under
a temporary folder, runs `latent` on every one with a timeout and an address-space cap,
and sorts the outcomes:

  clean error     non-zero exit and a message naming the problem (a line with "error", or
                  CLI11's "Run with --help for more information.")
  crash           killed by a signal, exit status >= 128, "terminate called", a sanitizer
                  report, or std::bad_alloc (an allocation the input asked for, refused by
                  the cap instead of swapping)
  hang            the timeout expired (the whole process group is killed)
  silent          exit 0 where the case expects an error
  accepted        exit 0 where the case accepts any outcome (random mutations, edge cases
                  such as empty arrays) or for a valid control
  memory hog      any other outcome, but the peak resident memory passed --rss-mb (1024 MB
                  by default): no case here needs that much, so a small file made latent
                  allocate and touch memory its size does not justify
  unclear error   non-zero exit without such a message (listed, not a failure)
  control failed  a valid control ("ok") did not exit 0

The checkpoints the cases start from come from real `latent train` runs of the binary under
test on a small synthetic Fashion-MNIST-like IDX dataset (64 train and 16 test images)
written here, so one case list serves every build, older ones included. A case whose option
does not exist in an older build simply counts as what it produces (a CLI11 error). Random
mutations draw from fixed seeds, so every run tries the same cases.

Usage:
  python3 tests/hostile_sweep.py --latent build/tools/latent [--timeout 20] [--jobs 2]
      [--json out.json] [--list] [--only SUBSTRING] [--keep DIR] [--memory-gb 4]
      [--rss-mb 1024]

  --list     print every case (family, name, expectation, command) and exit; it still trains
             the fixture checkpoints, since the checkpoint cases are made from them
  --only     run only the cases whose name contains SUBSTRING
  --keep     build the cases in DIR and keep them, so a listed command can be rerun by hand

Exit status: 1 if any case crashed, hung, succeeded silently or hogged memory, or a control
failed; else 0.
Standard library only. The binary runs with OMP_NUM_THREADS=1 (unless set) so that --jobs
processes share the cores, and with LATENT_FASHION_MNIST_DIR pointing at the synthetic data.
"""

import argparse
import collections
import concurrent.futures
import gzip
import hashlib
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

# ============================================================== cases and their outcomes

ERROR, ANY, OK = "error", "any", "ok"

OUTCOMES = ["clean error", "crash", "hang", "silent", "accepted", "memory hog",
            "unclear error", "control failed"]
FAILURES = ("crash", "hang", "silent", "memory hog", "control failed")

SANITIZER_REPORT = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|ThreadSanitizer")
CLI11_FOOTER = "Run with --help for more information."


@dataclass
class Case:
    family: str
    name: str
    expect: str  # ERROR, ANY or OK
    args: list  # the arguments after the binary; relative paths are inside the case directory
    files: dict = field(default_factory=dict)  # relative path -> bytes, or None for a folder


def classify(expect, returncode, timed_out, output, peak_mb=0, rss_limit_mb=0):
    """The outcome of one run (see the module docstring)."""
    if timed_out:
        return "hang"
    if (returncode < 0 or returncode >= 128 or SANITIZER_REPORT.search(output)
            or "terminate called" in output or "bad_alloc" in output):
        return "crash"
    if rss_limit_mb and peak_mb > rss_limit_mb:
        return "memory hog"
    if returncode == 0:
        return "silent" if expect == ERROR else "accepted"
    if expect == OK:
        return "control failed"
    if re.search("error", output, re.IGNORECASE) or CLI11_FOOTER in output:
        return "clean error"
    return "unclear error"


def last_line(output):
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def message(output):
    """The first line that names an error, else the first line (CLI11's message)."""
    lines = [line for line in output.splitlines() if line.strip()]
    return next((line for line in lines if re.search("error", line, re.IGNORECASE)),
                lines[0] if lines else "")


# ============================================================== file formats

# ---------------------------------------------------------------- .npy

NPY_MAGIC = b"\x93NUMPY"
STRUCT_CODES = {"f4": "f", "f8": "d", "i4": "i", "i8": "q", "u1": "B"}


def shape_literal(shape):
    """A Python tuple literal, as NumPy writes it: (4,) for one dimension."""
    inner = ", ".join(str(d) for d in shape)
    return "(" + inner + ("," if len(shape) == 1 else "") + ")"


def npy_header(descr="'<f4'", fortran_order="False", shape="(4,)", **extra):
    """The header dict literal; a field given as None is left out, `extra` adds fields."""
    fields = {"descr": descr, "fortran_order": fortran_order, "shape": shape, **extra}
    return "{" + ", ".join(f"'{k}': {v}" for k, v in fields.items() if v is not None) + ", }"


def npy_file(header, data, version=1, header_length=None, align=True):
    """A .npy file from its header text and raw data; `header_length` may lie."""
    text = header.encode("latin-1") if isinstance(header, str) else header
    prefix_bytes = 10 if version == 1 else 12
    if align:  # pad with spaces and a newline so the data starts 64-byte aligned
        unpadded = prefix_bytes + len(text) + 1
        text += b" " * ((64 - unpadded % 64) % 64) + b"\n"
    length = len(text) if header_length is None else header_length
    length_field = struct.pack("<H" if version == 1 else "<I", length)
    return NPY_MAGIC + bytes([version, 0]) + length_field + text + data


@dataclass
class Array:
    """A small array: its NumPy descr ('<f4', '<i4', ...), shape and flat values."""
    descr: str
    shape: tuple
    values: list

    def data(self, byte_order="<"):
        code = STRUCT_CODES[self.descr[1:]]
        return struct.pack(f"{byte_order}{len(self.values)}{code}", *self.values)

    def header(self, **fields):
        base = {"descr": repr(self.descr), "shape": shape_literal(self.shape)}
        return npy_header(**{**base, **fields})

    def npy(self, **kwargs):
        return npy_file(self.header(), self.data(), **kwargs)

    def with_values(self, values):
        return Array(self.descr, self.shape, list(values))

    def reshaped(self, shape):
        return Array(self.descr, tuple(shape), self.values)

    def as_descr(self, descr):
        convert = float if descr[1] == "f" else int
        return Array(descr, self.shape, [convert(v) for v in self.values])


def numel(shape):
    return math.prod(shape)


def floats(shape, scale=1.0, descr="<f4"):
    """Deterministic values in [-scale, scale]."""
    return Array(descr, tuple(shape),
                 [round(scale * math.sin(1.7 * i + 0.3), 4) for i in range(numel(shape))])


def ints(shape, values):
    return Array("<i4", tuple(shape), list(values))


# ---------------------------------------------------------------- safetensors

class Safetensors:
    """A parsed safetensors file: its header dict (in file order) and data section."""

    def __init__(self, blob):
        length = struct.unpack("<Q", blob[:8])[0]
        self.header = json.loads(blob[8:8 + length])
        self.data = blob[8 + length:]

    def names(self):
        """Tensor names in data order."""
        entries = [k for k in self.header if k != "__metadata__"]
        return sorted(entries, key=lambda k: self.header[k]["data_offsets"])

    def raw(self, name):
        begin, end = self.header[name]["data_offsets"]
        return self.data[begin:end]

    def metadata(self):
        return dict(self.header.get("__metadata__", {}))

    def config(self):
        return json.loads(self.metadata()["config"])

    # Variants. Each returns the bytes of a new file; the parsed object is left unchanged.

    def pack(self, header=None, data=None):
        return safetensors_file(json.dumps(self.header if header is None else header),
                                self.data if data is None else data)

    def with_entry(self, name, **fields):
        """One tensor's header entry changed in place (offsets kept unless given)."""
        header = json.loads(json.dumps(self.header))
        for key, value in fields.items():
            if value is None:
                header[name].pop(key, None)
            else:
                header[name][key] = value
        return self.pack(header)

    def with_metadata(self, **values):
        """Metadata keys replaced (None removes one); the metadata may become any JSON."""
        header = json.loads(json.dumps(self.header))
        meta = header.setdefault("__metadata__", {})
        for key, value in values.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        return self.pack(header)

    def with_config(self, edit):
        """The config metadata after edit(config dict) -> dict (or a string: the raw text)."""
        config = edit(self.config())
        text = config if isinstance(config, str) else json.dumps(config, separators=(",", ":"))
        return self.with_metadata(config=text)

    def relayout(self, drop=(), replace=None, add=None):
        """The tensors re-tiled: some dropped, some replaced by (dtype, shape, bytes), and
        some added at the end, with consistent offsets."""
        replace, add = replace or {}, add or {}
        tensors = []
        for name in self.names():
            if name in drop:
                continue
            info = self.header[name]
            tensors.append((name, *replace.get(name, (info["dtype"], info["shape"],
                                                       self.raw(name)))))
        tensors += [(name, *spec) for name, spec in add.items()]
        return build_safetensors(self.header.get("__metadata__"), tensors)


def safetensors_file(header_text, data, length=None):
    text = header_text.encode("utf-8", "surrogateescape") if isinstance(header_text, str) \
        else header_text
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def build_safetensors(metadata, tensors):
    """A well-formed file from (name, dtype, shape, bytes) tiles."""
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    return safetensors_file(json.dumps(header), b"".join(t[3] for t in tensors))


# ---------------------------------------------------------------- PNG

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]  # (x0, y0, dx, dy) of the seven interlace passes


def png_chunk(kind, payload, crc=None):
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc & 0xFFFFFFFF)


def png_ihdr(width, height, depth=8, colour=0, interlace=0):
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0,
                                          interlace))


def png_scanlines(width, height, depth=8, colour=0, interlace=0, filter_byte=0):
    """The uncompressed IDAT stream of a gradient image, one filter byte per row."""
    samples = PNG_CHANNELS[colour]
    max_value = (1 << depth) - 1

    def row(y, xs):
        values = [((x * 9 + y * 5 + s * 40) % 256) * max_value // 255 for x in xs
                  for s in range(samples)]
        if depth == 16:
            body = b"".join(struct.pack(">H", v) for v in values)
        elif depth == 8:
            body = bytes(values)
        else:  # pack sub-byte samples, most significant bits first
            bits = "".join(format(v, f"0{depth}b") for v in values)
            bits += "0" * (-len(bits) % 8)
            body = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
        return bytes([filter_byte]) + body

    if not interlace:
        return b"".join(row(y, range(width)) for y in range(height))
    stream = b""
    for x0, y0, dx, dy in ADAM7:
        xs = range(x0, width, dx)
        if len(xs):
            stream += b"".join(row(y, xs) for y in range(y0, height, dy))
    return stream


def png_file(width=28, height=28, depth=8, colour=0, interlace=0, filter_byte=0,
             before_idat=b"", idat=None, ihdr=None, end=True):
    """A PNG; `idat` (compressed bytes) and `ihdr` (a chunk) replace the computed ones."""
    if idat is None:
        idat = zlib.compress(png_scanlines(width, height, depth, colour, interlace, filter_byte))
    if ihdr is None:
        ihdr = png_ihdr(width, height, depth, colour, interlace)
    palette = png_chunk(b"PLTE", bytes(v for i in range(256) for v in (i, i, i))) \
        if colour == 3 else b""
    return (PNG_SIGNATURE + ihdr + palette + before_idat + png_chunk(b"IDAT", idat)
            + (png_chunk(b"IEND", b"") if end else b""))


def png_fix_crcs(blob):
    """The same chunks with every CRC recomputed, so a mutation reaches past the CRC check."""
    out, pos = bytearray(blob[:8]), 8
    while pos + 12 <= len(blob):
        length = struct.unpack(">I", blob[pos:pos + 4])[0]
        if pos + 12 + length > len(blob):
            break
        kind, payload = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + length]
        out += png_chunk(kind, payload)
        pos += 12 + length
    return bytes(out + blob[pos:])


# ---------------------------------------------------------------- IDX (Fashion-MNIST)

IDX_IMAGES, IDX_LABELS = 0x0803, 0x0801  # type 0x08 (unsigned byte) and the rank
DATA_FILES = {"train-images": "train-images-idx3-ubyte", "train-labels": "train-labels-idx1-ubyte",
              "test-images": "t10k-images-idx3-ubyte", "test-labels": "t10k-labels-idx1-ubyte"}
TRAIN_IMAGES, TEST_IMAGES = 64, 16


def idx_file(magic, sizes, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in sizes) + payload


def idx_images(count, rows=28, cols=28, seed=0):
    return idx_file(IDX_IMAGES, [count, rows, cols],
                    random.Random(seed).randbytes(count * rows * cols))


def idx_labels(labels):
    return idx_file(IDX_LABELS, [len(labels)], bytes(labels))


def dataset(folder="data", compress=True, **replaced):
    """The four IDX files of a dataset under `folder`: the synthetic one, with any of
    train_images, train_labels, test_images, test_labels replaced (bytes, or None to leave
    that file out)."""
    contents = {
        "train-images": idx_images(TRAIN_IMAGES, seed=1),
        "train-labels": idx_labels([i % 10 for i in range(TRAIN_IMAGES)]),
        "test-images": idx_images(TEST_IMAGES, seed=2),
        "test-labels": idx_labels([(3 * i) % 10 for i in range(TEST_IMAGES)]),
    }
    contents.update({k.replace("_", "-"): v for k, v in replaced.items()})
    files = {}
    for key, blob in contents.items():
        if blob is not None:
            name = DATA_FILES[key] + (".gz" if compress else "")
            files[f"{folder}/{name}"] = gzip.compress(blob, mtime=0) if compress else blob
    return files


# ============================================================== mutations

INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
               b"\xff\xff\xff\x7f", b"\xff" * 8, b"\x00" * 8, b"9999", b"-1", b"\x00\x00\x00\x00"]


def mutate(blob, rng, hot_end=None):
    """One random mutation of `blob` and its name. Half of the positions fall in the first
    `hot_end` bytes (the header), where most of a reader's decisions are made."""
    b = bytearray(blob)

    def position():
        end = hot_end if hot_end and rng.random() < 0.5 else len(b)
        return rng.randrange(max(1, min(end, len(b))))

    kind = rng.choice(["bit", "bytes", "interesting", "truncate", "insert", "delete",
                       "duplicate", "digits"])
    if not b:
        kind = "insert"
    if kind == "bit":
        i = position()
        b[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        for _ in range(rng.randint(1, 8)):
            b[position()] = rng.randrange(256)
    elif kind == "interesting":
        value, i = rng.choice(INTERESTING), position()
        b[i:i + len(value)] = value
    elif kind == "truncate":
        del b[rng.randrange(len(b)):]
    elif kind == "insert":
        i = position() if b else 0
        b[i:i] = rng.randbytes(rng.randint(1, 32))
    elif kind == "delete":
        i = position()
        del b[i:i + rng.randint(1, 32)]
    elif kind == "duplicate":
        i = position()
        b[i:i] = b[i:i + rng.randint(1, 64)]
    else:  # a digit of the header (a size, an offset, a length) becomes another number
        digits = [i for i in range(min(len(b), hot_end or len(b))) if chr(b[i]).isdigit()]
        if digits:
            i = rng.choice(digits)
            b[i:i + 1] = rng.choice([b"0", b"9" * rng.randint(1, 25), b"-1", b"1e9", b"4."])
        else:
            b[position()] ^= 0xFF
    return bytes(b), kind


# ============================================================== fixtures

MODELS = ("ae", "vae", "vqvae", "fsq")
MODEL_OPTIONS = {"ae": {}, "vae": {}, "vqvae": {"codebook-size": "16", "code-dim": "4"},
                 "fsq": {"levels": "5,5,5"}}


@dataclass
class Fixtures:
    data: str  # the synthetic dataset's folder
    checkpoints: dict  # model -> path
    blobs: dict  # model -> checkpoint bytes

    def checkpoint(self, model):
        return Safetensors(self.blobs[model])


def train_args(data, model="ae", out="out", **options):
    """A tiny training run as --option=value arguments. `options` (underscores for dashes)
    override the defaults and come last; None drops an option, True makes it a flag."""
    options = {k.replace("_", "-"): v for k, v in options.items()}
    base = {"model": model, "data-dir": data, "steps": "2", "batch-size": "8",
            "hidden-channels": "4", "out": out, "device": "cpu", **MODEL_OPTIONS[model]}
    args = ["train"]
    for key, value in {**{k: v for k, v in base.items() if k not in options},
                       **options}.items():
        if value is True:
            args.append(f"--{key}")
        elif value is not None:
            args.append(f"--{key}={value}")
    return args + ["--quiet"]


def make_fixtures(binary, root, env, timeout):
    """The synthetic dataset and one small trained checkpoint per model."""
    for path, blob in dataset(str(root / "data")).items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(blob)
    data = str(root / "data")
    checkpoints, blobs = {}, {}
    for model in MODELS:
        out = root / f"run-{model}"
        args = train_args(data, model, out=str(out))
        run = subprocess.run([binary, *args], cwd=root, env=env, capture_output=True,
                             timeout=timeout * 3)
        path = out / "checkpoint.safetensors"
        if run.returncode != 0 or not path.exists():
            output = (run.stdout + run.stderr).decode(errors="replace")
            sys.exit(f"hostile_sweep: cannot train the {model} fixture "
                     f"({shlex.join([binary, *args])}):\n{output}")
        checkpoints[model], blobs[model] = str(path), path.read_bytes()
    return Fixtures(data, checkpoints, blobs)


# ============================================================== the .npy cases

@dataclass
class OpSpec:
    """A valid `latent op` call: its inputs (role, Array, option or None for a positional)
    and its other arguments."""
    op: str
    inputs: list
    options: list

    def input_args(self):
        args = ["op", self.op]
        for role, _, option in self.inputs:
            args += [f"{role}.npy"] if option is None else [option, f"{role}.npy"]
        return args

    def args(self):
        return self.input_args() + self.options

    def case(self, family, name, expect, replaced=None, options=None):
        """This call with some inputs replaced (role -> bytes) and more options."""
        replaced = replaced or {}
        files = {f"{role}.npy": replaced.get(role, array.npy()) for role, array, _ in self.inputs}
        return Case(family, name, expect, self.args() + (options or []), files)

    def array(self, role):
        return next(a for r, a, _ in self.inputs if r == role)


def op_specs():
    z4 = floats((4, 4), 1.5)
    return {
        "matmul": OpSpec("matmul", [("a", floats((2, 3)), None), ("b", floats((3, 4)), None)],
                         ["-o", "out.npy"]),
        "conv2d": OpSpec("conv2d", [("x", floats((1, 1, 5, 5)), None),
                                    ("w", floats((2, 1, 3, 3)), None),
                                    ("bias", floats((2,)), "--bias")],
                         ["--padding=1", "-o", "out.npy"]),
        "fsq": OpSpec("fsq", [("z", z4, None)],
                      ["--levels", "8,5,5,5", "-o", "codes.npy", "--indices", "indices.npy"]),
        "fsq-decode": OpSpec("fsq-decode", [("indices", ints((4,), [0, 1, 999, 500]), None)],
                             ["--levels", "8,5,5,5", "-o", "codes.npy"]),
        "reparam": OpSpec("reparam", [("mu", floats((2, 3)), None),
                                      ("logvar", floats((2, 3), 2.0), None)],
                          ["--seed=7", "-o", "z.npy", "--kl", "kl.npy"]),
        "kl": OpSpec("kl", [("mu", floats((2, 3)), None), ("logvar", floats((2, 3), 2.0), None)],
                     ["-o", "kl.npy"]),
        "vq": OpSpec("vq", [("z", floats((5, 3)), None), ("codebook", floats((4, 3), 2.0), None)],
                     ["-o", "indices.npy", "--distances", "d.npy"]),
        "ema": OpSpec("ema", [("z", floats((6, 3)), None),
                              ("codebook", floats((4, 3), 2.0), None),
                              ("count", Array("<f4", (4,), [1.0, 2.0, 0.5, 3.0]), None),
                              ("sum", floats((4, 3)), None)],
                      ["-o", "codebook.npy", "--count-out", "count2.npy", "--sum-out", "sum2.npy",
                       "--dead-code-threshold", "0.75"]),
        "attention": OpSpec("attention", [("qkv", floats((1, 3, 12)), None)],
                            ["--heads", "2", "-o", "out.npy"]),
        "layer-norm": OpSpec("layer-norm", [("x", floats((2, 4)), None),
                                            ("w", floats((4,)), "--weight"),
                                            ("b", floats((4,)), "--bias")], ["-o", "y.npy"]),
        "cross-entropy": OpSpec("cross-entropy", [("logits", floats((2, 4)), None),
                                                  ("targets", ints((2,), [0, 3]), None)],
                                ["-o", "nll.npy"]),
        "embedding": OpSpec("embedding", [("table", floats((4, 3)), None),
                                          ("ids", ints((2,), [0, 3]), None)], ["-o", "rows.npy"]),
        "gelu": OpSpec("gelu", [("x", floats((2, 3)), None)], ["-o", "y.npy"]),
        "ema-indices": OpSpec("ema", [("z", floats((6, 3)), None),
                                      ("codebook", floats((4, 3), 2.0), None),
                                      ("count", Array("<f4", (4,), [1.0, 2.0, 0.5, 3.0]), None),
                                      ("sum", floats((4, 3)), None),
                                      ("indices", ints((6,), [0, 1, 2, 3, 0, 1]), "--indices")],
                              ["-o", "codebook.npy"]),
    }


BIG = 2 ** 62
INT64_MAX = 2 ** 63 - 1


def header_malformations():
    """(label, expectation, Array -> bytes): malformed .npy files made from a valid array."""
    def header(**fields):
        return lambda a: npy_file(a.header(**fields), a.data())

    def shape(text, data=None):
        return lambda a: npy_file(a.header(shape=text), a.data() if data is None else data)

    def raw(text):
        return lambda a: npy_file(text, a.data())

    return [
        ("bad-magic", ERROR, lambda a: b"\x93NUMPX" + a.npy()[6:]),
        ("version-0", ERROR, lambda a: a.npy()[:6] + b"\x00\x00" + a.npy()[8:]),
        ("version-9", ERROR, lambda a: a.npy()[:6] + b"\x09\x00" + a.npy()[8:]),
        ("empty-file", ERROR, lambda a: b""),
        ("nine-bytes", ERROR, lambda a: a.npy()[:9]),
        ("magic-only", ERROR, lambda a: NPY_MAGIC),
        ("header-length-past-eof", ERROR,
         lambda a: npy_file(a.header(), a.data(), header_length=0xFFFF)),
        ("header-length-4gib", ERROR,
         lambda a: npy_file(a.header(), a.data(), version=2, header_length=0xFFFFFFFF)),
        ("header-length-zero", ERROR, lambda a: npy_file(a.header(), a.data(), header_length=0)),
        ("header-length-short", ERROR,
         lambda a: npy_file(a.header(), a.data(), header_length=20)),
        ("header-not-dict", ERROR, raw("[1, 2, 3]")),
        ("header-empty-dict", ERROR, raw("{}")),
        ("header-not-python", ERROR, raw("descr=<f4 shape=4,4")),
        ("header-missing-descr", ERROR, header(descr=None)),
        ("header-missing-fortran-order", ERROR, header(fortran_order=None)),
        ("header-missing-shape", ERROR, header(shape=None)),
        ("header-extra-key", ERROR, header(extra="1")),
        ("header-unterminated-string", ERROR,
         raw("{'descr': '<f4, 'fortran_order': False, 'shape': (4, 4), }")),
        ("header-unclosed", ERROR, lambda a: npy_file(a.header()[:-1], a.data())),
        ("header-text-after-dict", ERROR, lambda a: npy_file(a.header() + " x", a.data())),
        ("header-nul-byte", ERROR, lambda a: npy_file(a.header().replace("descr", "de\0scr"),
                                                       a.data())),
        ("header-non-ascii", ERROR,
         lambda a: npy_file(a.header().encode("latin-1").replace(b"'descr'", b"'d\xffscr'"),
                            a.data())),
        ("descr-f2", ERROR, header(descr="'<f2'")),
        ("descr-c8", ERROR, header(descr="'<c8'")),
        ("descr-unicode", ERROR, header(descr="'<U4'")),
        ("descr-object", ERROR, header(descr="'|O'")),
        ("descr-bool", ERROR, header(descr="'|b1'")),
        ("descr-i2", ERROR, header(descr="'<i2'")),
        ("descr-u8", ERROR, header(descr="'<u8'")),
        ("descr-void", ERROR, header(descr="'|V16'")),
        ("descr-empty", ERROR, header(descr="''")),
        ("descr-structured", ERROR, header(descr="[('x', '<f4')]")),
        ("descr-number", ERROR, header(descr="4")),
        ("descr-no-byte-order", ANY, lambda a: npy_file(a.header(descr=repr(a.descr[1:])),
                                                         a.data())),
        ("big-endian", ERROR, lambda a: npy_file(a.header(descr=repr(">" + a.descr[1:])),
                                                  a.data(">"))),
        ("fortran-order", ANY, header(fortran_order="True")),
        ("fortran-order-not-bool", ERROR, header(fortran_order="1")),
        ("shape-negative-first", ERROR, shape("(-1, 4)")),
        ("shape-negative-last", ERROR, shape("(4, -1)")),
        ("shape-2^62x2^62", ERROR, shape(f"({BIG}, {BIG})")),
        ("shape-2^32x2^32", ERROR, shape(f"({2 ** 32}, {2 ** 32})")),
        ("shape-2^31x2^31x4", ERROR, shape(f"({2 ** 31}, {2 ** 31}, 4)")),
        ("shape-int64max-x2", ERROR, shape(f"({INT64_MAX}, 2)")),
        ("shape-2x2^62", ERROR, shape(f"(2, {BIG})")),
        ("shape-3037000500^2", ERROR, shape("(3037000500, 3037000500)")),
        ("shape-2^63", ERROR, shape(f"({2 ** 63},)")),
        ("shape-2^64+1", ERROR, shape(f"({2 ** 64 + 1},)")),
        ("shape-10^30", ERROR, shape(f"({10 ** 30},)")),
        ("shape-zero-2^62-2^62", ANY, shape(f"(0, {BIG}, {BIG})", b"")),
        ("shape-2^62+5-zero-4", ANY, shape(f"({BIG + 5}, 0, 4)", b"")),
        ("shape-2^62-2^62-zero", ANY, shape(f"({BIG}, {BIG}, 0)", b"")),
        ("shape-zero-int64max", ANY, shape(f"(0, {INT64_MAX})", b"")),
        ("shape-int64max-zero", ANY, shape(f"({INT64_MAX}, 0)", b"")),
        ("shape-empty-0", ANY, shape("(0,)", b"")),
        ("shape-empty-0x4", ANY, shape("(0, 4)", b"")),
        ("shape-empty-4x0", ANY, shape("(4, 0)", b"")),
        ("shape-list", ERROR, shape("[4, 4]")),
        ("shape-float", ERROR, shape("(4.0, 4)")),
        ("shape-string", ERROR, shape("('4', 4)")),
        ("shape-unclosed", ERROR, shape("(4, 4")),
        ("shape-scalar", ANY, lambda a: npy_file(a.header(shape="()"), a.data()[:item_bytes(a)])),
        ("shape-rank-64", ANY,
         lambda a: npy_file(a.header(shape=shape_literal((1,) * 64)), a.data()[:item_bytes(a)])),
        ("shape-rank-1000", ANY,
         lambda a: npy_file(a.header(shape=shape_literal((1,) * 1000)), a.data()[:item_bytes(a)])),
        ("shape-long-suffix", ANY,
         lambda a: npy_file(a.header(shape="(" + ", ".join(f"{d}L" for d in a.shape) + ",)"),
                            a.data())),
        ("data-one-byte-short", ERROR, lambda a: a.npy()[:-1]),
        ("data-half", ERROR, lambda a: a.npy()[:len(a.npy()) - len(a.data()) // 2]),
        ("data-missing", ERROR, lambda a: a.npy()[:len(a.npy()) - len(a.data())]),
        ("data-one-byte-extra", ANY, lambda a: a.npy() + b"\x00"),
        ("data-one-element-extra", ANY, lambda a: a.npy() + a.data()[:item_bytes(a)]),
        ("version-2", ANY, lambda a: a.npy(version=2)),
        ("version-3", ANY, lambda a: a.npy(version=3)),
        ("header-unaligned", ANY, lambda a: a.npy(align=False)),
    ]


def item_bytes(array):
    """The byte width of one element."""
    return struct.calcsize(STRUCT_CODES[array.descr[1:]])


# The malformations tried on every input of every op (the full list runs on fsq's z).
CORE_MALFORMATIONS = ("bad-magic", "header-length-past-eof", "data-one-byte-short",
                      "shape-negative-first", "shape-2^62x2^62", "shape-zero-2^62-2^62",
                      "big-endian")


def npy_semantic_cases(specs):
    """Well-formed files whose values or shapes the op must refuse (or may accept)."""
    nan, inf = float("nan"), float("inf")
    fsq, dec, reparam, kl = specs["fsq"], specs["fsq-decode"], specs["reparam"], specs["kl"]
    mm, conv, vq, ema, emai = (specs[k] for k in ("matmul", "conv2d", "vq", "ema", "ema-indices"))
    att, ce, emb, ln = (specs[k] for k in ("attention", "cross-entropy", "embedding", "layer-norm"))

    def put(array, index, value):
        values = list(array.values)
        values[index] = value
        return array.with_values(values).npy()

    z, mu, logvar = fsq.array("z"), kl.array("mu"), kl.array("logvar")
    count = ema.array("count")
    rows = [
        # fsq: NaN is an error, +-Inf saturates (its help)
        (fsq, "fsq.z-nan", ERROR, {"z": put(z, 5, nan)}, []),
        (fsq, "fsq.z-inf", ANY, {"z": put(z, 5, inf)}, []),
        (fsq, "fsq.z-minus-inf", ANY, {"z": put(z, 5, -inf)}, []),
        (fsq, "fsq.z-last-dim-3", ERROR, {"z": floats((4, 3)).npy()}, []),
        (fsq, "fsq.z-int32", ERROR, {"z": ints((4, 4), range(16)).npy()}, []),
        (fsq, "fsq.z-scalar", ERROR, {"z": Array("<f4", (), [0.5]).npy()}, []),
        (fsq, "fsq.z-float64", OK, {"z": z.as_descr("<f8").npy()}, []),
        (fsq, "fsq.levels-product-overflows-int32", ERROR, {"z": floats((2, 3)).npy()},
         ["--levels", "2000,2000,2000"]),
        # fsq-decode: indices inside the implicit codebook, int32
        (dec, "fsq-decode.index-1000", ERROR, {"indices": ints((4,), [0, 1, 1000, 2]).npy()}, []),
        (dec, "fsq-decode.index-minus-1", ERROR, {"indices": ints((4,), [0, -1, 2, 3]).npy()}, []),
        (dec, "fsq-decode.index-int32-max", ERROR,
         {"indices": ints((2,), [0, 2 ** 31 - 1]).npy()}, []),
        (dec, "fsq-decode.index-float32", ERROR,
         {"indices": Array("<f4", (4,), [0.0, 1.0, 2.0, 3.0]).npy()}, []),
        (dec, "fsq-decode.index-int64", ANY, {"indices": Array("<i8", (2,), [0, 7]).npy()}, []),
        (dec, "fsq-decode.index-int64-2^40", ERROR,
         {"indices": Array("<i8", (2,), [0, 2 ** 40]).npy()}, []),
        (dec, "fsq-decode.empty", ANY, {"indices": ints((0,), []).npy()}, []),
    ]
    # reparam and kl: NaN or Inf in mu or logvar is an error; so is an output that overflows
    for spec in (reparam, kl):
        op = spec.op
        rows += [
            (spec, f"{op}.mu-nan", ERROR, {"mu": put(mu, 2, nan)}, []),
            (spec, f"{op}.mu-inf", ERROR, {"mu": put(mu, 2, inf)}, []),
            (spec, f"{op}.logvar-nan", ERROR, {"logvar": put(logvar, 4, nan)}, []),
            (spec, f"{op}.logvar-minus-inf", ERROR, {"logvar": put(logvar, 4, -inf)}, []),
            (spec, f"{op}.mu-1e30", ERROR, {"mu": put(mu, 1, 1e30)}, []),
            (spec, f"{op}.mu-1e30-float64", ANY,
             {"mu": mu.as_descr("<f8").with_values([1e30] + mu.values[1:]).npy(),
              "logvar": logvar.as_descr("<f8").npy()}, []),
            (spec, f"{op}.logvar-1e30-clamped", ANY, {"logvar": put(logvar, 0, 1e30)}, []),
            (spec, f"{op}.shape-mismatch", ERROR, {"logvar": floats((2, 4)).npy()}, []),
            (spec, f"{op}.mu-scalar", ERROR, {"mu": Array("<f4", (), [0.5]).npy(),
                                              "logvar": Array("<f4", (), [0.5]).npy()}, []),
            (spec, f"{op}.mixed-float32-float64", ANY, {"logvar": logvar.as_descr("<f8").npy()},
             []),
            (spec, f"{op}.empty", ANY, {"mu": floats((0, 3)).npy(), "logvar": floats((0, 3)).npy()},
             []),
        ]
    rows += [
        (mm, "matmul.inner-mismatch", ERROR, {"b": floats((4, 4)).npy()}, []),
        (mm, "matmul.rank-1", ERROR, {"a": floats((3,)).npy()}, []),
        (mm, "matmul.rank-4", ERROR, {"a": floats((1, 1, 2, 3)).npy(),
                                      "b": floats((1, 1, 3, 4)).npy()}, []),
        (mm, "matmul.batch-mismatch", ERROR, {"a": floats((2, 2, 3)).npy(),
                                              "b": floats((3, 3, 4)).npy()}, []),
        (mm, "matmul.int32", ANY, {"a": ints((2, 3), range(6)).npy(),
                                   "b": ints((3, 4), range(12)).npy()}, []),
        (mm, "matmul.mixed-dtypes", ANY, {"b": floats((3, 4), descr="<f8").npy()}, []),
        (mm, "matmul.empty-m", ANY, {"a": floats((0, 3)).npy()}, []),
        (mm, "matmul.empty-k", ANY, {"a": floats((2, 0)).npy(), "b": floats((0, 4)).npy()}, []),
        (mm, "matmul.overflow-float32", ERROR, {"a": floats((2, 3), 1e30).npy(),
                                                "b": floats((3, 4), 1e30).npy()}, []),
        (conv, "conv2d.channel-mismatch", ERROR, {"w": floats((2, 2, 3, 3)).npy()}, []),
        (conv, "conv2d.kernel-larger-than-input", ERROR, {"w": floats((2, 1, 9, 9)).npy(),
                                                          "bias": floats((2,)).npy()}, []),
        (conv, "conv2d.bias-size", ERROR, {"bias": floats((3,)).npy()}, []),
        (conv, "conv2d.x-rank-3", ERROR, {"x": floats((1, 5, 5)).npy()}, []),
        (conv, "conv2d.w-rank-2", ERROR, {"w": floats((2, 9)).npy()}, []),
        (conv, "conv2d.empty-batch", ANY, {"x": floats((0, 1, 5, 5)).npy()}, []),
        (conv, "conv2d.zero-kernel", ANY, {"w": floats((2, 1, 0, 0)).npy()}, []),
        (vq, "vq.dim-mismatch", ERROR, {"codebook": floats((4, 2)).npy()}, []),
        (vq, "vq.codebook-rank-1", ERROR, {"codebook": floats((4,)).npy()}, []),
        (vq, "vq.codebook-empty", ERROR, {"codebook": floats((0, 3)).npy()}, []),
        (vq, "vq.z-int32", ERROR, {"z": ints((5, 3), range(15)).npy()}, []),
        (vq, "vq.z-scalar", ERROR, {"z": Array("<f4", (), [0.5]).npy()}, []),
        (vq, "vq.z-nan", ANY, {"z": put(vq.array("z"), 3, nan)}, []),
        (vq, "vq.codebook-nan", ANY, {"codebook": put(vq.array("codebook"), 3, nan)}, []),
        (vq, "vq.empty-z", ANY, {"z": floats((0, 3)).npy()}, []),
        # ema: NaN or Inf in the EMA statistics is an error
        (ema, "ema.count-nan", ERROR, {"count": put(count, 1, nan)}, []),
        (ema, "ema.count-inf", ERROR, {"count": put(count, 1, inf)}, []),
        (ema, "ema.sum-nan", ERROR, {"sum": put(ema.array("sum"), 4, nan)}, []),
        (ema, "ema.sum-inf", ERROR, {"sum": put(ema.array("sum"), 4, -inf)}, []),
        (ema, "ema.count-negative", ANY, {"count": put(count, 1, -5.0)}, []),
        (ema, "ema.count-shape", ERROR, {"count": floats((3,)).npy()}, []),
        (ema, "ema.sum-shape", ERROR, {"sum": floats((4, 2)).npy()}, []),
        (ema, "ema.codebook-dim-mismatch", ERROR, {"codebook": floats((4, 2)).npy(),
                                                   "sum": floats((4, 2)).npy()}, []),
        (ema, "ema.z-nan", ANY, {"z": put(ema.array("z"), 0, nan)}, []),
        (emai, "ema.indices-out-of-range", ERROR,
         {"indices": ints((6,), [0, 1, 2, 4, 0, 1]).npy()}, []),
        (emai, "ema.indices-negative", ERROR,
         {"indices": ints((6,), [0, 1, -1, 3, 0, 1]).npy()}, []),
        (emai, "ema.indices-shape", ERROR, {"indices": ints((5,), [0, 1, 2, 3, 0]).npy()}, []),
        (emai, "ema.indices-float32", ERROR,
         {"indices": Array("<f4", (6,), [0.0] * 6).npy()}, []),
        # the prior's kernels: sizes the fused attention cannot hold, targets and ids outside
        # their range, NaN logits (a NaN loss, not an error)
        (att, "attention.65-tokens", ERROR, {"qkv": floats((1, 65, 6)).npy()}, []),
        (att, "attention.width-not-3-heads", ERROR, {"qkv": floats((1, 3, 10)).npy()}, []),
        (att, "attention.2-d", ERROR, {"qkv": floats((3, 12)).npy()}, []),
        (att, "attention.int32", ERROR, {"qkv": ints((1, 3, 12), range(36)).npy()}, []),
        (att, "attention.empty-batch", ANY, {"qkv": floats((0, 3, 12)).npy()}, []),
        (ce, "cross-entropy.target-4", ERROR, {"targets": ints((2,), [0, 4]).npy()}, []),
        (ce, "cross-entropy.target-minus-1", ERROR, {"targets": ints((2,), [-1, 0]).npy()}, []),
        (ce, "cross-entropy.targets-float", ERROR,
         {"targets": Array("<f4", (2,), [0.0, 1.0]).npy()}, []),
        (ce, "cross-entropy.targets-shape", ERROR, {"targets": ints((3,), [0, 1, 2]).npy()}, []),
        (ce, "cross-entropy.logit-nan", ANY, {"logits": put(ce.array("logits"), 1, nan)}, []),
        (emb, "embedding.id-4", ERROR, {"ids": ints((2,), [0, 4]).npy()}, []),
        (emb, "embedding.id-minus-1", ERROR, {"ids": ints((2,), [-1, 0]).npy()}, []),
        (emb, "embedding.table-1-d", ERROR, {"table": floats((4,)).npy()}, []),
        (ln, "layer-norm.weight-shape", ERROR, {"w": floats((3,)).npy()}, []),
        (ln, "layer-norm.x-int32", ERROR, {"x": ints((2, 4), range(8)).npy()}, []),
    ]
    for spec, name, expect, replaced, options in rows:
        yield spec.case("npy", f"npy.{name}", expect, replaced, options)


def npy_cases(seed):
    specs = op_specs()
    for key, spec in specs.items():  # valid controls
        yield spec.case("npy", f"npy.{key}.valid", OK)
    malformations = header_malformations()
    z = specs["fsq"].array("z")
    for label, expect, make in malformations:  # everything on fsq's z
        yield specs["fsq"].case("npy", f"npy.fsq.z.{label}", expect, {"z": make(z)})
    core = [m for m in malformations if m[0] in CORE_MALFORMATIONS]
    for key, spec in specs.items():  # the core set on every other input
        for role, array, _ in spec.inputs:
            if key == "fsq" or (key == "ema-indices" and role != "indices"):
                continue
            for label, expect, make in core:
                yield spec.case("npy", f"npy.{key}.{role}.{label}", expect, {role: make(array)})
    yield from npy_semantic_cases(specs)
    rng = random.Random(f"npy-{seed}")
    inputs = [(key, spec, role, array) for key, spec in specs.items()
              for role, array, _ in spec.inputs]
    for i in range(100):
        key, spec, role, array = rng.choice(inputs)
        blob = array.npy()
        mutant, kind = mutate(blob, rng, hot_end=len(blob) - len(array.data()))
        yield spec.case("npy", f"npy.mutant-{i:03d}.{key}.{role}.{kind}", ANY, {role: mutant})


# ============================================================== token and image .npy files

def token_cases(fx):
    vq, fsq = fx.checkpoints["vqvae"], fx.checkpoints["fsq"]
    grid = [(i * 7) % 16 for i in range(2 * 49)]
    images = Array("<f4", (2, 1, 28, 28), [((i * 37) % 256) / 255 for i in range(2 * 784)])

    def decode(name, expect, tokens, checkpoint=vq, out="images.npy"):
        return Case("tokens", f"tokens.decode.{name}", expect,
                    ["decode", "--checkpoint", checkpoint, "tokens.npy", "-o", out],
                    {"tokens.npy": tokens})

    def encode(name, expect, blob, checkpoint=vq):
        return Case("tokens", f"tokens.encode.{name}", expect,
                    ["encode", "--checkpoint", checkpoint, "images.npy", "-o", "tokens.npy"],
                    {"images.npy": blob})

    nan = float("nan")
    yield decode("valid", OK, ints((2, 7, 7), grid).npy())
    yield decode("valid-7x7", OK, ints((7, 7), grid[:49]).npy(), out="image.png")
    yield decode("valid-grid-png", OK, ints((2, 7, 7), grid).npy(), out="grid.png")
    yield decode("fsq-valid", OK, ints((1, 7, 7), [(i * 3) % 125 for i in range(49)]).npy(), fsq)
    yield decode("index-16-of-16", ERROR, ints((1, 7, 7), [16] + grid[1:49]).npy())
    yield decode("index-minus-1", ERROR, ints((1, 7, 7), [-1] + grid[1:49]).npy())
    yield decode("index-int32-max", ERROR, ints((1, 7, 7), [2 ** 31 - 1] + grid[1:49]).npy())
    yield decode("fsq-index-125-of-125", ERROR, ints((1, 7, 7), [125] + [0] * 48).npy(), fsq)
    yield decode("fsq-index-minus-1", ERROR, ints((1, 7, 7), [-1] + [0] * 48).npy(), fsq)
    yield decode("float32", ERROR, Array("<f4", (1, 7, 7), [0.0] * 49).npy())
    yield decode("shape-7x6", ERROR, ints((1, 7, 6), grid[:42]).npy())
    yield decode("shape-1x49", ERROR, ints((1, 49), grid[:49]).npy())
    yield decode("rank-4", ERROR, ints((1, 1, 7, 7), grid[:49]).npy())
    yield decode("empty", ANY, ints((0, 7, 7), []).npy())
    yield decode("empty-to-png", ANY, ints((0, 7, 7), []).npy(), out="grid.png")
    yield decode("int64-2^40", ERROR, Array("<i8", (1, 7, 7), [2 ** 40] * 49).npy())
    yield decode("ae-checkpoint", ERROR, ints((1, 7, 7), grid[:49]).npy(), fx.checkpoints["ae"])
    yield decode("vae-checkpoint", ERROR, ints((1, 7, 7), grid[:49]).npy(),
                 fx.checkpoints["vae"])
    yield encode("valid", OK, images.npy())
    yield encode("valid-rank-3", OK, images.reshaped((2, 28, 28)).npy())
    yield encode("fsq-valid", OK, images.npy(), fsq)
    yield encode("three-channels", ERROR, Array("<f4", (1, 3, 28, 28), [0.5] * 3 * 784).npy())
    yield encode("27x28", ERROR, Array("<f4", (1, 1, 27, 28), images.values[:27 * 28]).npy())
    yield encode("flat-784", ERROR, Array("<f4", (2, 784), images.values).npy())
    yield encode("nan-pixel", ANY, images.with_values([nan] + images.values[1:]).npy())
    yield encode("pixel-1e30", ANY, images.with_values([1e30] + images.values[1:]).npy())
    yield encode("int32-images", ANY, ints((1, 1, 28, 28), [1] * 784).npy())
    yield encode("float64-images", ANY, images.as_descr("<f8").npy())
    yield encode("empty", ANY, Array("<f4", (0, 1, 28, 28), []).npy())
    yield encode("ae-checkpoint", ERROR, images.npy(), fx.checkpoints["ae"])


# ============================================================== safetensors and checkpoints

def eval_args(data, checkpoint="ckpt.safetensors"):
    return ["eval", "--checkpoint", checkpoint, "--data-dir", data, "--test-limit", "8"]


def resume_args(data):
    return ["train", "--resume", "ckpt.safetensors", "--out", "out", "--data-dir", data,
            "--steps", "3", "--quiet"]


def sample_args():
    return ["sample", "--checkpoint", "ckpt.safetensors", "-n", "4", "-o", "samples.png"]


def encode_png_args():
    return ["encode", "--checkpoint", "ckpt.safetensors", "image.png", "-o", "tokens.npy"]


def safetensors_cases(fx, seed):
    """Malformations of the container format, each read by `latent eval`."""
    st = fx.checkpoint("ae")
    blob = fx.blobs["ae"]
    names = st.names()
    first, second, last = names[0], names[1], names[-1]
    b1, e1 = st.header[first]["data_offsets"]
    bl, el = st.header[last]["data_offsets"]
    header_text = json.dumps(st.header)
    length = struct.unpack("<Q", blob[:8])[0]
    data = st.data

    def case(name, expect, contents):
        return Case("safetensors", f"safetensors.{name}", expect, eval_args(fx.data),
                    {"ckpt.safetensors": contents})

    def entry(name, expect, **fields):
        return case(name, expect, st.with_entry(first, **fields))

    yield case("valid", OK, blob)
    yield case("empty-file", ERROR, b"")
    yield case("five-bytes", ERROR, blob[:5])
    yield case("length-only", ERROR, blob[:8])
    yield case("header-length-2^64-1", ERROR, struct.pack("<Q", 2 ** 64 - 1) + blob[8:])
    yield case("header-length-2^63", ERROR, struct.pack("<Q", 2 ** 63) + blob[8:])
    yield case("header-length-100MB-past-eof", ERROR, struct.pack("<Q", 100_000_000) + blob[8:])
    yield case("header-length-past-eof-by-1", ERROR,
               struct.pack("<Q", len(blob) - 8 + 1) + blob[8:])
    yield case("header-length-zero", ERROR, struct.pack("<Q", 0) + blob[8:])
    yield case("header-length-cuts-json", ERROR, struct.pack("<Q", length // 2) + blob[8:])
    yield case("header-length-plus-8", ERROR, struct.pack("<Q", length + 8) + blob[8:])
    yield case("json-array", ERROR, safetensors_file("[]", b""))
    yield case("json-null", ERROR, safetensors_file("null", b""))
    yield case("json-empty-object", ERROR, safetensors_file("{}", b""))
    yield case("json-invalid", ERROR, safetensors_file(header_text.replace(":", "=", 3), data))
    yield case("json-truncated", ERROR, safetensors_file(header_text[:-2], data))
    yield case("json-trailing-garbage", ERROR, safetensors_file(header_text + "}x", data))
    yield case("json-not-utf8", ERROR,
               safetensors_file(header_text.encode().replace(first.encode(),
                                                             first.encode() + b"\xff\xfe"), data))
    yield case("json-nul-padding", ANY,
               struct.pack("<Q", length + 8) + blob[8:8 + length] + b"\0" * 8 + data)
    yield case("json-deeply-nested", ERROR,
               safetensors_file("[" * 100000 + "]" * 100000, b""))
    yield case("entry-not-object", ERROR,
               st.pack({**st.header, first: 5}))
    yield entry("dtype-missing", ERROR, dtype=None)
    yield entry("dtype-unknown-f8-e4m3", ERROR, dtype="F8_E4M3")
    yield entry("dtype-unknown-q4", ERROR, dtype="Q4_0")
    yield entry("dtype-number", ERROR, dtype=5)
    yield entry("dtype-f64-size-mismatch", ERROR, dtype="F64")
    yield entry("dtype-i32-same-size", ANY, dtype="I32")  # converted, as F16 and BF16 are
    yield entry("dtype-bf16-double-shape", ANY, dtype="BF16",
                shape=st.header[first]["shape"][:-1] + [st.header[first]["shape"][-1] * 2])
    yield entry("shape-missing", ERROR, shape=None)
    yield entry("shape-not-array", ERROR, shape=64)
    yield entry("shape-negative", ERROR, shape=[-4, 1, 4, 4])
    yield entry("shape-float", ERROR, shape=[4.5, 1, 4, 4])
    yield entry("shape-string", ERROR, shape=["4", 1, 4, 4])
    yield entry("shape-2^62x2^62x4", ERROR, shape=[BIG, BIG, 4])
    yield entry("shape-2^64", ERROR, shape=[2 ** 64])
    yield entry("shape-zero-2^62-2^62", ERROR, shape=[0, BIG, BIG])
    yield entry("shape-too-few-elements", ERROR, shape=[5])
    yield entry("shape-transposed-same-size", ERROR,
                shape=list(reversed(st.header[first]["shape"])))
    yield entry("offsets-missing", ERROR, data_offsets=None)
    yield entry("offsets-three", ERROR, data_offsets=[b1, e1, e1])
    yield entry("offsets-reversed", ERROR, data_offsets=[e1, b1])
    yield entry("offsets-negative", ERROR, data_offsets=[-4, e1 - 4])
    yield entry("offsets-strings", ERROR, data_offsets=[str(b1), str(e1)])
    yield entry("offsets-floats", ERROR, data_offsets=[b1 + 0.5, e1 + 0.5])
    yield entry("offsets-2^64-1", ERROR, data_offsets=[0, 2 ** 64 - 1])
    yield entry("offsets-wrap-around", ERROR, data_offsets=[2 ** 64 - 16, 2 ** 64 - 16 + e1])
    yield case("offsets-overlap", ERROR,
               st.with_entry(second, data_offsets=[e1 - 4, e1 - 4 + len(st.raw(second))]))
    yield case("offsets-shifted-past-end", ERROR,
               st.with_entry(last, data_offsets=[bl + 8, el + 8]))
    yield case("offsets-gap", ERROR, safetensors_file(
        json.dumps({**st.header, last: {**st.header[last], "data_offsets": [bl + 4, el + 4]}}),
        data[:bl] + b"\0" * 4 + data[bl:]))
    yield case("duplicate-name", ERROR, safetensors_file(
        header_text.replace(f'"{second}":', f'"{first}":', 1), data))
    yield case("duplicate-metadata", ERROR, safetensors_file(
        header_text[:-1] + ', "__metadata__": {"format": "x"}}', data))
    yield case("data-trailing-bytes", ERROR, blob + b"\0" * 8)
    yield case("data-one-byte-short", ERROR, blob[:-1])
    yield case("data-half", ERROR, blob[:8 + length + len(data) // 2])
    yield case("data-missing", ERROR, blob[:8 + length])
    yield case("metadata-not-object", ERROR, st.pack({**st.header, "__metadata__": [1, 2]}))
    yield case("metadata-value-number", ERROR, st.with_metadata(step=2))
    yield case("metadata-missing", ERROR, st.pack(
        {k: v for k, v in st.header.items() if k != "__metadata__"}))
    yield case("tensor-name-empty", ANY, safetensors_file(
        header_text.replace(f'"{last}"', '""', 1), data))
    rng = random.Random(f"safetensors-{seed}")
    for i in range(40):
        mutant, kind = mutate(blob, rng, hot_end=8 + length)
        yield case(f"mutant-{i:03d}.{kind}", ANY, mutant)


def checkpoint_cases(fx, seed):
    """Well-formed safetensors whose latent metadata, config or tensors are wrong, read by
    eval, train --resume, sample and encode."""
    data = fx.data
    ae, vae, vq, fsq = (fx.checkpoint(m) for m in MODELS)

    def case(name, expect, contents, args=None, extra=None):
        files = {"ckpt.safetensors": contents, **(extra or {})}
        return Case("checkpoint", f"checkpoint.{name}", expect,
                    eval_args(data) if args is None else args, files)

    def config(**values):
        """An edit that sets config keys (None removes one)."""
        def edit(c):
            c = dict(c)
            for key, value in values.items():
                if value is None:
                    c.pop(key, None)
                else:
                    c[key] = value
            return c
        return edit

    def rename_key(old, new):
        return lambda c: {(new if k == old else k): v for k, v in c.items()}

    png = {"image.png": png_file()}
    yield case("eval-valid", OK, fx.blobs["ae"])
    yield case("resume-valid", OK, fx.blobs["ae"], resume_args(data))
    yield case("sample-valid", OK, fx.blobs["vae"], sample_args())
    yield case("encode-valid", OK, fx.blobs["vqvae"], encode_png_args(), png)
    yield case("eval-not-safetensors", ERROR, floats((4,)).npy())
    yield case("resume-not-safetensors", ERROR, b"hello", resume_args(data))
    # metadata
    yield case("format-missing", ERROR, ae.with_metadata(format=None))
    yield case("format-other", ERROR, ae.with_metadata(format="latent-checkpoint/2"))
    yield case("config-missing", ERROR, ae.with_metadata(config=None))
    yield case("config-invalid-json", ERROR, ae.with_metadata(config='{"model": "ae",'))
    yield case("config-array", ERROR, ae.with_metadata(config="[]"))
    yield case("config-empty-object", ERROR, ae.with_metadata(config="{}"))
    for key in ("hidden_channels", "model", "lr", "levels"):
        flipped = key[:-1] + chr(ord(key[-1]) ^ 1)
        yield case(f"config-key-flipped-{key}", ERROR, ae.with_config(rename_key(key, flipped)))
    yield case("config-key-missing-hidden_channels", ERROR,
               ae.with_config(config(hidden_channels=None)))
    yield case("config-key-extra", ERROR, ae.with_config(config(colour="blue")))
    for key, value in [("hidden_channels", 4.5), ("hidden_channels", "4"), ("lr", "0.002"),
                       ("ema", "false"), ("levels", "8,5,5,5"), ("levels", [8.5, 5]),
                       ("seed", -1), ("model", 5), ("batch_size", 8.0),
                       ("steps", True), ("beta", "x")]:
        label = json.dumps(value).replace('"', "").replace(" ", "")
        yield case(f"config-type-{key}-{label}", ERROR, ae.with_config(config(**{key: value})))
    yield case("config-model-unknown", ERROR, ae.with_config(config(model="xyz")))
    yield case("metadata-model-disagrees", ANY, ae.with_metadata(model="vae"))
    for key, value in [("hidden_channels", 0), ("hidden_channels", -4),
                       ("hidden_channels", 2 ** 31), ("hidden_channels", 2 ** 62),
                       ("latent_channels", 0), ("latent_channels", -1), ("image_channels", 0),
                       ("image_channels", 3), ("loss", "xyz")]:
        yield case(f"config-value-{key}-{value}", ERROR, ae.with_config(config(**{key: value})))
    yield case("config-ae-latent-xyz", ANY, ae.with_config(config(latent="xyz")))  # unused
    yield case("config-vae-latent-xyz", ERROR, vae.with_config(config(latent="xyz")))
    yield case("config-vae-flat-latent-dim-0", ERROR,
               vae.with_config(config(latent="flat", latent_dim=0)), sample_args())
    for key, value in [("levels", []), ("levels", [0]), ("levels", [-5, 5, 5]),
                       ("levels", [1000000, 1000000, 1000000])]:
        yield case(f"config-fsq-{key}-{json.dumps(value).replace(' ', '')}", ERROR,
                   fsq.with_config(config(**{key: value})), encode_png_args(), png)
    for key, value in [("codebook_size", 0), ("codebook_size", 17), ("code_dim", -1),
                       ("code_dim", 5), ("codebook_size", 2 ** 40)]:
        yield case(f"config-vqvae-{key}-{value}", ERROR, vq.with_config(config(**{key: value})),
                   encode_png_args(), png)
    # step and loader metadata
    for label, step in [("minus-1", "-1"), ("minus-2^63", str(-2 ** 63)), ("1e3", "1e3"),
                        ("abc", "abc"), ("empty", ""), ("2^64", str(2 ** 64)),
                        ("leading-space", " 2"), ("2.0", "2.0"), ("4x", "4x")]:
        yield case(f"step-{label}", ERROR, ae.with_metadata(step=step))
        if label in ("minus-1", "minus-2^63", "1e3"):
            yield case(f"resume-step-{label}", ERROR, ae.with_metadata(step=step),
                       resume_args(data))
    yield case("step-zero", ANY, ae.with_metadata(step="0"))
    yield case("resume-step-past-total", ERROR, ae.with_metadata(step="999999"),
               resume_args(data))
    loader = json.loads(ae.metadata()["loader"])
    yield case("loader-invalid-json", ERROR, ae.with_metadata(loader="{"))
    yield case("loader-missing-position", ERROR,
               ae.with_metadata(loader=json.dumps({k: v for k, v in loader.items()
                                                   if k != "position"})))
    for key, value, expect in [("position", -1, ERROR), ("position", 2 ** 62, ERROR),
                               ("epoch", -1, ERROR), ("seed", -1, ERROR),
                               ("epoch_offset", -1, ERROR),
                               ("dataset_size", 0, ERROR), ("dataset_size", 1000, ANY),
                               ("position", "16", ERROR)]:
        yield case(f"resume-loader-{key}-{value}", expect,
                   ae.with_metadata(loader=json.dumps({**loader, key: value})), resume_args(data))
    # tensors
    model_first = ae.names()[0]
    optimizer = next(n for n in ae.names() if n.startswith("optimizer.state"))
    yield case("tensor-model-missing", ERROR, ae.relayout(drop=[model_first]))
    yield case("tensor-optimizer-missing-eval", ANY, ae.relayout(drop=[optimizer]))
    yield case("tensor-optimizer-missing-resume", ERROR, ae.relayout(drop=[optimizer]),
               resume_args(data))
    yield case("tensor-optimizer-step-nan", ANY, ae.relayout(
        replace={"optimizer.step": ("F64", [], struct.pack("<d", float("nan")))}),
        resume_args(data))
    yield case("tensor-extra-model", ANY, ae.relayout(
        add={"model.extra.weight": ("F32", [2], b"\0" * 8)}))
    shape, raw = ae.header[model_first]["shape"], ae.raw(model_first)
    count = len(raw) // 4
    yield case("tensor-model-wrong-shape", ERROR, ae.relayout(
        replace={model_first: ("F32", [shape[0] * 2] + shape[1:], raw * 2)}))
    yield case("tensor-model-nan", ANY, ae.relayout(
        replace={model_first: ("F32", shape, struct.pack("<f", float("nan")) * count)}))
    as_f64 = struct.pack(f"<{count}d", *struct.unpack(f"<{count}f", raw))
    yield case("tensor-model-f64", ANY, ae.relayout(
        replace={model_first: ("F64", shape, as_f64)}))
    codebook = "model.quantizer.codebook"
    if codebook in vq.header:
        shape = vq.header[codebook]["shape"]
        yield case("vqvae-codebook-missing", ERROR, vq.relayout(drop=[codebook]),
                   encode_png_args(), png)
        yield case("vqvae-codebook-wider", ERROR, vq.relayout(replace={codebook: (
            "F32", [shape[0], shape[1] + 1], b"\0" * (4 * shape[0] * (shape[1] + 1)))}),
            encode_png_args(), png)
        yield case("vqvae-codebook-nan", ANY, vq.relayout(replace={codebook: (
            "F32", shape, struct.pack("<f", float("nan")) * (shape[0] * shape[1]))}),
            encode_png_args(), png)
    decoder = next(n for n in vae.names() if n.startswith("model.decoder"))
    yield case("sample-decoder-missing", ERROR, vae.relayout(drop=[decoder]), sample_args())
    yield case("sample-step-minus-1", ERROR, vae.with_metadata(step="-1"), sample_args())
    yield case("sample-ae-checkpoint", ERROR, fx.blobs["ae"], sample_args())
    yield case("sample-vqvae-checkpoint", ERROR, fx.blobs["vqvae"], sample_args())
    yield case("encode-ae-checkpoint", ERROR, fx.blobs["ae"], encode_png_args(), png)
    rng = random.Random(f"checkpoint-{seed}")
    targets = [("vae", sample_args(), {}), ("vqvae", encode_png_args(), png),
               ("fsq", encode_png_args(), png), ("ae", resume_args(data), {})]
    for i in range(24):
        model, args, extra = targets[i % len(targets)]
        blob = fx.blobs[model]
        mutant, kind = mutate(blob, rng, hot_end=8 + struct.unpack("<Q", blob[:8])[0])
        yield case(f"mutant-{i:03d}.{model}.{kind}", ANY, mutant, args, extra)


# ============================================================== PNG

def png_cases(fx, seed):
    vq, fsq = fx.checkpoints["vqvae"], fx.checkpoints["fsq"]

    def case(name, expect, blob, checkpoint=vq):
        return Case("png", f"png.{name}", expect,
                    ["encode", "--checkpoint", checkpoint, "image.png", "-o", "tokens.npy"],
                    {"image.png": blob})

    valid = png_file()
    raw = png_scanlines(28, 28)
    idat = zlib.compress(raw)
    ihdr_end = 8 + 25
    yield case("valid", OK, valid)
    yield case("fsq-valid", OK, valid, fsq)
    yield case("gray-1-bit", ANY, png_file(depth=1))
    yield case("gray-2-bit", ANY, png_file(depth=2))
    yield case("gray-4-bit", ANY, png_file(depth=4))
    yield case("gray-16-bit", ANY, png_file(depth=16))
    yield case("interlaced", ANY, png_file(interlace=1))
    yield case("palette-gray", ANY, png_file(colour=3))
    yield case("rgb", ERROR, png_file(colour=2))
    yield case("rgba", ERROR, png_file(colour=6))
    yield case("gray-alpha", ERROR, png_file(colour=4))
    yield case("rgb-16-bit", ERROR, png_file(colour=2, depth=16))
    for w, h in [(27, 28), (28, 27), (56, 56), (1, 1), (29, 29), (28, 1), (784, 1)]:
        yield case(f"size-{w}x{h}", ERROR, png_file(w, h))
    for w, h, name in [(65535, 65535, "65535x65535"), (2 ** 31 - 1, 2 ** 31 - 1, "2^31-1-square"),
                       (2 ** 31 - 1, 1, "2^31-1-wide"), (1, 2 ** 31 - 1, "2^31-1-tall"),
                       (4096, 4096, "4096x4096"), (2 ** 32 - 1, 2 ** 32 - 1, "2^32-1-square")]:
        yield case(f"header-{name}-no-data", ERROR, png_file(w, h, idat=b""))
        yield case(f"header-{name}-tiny-idat", ERROR, png_file(w, h, idat=idat))
    yield case("zero-width", ERROR, png_file(0, 28, idat=idat))
    yield case("zero-height", ERROR, png_file(28, 0, idat=idat))
    yield case("idat-truncated", ERROR, png_file(idat=idat[:len(idat) // 2]))
    yield case("idat-short-by-a-row", ERROR, png_file(idat=zlib.compress(raw[:-29])))
    yield case("idat-missing", ERROR, valid[:ihdr_end] + png_chunk(b"IEND", b""))
    yield case("idat-extra-data", ANY, png_file(idat=zlib.compress(raw + b"\0" * 1000)))
    yield case("idat-bomb", ANY, png_file(idat=zlib.compress(raw + b"\0" * 50_000_000, 9)))
    yield case("idat-not-zlib", ERROR, png_file(idat=b"\x12\x34" + raw[:100]))
    yield case("iend-missing", ANY, png_file(end=False))
    yield case("file-cut-in-idat", ERROR, valid[:ihdr_end + 20])
    yield case("crc-bad-ihdr", ERROR, valid[:ihdr_end - 1] + bytes([valid[ihdr_end - 1] ^ 1])
               + valid[ihdr_end:])
    bad_idat = bytearray(valid)
    bad_idat[-12 - 1] ^= 1  # the last byte of IDAT's CRC, before the 12-byte IEND
    yield case("crc-bad-idat", ERROR, bytes(bad_idat))
    yield case("crc-bad-text-chunk", ANY,
               png_file(before_idat=png_chunk(b"tEXt", b"a\0b", crc=0)))
    for kind in (b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"sPLT", b"eXIf", b"prIv", b"IDAT"):
        # a chunk that claims 2 GiB in a file of a few hundred bytes
        yield case(f"chunk-length-2^31-1-{kind.decode()}", ERROR,
                   png_file(before_idat=struct.pack(">I", 2 ** 31 - 1) + kind + b"ab"))
    yield case("filter-byte-7", ERROR, png_file(filter_byte=7))
    yield case("bit-depth-3", ERROR, png_file(ihdr=png_ihdr(28, 28, depth=3)))
    yield case("colour-type-1", ERROR, png_file(ihdr=png_ihdr(28, 28, colour=1)))
    yield case("interlace-2", ERROR, png_file(ihdr=png_ihdr(28, 28, interlace=2)))
    yield case("ihdr-twice", ERROR, png_file(before_idat=png_ihdr(28, 28)))
    yield case("palette-missing", ERROR, png_file(colour=3)[:ihdr_end]
               + png_chunk(b"IDAT", zlib.compress(png_scanlines(28, 28, colour=3)))
               + png_chunk(b"IEND", b""))
    yield case("empty-file", ERROR, b"")
    yield case("signature-only", ERROR, PNG_SIGNATURE)
    yield case("text-file", ERROR, b"not an image\n")
    yield case("npy-named-png", ERROR, floats((1, 28, 28)).npy())
    rng = random.Random(f"png-{seed}")
    for i in range(40):
        mutant, kind = mutate(valid, rng, hot_end=ihdr_end + 8)
        if i % 2:  # half with CRCs recomputed, so that libpng reads the mutated chunk
            mutant, kind = png_fix_crcs(mutant), kind + "-crc-fixed"
        yield case(f"mutant-{i:03d}.{kind}", ANY, mutant)


# ============================================================== IDX datasets

def idx_cases():
    def case(name, expect, files, **options):
        return Case("idx", f"idx.{name}", expect, train_args("data", **options), files)

    images = idx_images(TRAIN_IMAGES, seed=1)
    labels = idx_labels([i % 10 for i in range(TRAIN_IMAGES)])
    yield case("valid", OK, dataset())
    yield case("valid-uncompressed", OK, dataset(compress=False))
    yield case("images-magic-of-labels", ERROR, dataset(train_images=struct.pack(">I", IDX_LABELS)
                                                        + images[4:]))
    yield case("images-magic-zero", ERROR, dataset(train_images=b"\0\0\0\0" + images[4:]))
    yield case("images-type-float", ERROR, dataset(train_images=b"\0\0\x0d\x03" + images[4:]))
    yield case("labels-magic-of-images", ERROR,
               dataset(train_labels=struct.pack(">I", IDX_IMAGES) + labels[4:]))
    yield case("images-rank-255", ERROR, dataset(train_images=b"\0\0\x08\xff" + images[4:]))
    yield case("images-2^16x2^24x2^24", ERROR,
               dataset(train_images=idx_file(IDX_IMAGES, [2 ** 16, 2 ** 24, 2 ** 24], b"")))
    yield case("images-(2^32-1)^3", ERROR,
               dataset(train_images=idx_file(IDX_IMAGES, [2 ** 32 - 1] * 3, b"")))
    yield case("images-2^31x28x28-no-data", ERROR,
               dataset(train_images=idx_file(IDX_IMAGES, [2 ** 31, 28, 28], b"")))
    yield case("labels-2^32-1-no-data", ERROR,
               dataset(train_labels=idx_file(IDX_LABELS, [2 ** 32 - 1], b"")))
    yield case("images-rank-2", ERROR,
               dataset(train_images=idx_file(0x0802, [TRAIN_IMAGES, 784], images[16:])))
    yield case("images-rank-4", ANY,
               dataset(train_images=idx_file(0x0804, [TRAIN_IMAGES, 1, 28, 28], images[16:])))
    yield case("images-32x32", ERROR, dataset(train_images=idx_images(TRAIN_IMAGES, 32, 32)))
    yield case("images-14x14", ERROR, dataset(train_images=idx_images(TRAIN_IMAGES, 14, 14)))
    yield case("images-28x0", ERROR, dataset(train_images=idx_file(IDX_IMAGES,
                                                                   [TRAIN_IMAGES, 28, 0], b"")))
    yield case("test-images-14x14", ERROR, dataset(test_images=idx_images(TEST_IMAGES, 14, 14)))
    yield case("images-one-byte-short", ERROR, dataset(train_images=images[:-1]))
    yield case("images-header-cut", ERROR, dataset(train_images=images[:6]))
    yield case("images-empty-file", ERROR, dataset(train_images=b""))
    yield case("labels-one-byte-short", ERROR, dataset(train_labels=labels[:-1]))
    yield case("images-trailing-bytes", ANY, dataset(train_images=images + b"\0"))
    yield case("labels-63-for-64-images", ERROR,
               dataset(train_labels=idx_labels([i % 10 for i in range(63)])))
    yield case("labels-65-for-64-images", ERROR,
               dataset(train_labels=idx_labels([i % 10 for i in range(65)])))
    yield case("label-10", ERROR, dataset(train_labels=idx_labels([10] + [0] * 63)))
    yield case("label-255", ERROR, dataset(train_labels=idx_labels([0] * 63 + [255])))
    yield case("test-label-10", ERROR, dataset(test_labels=idx_labels([10] * TEST_IMAGES)))
    yield case("train-empty", ERROR,
               dataset(train_images=idx_images(0), train_labels=idx_labels([])))
    yield case("test-empty", ERROR, dataset(test_images=idx_images(0), test_labels=idx_labels([])))
    gz = gzip.compress(images, mtime=0)
    corrupt = dataset()
    corrupt["data/train-images-idx3-ubyte.gz"] = gz[:len(gz) // 2]
    yield case("gzip-truncated", ERROR, corrupt)
    corrupt = dataset()
    corrupt["data/train-images-idx3-ubyte.gz"] = gz[:-8] + bytes(b ^ 0xFF for b in gz[-8:-4]) \
        + gz[-4:]
    yield case("gzip-bad-crc", ERROR, corrupt)
    corrupt = dataset()
    corrupt["data/train-images-idx3-ubyte.gz"] = gz[:10] + bytes(b ^ 0x55 for b in gz[10:40]) \
        + gz[40:]
    yield case("gzip-corrupt-stream", ERROR, corrupt)
    corrupt = dataset()
    corrupt["data/train-images-idx3-ubyte.gz"] = gz + b"garbage"
    yield case("gzip-trailing-garbage", ANY, corrupt)
    yield case("test-labels-missing", ERROR, dataset(test_labels=None))
    folder = dataset(train_images=None)
    folder["data/train-images-idx3-ubyte.gz"] = None
    yield case("images-is-a-folder", ERROR, folder)
    yield case("train-limit-past-size", ANY, dataset(), train_limit="1000")
    yield case("data-dir-missing", ERROR, {}, data_dir="no-such-folder")


# ============================================================== option values

VALUES = ["-1", "0", "1e3", "4x", "1.5", "99999999999999999999", "nan", "inf", "-inf", ""]
# Option kinds: what a value must be (from each command's --help).
INT1, INT0, UINT = "integer >= 1", "integer >= 0", "unsigned integer"
POSITIVE, EPSILON, NONNEG, REAL = "positive finite", "positive", "non-negative", "real"


def flag_expectation(kind, value):
    """ERROR where the value is certainly invalid for an option of that kind, else ANY."""
    if kind in (INT1, INT0, UINT):  # whole numbers: only a plain in-range integer
        return ANY if value == "0" and kind != INT1 else ERROR
    if value in ("4x", "", "nan"):
        return ERROR
    if value in ("-1", "-inf") and kind in (POSITIVE, EPSILON, NONNEG):
        return ERROR
    if value == "inf" and kind == POSITIVE:
        return ERROR
    return ANY


def flag_cases(fx):
    data, specs = fx.data, op_specs()
    # train: (model, option, kind, other options)
    train_options = [
        ("ae", "epochs", INT0, {}), ("ae", "steps", INT0, {}), ("ae", "batch-size", INT1, {}),
        ("ae", "hidden-channels", INT1, {}), ("ae", "latent-channels", INT1, {}),
        ("ae", "train-limit", INT0, {}), ("ae", "test-limit", INT0, {}),
        ("ae", "checkpoint-every", INT0, {}), ("ae", "log-every", INT0, {}),
        ("ae", "seed", UINT, {}), ("ae", "lr", POSITIVE, {}), ("ae", "weight-decay", NONNEG, {}),
        ("ae", "grad-clip", NONNEG, {}),
        ("vae", "latent-dim", INT1, {"latent": "flat"}), ("vae", "kl-warmup", INT0, {}),
        ("vae", "kl-cycle", INT0, {}), ("vae", "beta", NONNEG, {}),
        ("vae", "free-bits", NONNEG, {}),
        ("vqvae", "codebook-size", INT1, {}), ("vqvae", "code-dim", INT1, {}),
        ("vqvae", "decay", NONNEG, {"ema": True}),
        ("vqvae", "dead-code-threshold", NONNEG, {"ema": True}),
        ("fsq", "levels", INT1, {}),
    ]
    for model, option, kind, others in train_options:
        for value in VALUES:
            args = train_args(data, model, **others, **{option: value})
            yield Case("flags", f"flags.train.{model}.{option}={value}",
                       flag_expectation(kind, value), args)
    # op: (spec, option, kind, other arguments); fsq's levels run on z [6, 1] and indices [3],
    # where a single level is a valid shape
    fsq_z = OpSpec("fsq", [("z", floats((6, 1)), None)], ["-o", "codes.npy"])
    fsq_indices = OpSpec("fsq-decode", [("indices", ints((3,), [0, 0, 0]), None)],
                         ["-o", "codes.npy"])
    op_options = [
        (specs["conv2d"], "stride", INT1, []), (specs["conv2d"], "padding", INT0, []),
        (specs["conv2d"], "output-padding", INT0, []),
        (specs["reparam"], "logvar-min", REAL, []), (specs["reparam"], "logvar-max", REAL, []),
        (specs["reparam"], "seed", UINT, []), (specs["reparam"], "offset", UINT, []),
        (specs["kl"], "logvar-min", REAL, []), (specs["kl"], "logvar-max", REAL, []),
        (specs["ema-indices"], "decay", NONNEG, []),
        (specs["ema-indices"], "epsilon", EPSILON, []),
        (specs["ema-indices"], "dead-code-threshold", NONNEG, []),
        (specs["ema-indices"], "reset-count", NONNEG, ["--dead-code-threshold=0.75"]),
        (specs["ema-indices"], "seed", UINT, ["--dead-code-threshold=0.75"]),
        (fsq_z, "levels", INT1, []), (fsq_indices, "levels", INT1, []),
    ]
    for spec, option, kind, others in op_options:
        for value in VALUES:
            # the value under test replaces the base call's own (conv2d's --padding=1)
            base = [a for a in spec.options if not a.startswith(f"--{option}=")]
            case = spec.case("flags", f"flags.op.{spec.op}.{option}={value}",
                             flag_expectation(kind, value))
            case.args = spec.input_args() + base + others + [f"--{option}={value}"]
            yield case
    eval_base = ["eval", "--checkpoint", fx.checkpoints["ae"], "--data-dir", data]
    sample_base = ["sample", "--checkpoint", fx.checkpoints["vae"], "-o", "samples.png"]
    for value in VALUES:
        yield Case("flags", f"flags.eval.test-limit={value}", flag_expectation(INT0, value),
                   eval_base + [f"--test-limit={value}"])
        yield Case("flags", f"flags.sample.count={value}", flag_expectation(INT1, value),
                   sample_base + [f"--count={value}"])
        yield Case("flags", f"flags.sample.seed={value}", flag_expectation(UINT, value),
                   sample_base + ["--count=4", f"--seed={value}"])
    yield from text_option_cases(fx, specs)


def text_option_cases(fx, specs):
    """Options taking a word or a path, given one that cannot work."""
    data, ae, vae = fx.data, fx.checkpoints["ae"], fx.checkpoints["vae"]
    png = {"image.png": png_file()}
    rows = [
        ("train.model=bogus", ["train", "--model=bogus", *train_args(data)[2:]], {}),
        ("train.loss=bogus", train_args(data, loss="bogus"), {}),
        ("train.vae.latent=bogus", train_args(data, "vae", latent="bogus"), {}),
        ("train.device=bogus", train_args(data, device="bogus"), {}),
        ("train.device=cuda:999", train_args(data, device="cuda:999"), {}),
        ("train.fsq.levels=8,,5", train_args(data, "fsq", levels="8,,5"), {}),
        ("train.data-dir=missing", train_args(data, data_dir="no-such-folder"), {}),
        ("train.out=under-a-file", train_args(data, out="/dev/null/out"), {}),
        ("train.resume=missing", train_args(data, resume="no-such.safetensors"), {}),
        ("eval.device=bogus", ["eval", "--checkpoint", ae, "--device=bogus"], {}),
        ("eval.checkpoint=missing", ["eval", "--checkpoint", "no-such.safetensors"], {}),
        ("eval.checkpoint=folder", ["eval", "--checkpoint", "."], {}),
        ("eval.grid=under-a-file", ["eval", "--checkpoint", ae, "--data-dir", data,
                                    "--grid=/dev/null/grid.png"], {}),
        ("sample.device=bogus", ["sample", "--checkpoint", vae, "--device=bogus"], {}),
        ("sample.out=under-a-file", ["sample", "--checkpoint", vae, "-n", "4",
                                     "--out=/dev/null/s.png"], {}),
        ("encode.device=bogus", ["encode", "--checkpoint", fx.checkpoints["vqvae"], "image.png",
                                 "-o", "t.npy", "--device=bogus"], png),
        ("encode.input=missing", ["encode", "--checkpoint", fx.checkpoints["vqvae"],
                                  "no-such.png", "-o", "t.npy"], {}),
        ("decode.input=missing", ["decode", "--checkpoint", fx.checkpoints["vqvae"],
                                  "no-such.npy", "-o", "t.png"], {}),
    ]
    for name, args, files in rows:
        yield Case("flags", f"flags.{name}", ERROR, args, files)
    for key, option in [("vq", "--algorithm=bogus"), ("ema", "--stats=bogus"),
                        ("matmul", "--device=bogus"), ("fsq-decode", "--dtype=bogus"),
                        ("conv2d", "--device=cuda:999")]:
        yield specs[key].case("flags", f"flags.op.{key}.{option[2:]}", ERROR, options=[option])
    case = specs["fsq"].case("flags", "flags.op.fsq.out=under-a-file", ERROR)
    case.args = [a if a != "codes.npy" else "/dev/null/codes.npy" for a in case.args]
    yield case


# ============================================================== running

def all_cases(fx, seed):
    cases = [*npy_cases(seed), *token_cases(fx), *safetensors_cases(fx, seed),
             *checkpoint_cases(fx, seed), *png_cases(fx, seed), *idx_cases(), *flag_cases(fx)]
    # every case has its own name and its own directory
    for names in ([c.name for c in cases], [safe_name(c.name) for c in cases]):
        duplicates = [n for n, k in collections.Counter(names).items() if k > 1]
        assert not duplicates, f"duplicate case names: {duplicates}"
    return cases


@dataclass
class Result:
    case: Case
    outcome: str
    returncode: int
    seconds: float
    peak_mb: float
    output: str
    command: str


def run_case(case, binary, root, env, timeout, memory_kib, rss_limit_mb):
    directory = root / "cases" / safe_name(case.name)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for rel, blob in case.files.items():
        path = directory / rel
        if blob is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
    argv = [binary, *case.args]
    command = argv
    if memory_kib:  # the cap, set by the shell that then becomes latent (safe with threads)
        command = ["/bin/sh", "-c", f'ulimit -v {memory_kib} && exec "$@"', "sh", *argv]
    timed_out = threading.Event()

    def kill_group(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
            timed_out.set()
        except ProcessLookupError:  # it ended just now
            pass

    with tempfile.TemporaryFile() as log:
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=directory, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        timer = threading.Timer(timeout, kill_group, [process.pid])
        timer.start()
        # wait4 rather than Popen.wait: it also returns the child's peak resident memory
        _, status, usage = os.wait4(process.pid, 0)
        timer.cancel()
        seconds = time.monotonic() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    outcome = classify(case.expect, process.returncode, timed_out.is_set(), text, peak_mb,
                       rss_limit_mb)
    return Result(case, outcome, process.returncode, seconds, peak_mb, text[-4000:],
                  f"cd {shlex.quote(str(directory))} && {shlex.join(argv)}")


def safe_name(name):
    return re.sub(r"[^A-Za-z0-9._=-]", "_", name)[:120]


def report(results, seconds, out=sys.stdout):
    families = list(dict.fromkeys(r.case.family for r in results))
    columns = ["tried", *OUTCOMES]
    counts = {f: {c: 0 for c in columns} for f in [*families, "total"]}
    for r in results:
        for key in (r.case.family, "total"):
            counts[key]["tried"] += 1
            counts[key][r.outcome] += 1
    widths = [max(11, max(len(f) for f in counts) + 1)] + [max(6, len(c) + 1) for c in columns]
    line = "".join(h.ljust(w) if i == 0 else h.rjust(w)
                   for i, (h, w) in enumerate(zip(["family", *columns], widths)))
    print(line, file=out)
    for family, row in counts.items():
        cells = [family] + [str(row[c]) for c in columns]
        print("".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(cells, widths))), file=out)
    problems = [r for r in results if r.outcome in (*FAILURES, "unclear error")]
    for outcome in (*FAILURES, "unclear error"):
        listed = [r for r in problems if r.outcome == outcome]
        if listed:
            print(f"\n{outcome} ({len(listed)}):", file=out)
        for r in listed:
            print(f"  {r.case.name}  [expect {r.case.expect}, exit {r.returncode}, "
                  f"{r.seconds:.1f} s, {r.peak_mb:.0f} MB]", file=out)
            print(f"    {r.command}\n    -> {last_line(r.output)[:300]}", file=out)
    slowest = sorted(results, key=lambda r: -r.seconds)[:5]
    print(f"\n{len(results)} cases in {seconds:.1f} s; slowest: "
          + ", ".join(f"{r.case.name} {r.seconds:.1f} s" for r in slowest), file=out)
    return counts


def write_json(path, summary, results):
    cases = [{"name": r.case.name, "family": r.case.family, "expect": r.case.expect,
              "outcome": r.outcome, "returncode": r.returncode, "seconds": round(r.seconds, 3),
              "peak_mb": round(r.peak_mb, 1), "command": r.command,
              "message": message(r.output), "last_line": last_line(r.output)}
             for r in results]
    Path(path).write_text(json.dumps({**summary, "cases": cases}, indent=1) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent", required=True, help="the latent binary to test")
    parser.add_argument("--timeout", type=float, default=20, help="seconds per case")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("--json", help="write every case's outcome to this file")
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    parser.add_argument("--only", help="run only cases whose name contains this")
    parser.add_argument("--keep", help="build the cases in this folder and keep them")
    parser.add_argument("--memory-gb", type=float, default=4,
                        help="address-space cap per run (0: none; sanitizer builds get none)")
    parser.add_argument("--rss-mb", type=float, default=1024,
                        help="peak resident memory that makes a case a memory hog (0: off)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random mutations")
    args = parser.parse_args()

    binary = str(Path(args.latent).resolve())
    if not os.access(binary, os.X_OK):
        sys.exit(f"hostile_sweep: {binary} is not an executable")
    memory_kib = int(args.memory_gb * 1024 * 1024)
    executable = Path(binary).read_bytes()
    if memory_kib and b"__asan_init" in executable:
        print("hostile_sweep: AddressSanitizer build: no address-space cap", file=sys.stderr)
        memory_kib = 0
    if args.keep:
        root = Path(args.keep).resolve()
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="hostile-sweep-"))
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["LATENT_FASHION_MNIST_DIR"] = str(root / "data")
    try:
        start = time.monotonic()
        fixtures = make_fixtures(binary, root, env, args.timeout)
        cases = all_cases(fixtures, args.seed)
        if args.only:
            cases = [c for c in cases if args.only in c.name]
        if args.list:
            for c in cases:
                print(f"{c.family:12} {c.expect:6} {c.name}  ::  {shlex.join(c.args)}")
            print(f"{len(cases)} cases", file=sys.stderr)
            return 0
        results = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_case, c, binary, root, env, args.timeout, memory_kib,
                                   args.rss_mb) for c in cases]
            for i, future in enumerate(futures, 1):
                results.append(future.result())
                if not args.keep:
                    shutil.rmtree(root / "cases" / safe_name(results[-1].case.name),
                                  ignore_errors=True)
                if i % 100 == 0:
                    print(f"hostile_sweep: {i}/{len(cases)}", file=sys.stderr)
        seconds = time.monotonic() - start
        counts = report(results, seconds)
        if args.json:
            write_json(args.json, {
                "binary": binary, "sha256": hashlib.sha256(executable).hexdigest(),
                "timeout": args.timeout, "jobs": args.jobs,
                "memory_gb": memory_kib / 1024 / 1024, "seconds": round(seconds, 1),
                "counts": counts}, results)
        return 1 if any(r.outcome in FAILURES for r in results) else 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

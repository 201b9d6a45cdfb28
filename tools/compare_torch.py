#!/usr/bin/env python3
"""latent's cpu training step beside PyTorch eager's, side by side on this machine.

Run it through tools/compare-torch (which makes the PyTorch virtual environment with --setup
and runs this file with its Python); see that script's header for the options.

What it does, per model (ae, vae, vqvae_ema = `--model vqvae --ema --dead-code-threshold 1`,
fsq, prior, and vqvae, the gradient codebook):

1. Builds the model in PyTorch with latent's architecture (src/models/autoencoder.cpp: the
   Encoder conv 4x4 s2 p1 -> SiLU -> conv 4x4 s2 p1 -> SiLU -> conv 3x3 p1, the Decoder
   conv 3x3 p1 -> SiLU -> convT 4x4 s2 p1 -> SiLU -> convT 4x4 s2 p1, logits) and the same
   module paths, so latent's safetensors checkpoint loads by name (docs/files.md).
   The prior (src/models/prior.cpp, `latent train --model prior`): a frozen tokenizer (child
   "tokenizer", these VQ-VAE/FSQ mirrors; the tool first trains a default VQ-VAE for 20 steps,
   K = 512, or takes --prior-tokenizer) and the transformer (child "prior": embedding table
   [K + 11, C] with start token K + label, position table [49, C], pre-norm blocks
   block<l>.{ln1_weight, ln1_bias, qkv, proj, ln2_weight, ln2_bias, fc1, fc2}, qkv packed as
   [queries | keys | values] with head h at channel h*d of each, causal attention by
   F.scaled_dot_product_attention(is_causal=True), exact GELU, final ln_weight/ln_bias and out;
   the loss the mean cross-entropy of token t given the start token and tokens 0..t-1). AdamW
   updates the transformer's parameters only, in latent's order.
2. Check: `latent train --steps 3 --checkpoint-every 1 --log-every 1` on one batch (the
   first --batch training images) writes checkpoint-1 and checkpoint-2. The PyTorch model,
   loaded from checkpoint-1, must reproduce to --tolerance (1e-5):
   - the step-2 training loss of metrics.jsonl (the same weights on the same images; not for
     the VAE, whose loss depends on latent's Philox noise),
   - the parameters of checkpoint-2, after one PyTorch step (forward, backward, AdamW with
     checkpoint-1's optimizer state): the gradients and the optimizer, not only the forward,
   - `latent eval --json --test-limit N`'s test MSE of checkpoint-1 (sigmoid of the
     reconstruction's logits against the first N test images, eval mode: the VQ-VAE's and
     FSQ's quantized reconstruction, the VAE's reconstruction from mu; the prior's
     tokenizer's).
   The prior trains with --class-dropout 0 (the batch's own labels) at a constant lr, and its
   check takes latent's own tokens (`latent encode` with the tokenizer checkpoint), so that a
   near-tie of the nearest code cannot move it; beside the above it checks that the PyTorch
   tokenizer gives exactly those tokens (of the batch and the test images) and `latent eval`'s
   test_nll_bits_per_token (the test images' labels). The key biases (the middle third of
   each qkv.bias) are left out of the parameter check and reported apart: their gradient is
   0 in exact arithmetic (a key bias shifts all of a query's scores alike), rounding noise
   (~1e-11) on both sides, which AdamW scales by 1/(sqrt(v) + 1e-8) to updates ~1e-6 apart.
3. Timing: pairs of runs, interleaved: bench/train_step_bench --benchmark_filter
   BM_train_step_<model>/<batch>/ (forward, loss, backward, AdamW, after-step work: exactly
   `latent train`'s step; OMP_NUM_THREADS=threads, LATENT_BENCH_DEVICE=cpu) and the PyTorch
   step (the two sides take turns going first) on the same kind of batch (uniform random
   images, as the benchmark uses), with torch.set_num_threads(threads), for at least
   --min-time seconds after 3 warm-up steps. The prior's step, on both sides, tokenizes its
   batch (the VQ-VAE encoder and the nearest code, no gradients; BM_train_step_prior's
   tokenizer is a randomly initialized default VQ-VAE, the PyTorch one checkpoint-1's, which
   changes no timing), draws class dropout 0.1 (labels uniform in 0..9) and trains the
   transformer at its defaults (width 128, 4 layers, 4 heads).
   Prints model, latent img/s (median, best), PyTorch img/s (median, best), the ratio of the
   medians (latent / PyTorch: above 1 means latent is faster) and the load averages seen.
4. With --epoch-pairs N, N interleaved pairs of one whole epoch: `latent train --epochs 1`
   on the 60,000 Fashion-MNIST training images (img/s over its train_seconds) against the
   same epoch in PyTorch (a permutation, batches gathered from the images in memory, the
   step above), from the same checkpoint.
5. With --load N, N busy processes run beside all of it: the ratio under a competing load.

The PyTorch step mirrors latent's: zero_grad, forward + loss, backward, AdamW (lr 2e-3,
betas 0.9/0.999, eps 1e-8, weight decay 0), then the after-step work (VQ-VAE EMA: counts and
sums by code, the EMA update with Laplace smoothing, dead-code revival onto random batch rows,
the usage window). The VAE's noise comes from torch.randn, not latent's Philox stream: the
timing does not depend on the values.
"""
import argparse
import array
import ast
import gzip
import json
import math
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------ checkpoints


def load_safetensors(path):
    """name -> tensor, and the metadata, without the safetensors package."""
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        data = bytearray(blob[base + begin : base + end])
        t = torch.frombuffer(data, dtype=dtypes[info["dtype"]]) if data else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def model_state(path):
    tensors, meta = load_safetensors(path)
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    return state, json.loads(meta["config"])


# ------------------------------------------------------------------ models (latent's layers)


class Encoder(nn.Module):
    def __init__(self, cin, h, cout):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(cin, h, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(h, 2 * h, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * h, cout, 3, 1, 1))

    def forward(self, x):
        return self.layers(x)


class Decoder(nn.Module):
    def __init__(self, cin, h, cout):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(cin, 2 * h, 3, 1, 1), nn.SiLU(),
            nn.ConvTranspose2d(2 * h, h, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(h, cout, 4, 2, 1))

    def forward(self, z):
        return self.layers(z)


def reconstruction_loss(kind, logits, images):
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, images)
    return F.mse_loss(torch.sigmoid(logits), images)


class Autoencoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, h = cfg["image_channels"], cfg["hidden_channels"]
        self.loss = cfg["loss"]
        self.encoder = Encoder(c, h, cfg["latent_channels"])
        self.decoder = Decoder(cfg["latent_channels"], h, c)

    def training_loss(self, x, step):
        return reconstruction_loss(self.loss, self.decoder(self.encoder(x)), x)

    def reconstruct(self, x):
        return torch.sigmoid(self.decoder(self.encoder(x)))

    def after_step(self, step):
        pass


class Vae(nn.Module):
    """The spatial VAE (src/models/vae.cpp, --latent spatial): mu and logvar are the two
    halves of the encoder's 2c channels; the Gaussian (mse) or Bernoulli (bce) decoder."""

    def __init__(self, cfg):
        super().__init__()
        if cfg["latent"] != "spatial":
            raise SystemExit("compare_torch: only the spatial VAE is mirrored")
        c, h, lc = cfg["image_channels"], cfg["hidden_channels"], cfg["latent_channels"]
        self.c, self.loss = lc, cfg["loss"]
        self.beta = 1.0 if cfg["beta"] < 0 else cfg["beta"]
        if cfg["kl_warmup"] or cfg["kl_cycle"] or cfg["free_bits"]:
            raise SystemExit("compare_torch: KL annealing and free bits are not mirrored")
        self.encoder = Encoder(c, h, 2 * lc)
        self.decoder = Decoder(lc, h, c)

    def recon_nats(self, logits, x):
        pixels = x[0].numel()
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, x) * pixels
        var = F.mse_loss(torch.sigmoid(logits), x).clamp(1e-12, 1e12)
        return torch.log(var) * (0.5 * pixels) + 0.5 * pixels * (1.0 + math.log(2.0 * math.pi))

    def training_loss(self, x, step):
        f = self.encoder(x)
        mu, logvar = f[:, : self.c], f[:, self.c :]
        if self.beta == 0.0:
            return self.recon_nats(self.decoder(mu), x)
        lc = logvar.clamp(-30.0, 20.0)
        z = mu + torch.exp(0.5 * lc) * torch.randn_like(mu)
        kl = 0.5 * (mu.square() + lc.exp() - lc - 1.0).flatten(1).sum(1)
        return self.recon_nats(self.decoder(z), x) + self.beta * kl.mean()

    def reconstruct(self, x):
        return torch.sigmoid(self.decoder(self.encoder(x)[:, : self.c]))

    def after_step(self, step):
        pass


class VectorQuantizer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        K, D = cfg["codebook_size"], cfg["code_dim"]
        if cfg["cosine"] or cfg["kmeans_init"]:
            raise SystemExit("compare_torch: --cosine and --kmeans-init are not mirrored")
        self.K, self.D, self.ema = K, D, cfg["ema"]
        self.decay, self.eps, self.threshold = cfg["decay"], 1e-5, cfg["dead_code_threshold"]
        init = torch.empty(K, D).uniform_(-1.0 / K, 1.0 / K)
        if self.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.ones(K))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("last_used", torch.full((K,), -1, dtype=torch.int32))

    def nearest(self, z):
        e = self.codebook
        d = (z * z).sum(1, keepdim=True) - 2.0 * (z @ e.t()) + (e * e).sum(1)
        return d.argmin(1)

    @torch.no_grad()
    def update(self, z, idx, step):
        counts = torch.bincount(idx, minlength=self.K)
        if self.ema:
            sums = torch.zeros(self.K, self.D).index_add_(0, idx, z)
            g = self.decay
            self.ema_count.mul_(g).add_(counts.to(z.dtype), alpha=1 - g)
            self.ema_sum.mul_(g).add_(sums, alpha=1 - g)
            total = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (total + self.K * self.eps) * total
            self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(1))
            if self.threshold > 0:
                dead = self.ema_count < self.threshold
                rows = z[torch.randint(0, z.shape[0], (self.K,))]
                w = dead.to(z.dtype).unsqueeze(1)
                self.codebook.copy_(rows * w + self.codebook * (1 - w))
                self.ema_sum.copy_(rows * self.threshold * w + self.ema_sum * (1 - w))
                self.ema_count.copy_(torch.where(dead, torch.full_like(self.ema_count, self.threshold), self.ema_count))
        self.last_used.copy_(torch.where(counts > 0, torch.full_like(self.last_used, step), self.last_used))


class VqVae(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, h, D = cfg["image_channels"], cfg["hidden_channels"], cfg["code_dim"]
        self.loss, self.D = cfg["loss"], D
        self.beta = 0.25 if cfg["beta"] < 0 else cfg["beta"]
        self.encoder = Encoder(c, h, D)
        self.quantizer = VectorQuantizer(cfg)
        self.decoder = Decoder(D, h, c)
        self.pending = None

    def rows(self, x):
        return self.encoder(x).permute(0, 2, 3, 1).reshape(-1, self.D)

    def decode_rows(self, r, n):
        return self.decoder(r.reshape(n, 7, 7, self.D).permute(0, 3, 1, 2).contiguous())

    def training_loss(self, x, step):
        z = self.rows(x)
        with torch.no_grad():
            idx = self.quantizer.nearest(z)
        e = self.quantizer.codebook[idx]
        commitment = F.mse_loss(z, e.detach())
        zq = z + (e - z).detach()  # straight-through
        recon = reconstruction_loss(self.loss, self.decode_rows(zq, x.shape[0]), x)
        if self.quantizer.ema:
            vq = self.beta * commitment
        else:
            vq = F.mse_loss(e, z.detach()) + self.beta * commitment
        self.pending = (z.detach(), idx, step)
        return recon + vq

    def after_step(self, step):
        if self.pending is not None:
            self.quantizer.update(*self.pending)
            self.pending = None

    def reconstruct(self, x):
        z = self.rows(x)
        return torch.sigmoid(self.decode_rows(self.quantizer.codebook[self.quantizer.nearest(z)], x.shape[0]))


class FsqAutoencoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, h = cfg["image_channels"], cfg["hidden_channels"]
        self.levels, self.loss = cfg["levels"], cfg["loss"]
        if cfg["fsq_symmetric"]:
            raise SystemExit("compare_torch: --symmetric is not mirrored")
        d = len(self.levels)
        self.encoder = Encoder(c, h, d)
        self.decoder = Decoder(d, h, c)
        # docs/fsq.md section 1: half = (L-1)(1+eps)/2, offset = 1/2 for even L, shift = atanh(offset/half).
        half, offset, shift, hh, place = [], [], [], [], []
        p = 1
        for L in self.levels:
            half.append((L - 1) * (1 + 1e-3) / 2)
            offset.append(0.5 if L % 2 == 0 else 0.0)
            shift.append(math.atanh(offset[-1] / half[-1]))
            hh.append(L // 2)
            place.append(p)
            p *= L
        for name, v in (("q_half", half), ("q_offset", offset), ("q_shift", shift), ("q_h", hh)):
            self.register_buffer(name, torch.tensor(v, dtype=torch.float32), persistent=False)
        self.register_buffer("lo", -torch.tensor(hh, dtype=torch.float32), persistent=False)
        self.register_buffer("hi", torch.tensor([L - 1 - h_ for L, h_ in zip(self.levels, hh)], dtype=torch.float32), persistent=False)
        self.register_buffer("place", torch.tensor(place, dtype=torch.int32), persistent=False)

    def quantize(self, x):
        z = self.encoder(x).permute(0, 2, 3, 1)  # [N, 7, 7, d]
        b = torch.tanh(z + self.q_shift) * self.q_half - self.q_offset
        r = torch.round(b).detach().clamp(self.lo, self.hi)
        codes = (b + (r - b).detach()) / self.q_h  # straight-through: d codes / dz = d(b/h)/dz
        indices = ((r - self.lo).to(torch.int32) * self.place).sum(-1)
        return codes.permute(0, 3, 1, 2), indices

    def training_loss(self, x, step):
        codes, _ = self.quantize(x)
        return reconstruction_loss(self.loss, self.decoder(codes), x)

    def reconstruct(self, x):
        return torch.sigmoid(self.decoder(self.quantize(x)[0]))

    def after_step(self, step):
        pass


class TransformerBlock(nn.Module):
    """src/models/prior.cpp TransformerBlock: x + proj(attn(ln1(x))), then + fc2(gelu(fc1(ln2(.)))).
    qkv packs each token as [queries of all heads | keys | values], head h at channels h*d."""

    def __init__(self, C, heads, ratio):
        super().__init__()
        self.C, self.heads = C, heads
        # Registered as latent registers them (parameters, then modules): named_parameters()
        # lists them in latent's order, the order of the optimizer's state in a checkpoint.
        self.ln1_weight = nn.Parameter(torch.ones(C))
        self.ln1_bias = nn.Parameter(torch.zeros(C))
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln2_weight = nn.Parameter(torch.ones(C))
        self.ln2_bias = nn.Parameter(torch.zeros(C))
        self.fc1 = nn.Linear(C, ratio * C)
        self.fc2 = nn.Linear(ratio * C, C)

    def forward(self, x):
        B, T, C = x.shape
        H = self.heads
        q, k, v = self.qkv(F.layer_norm(x, (C,), self.ln1_weight, self.ln1_bias, 1e-5)).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale 1/sqrt(d)
        h = x + self.proj(a.transpose(1, 2).reshape(B, T, C))
        return h + self.fc2(F.gelu(self.fc1(F.layer_norm(h, (C,), self.ln2_weight, self.ln2_bias, 1e-5))))


class TokenTransformer(nn.Module):
    """src/models/prior.cpp TokenTransformer: the embedding table [K + classes + 1, C] (the
    start token of label y is row K + y), the position table [tokens, C], the blocks, the final
    layer norm and the projection to K logits; position t predicts token t."""

    def __init__(self, K, classes, C, layers, heads, tokens=49, ratio=4):
        super().__init__()
        self.K, self.classes, self.C = K, classes, C
        self.embedding = nn.Parameter(torch.zeros(K + classes + 1, C))
        self.position = nn.Parameter(torch.zeros(tokens, C))
        self.blocks = []
        for l in range(layers):
            self.blocks.append(TransformerBlock(C, heads, ratio))
            self.add_module(f"block{l}", self.blocks[-1])
        self.ln_weight = nn.Parameter(torch.ones(C))
        self.ln_bias = nn.Parameter(torch.zeros(C))
        self.out = nn.Linear(C, K)

    def logits(self, tokens, labels):
        ids = torch.cat([(labels.long() + self.K).unsqueeze(1), tokens[:, :-1].long()], 1)
        h = F.embedding(ids, self.embedding) + self.position
        for block in self.blocks:
            h = block(h)
        return self.out(F.layer_norm(h, (self.C,), self.ln_weight, self.ln_bias, 1e-5))

    def token_nll(self, tokens, labels):  # [B, tokens] nats
        logits = self.logits(tokens, labels)
        return F.cross_entropy(logits.reshape(-1, self.K), tokens.reshape(-1).long(),
                               reduction="none").reshape(tokens.shape)


class TokenPrior(nn.Module):
    """src/models/prior.cpp TokenPrior: the frozen tokenizer (child "tokenizer", a VQ-VAE or
    FSQ autoencoder in eval mode, tokens without gradients) and the transformer (child
    "prior", the only trainable parameters). A batch is (images, labels) or (images, labels,
    tokens): given tokens (latent's own, from `latent encode`) stand in for the tokenizer's."""

    def __init__(self, cfg):
        super().__init__()
        t = json.loads(cfg["tokenizer_config"])
        if t["model"] not in ("vqvae", "fsq"):
            raise SystemExit(f"compare_torch: the prior's tokenizer is a {t['model']!r} model")
        self.tokenizer = make_model(t)
        for prm in self.tokenizer.parameters():
            prm.requires_grad_(False)
        K = t["codebook_size"] if t["model"] == "vqvae" else math.prod(t["levels"])
        self.classes, self.class_dropout = 10, cfg["class_dropout"]
        self.prior = TokenTransformer(K, self.classes, cfg["prior_width"], cfg["prior_layers"],
                                      cfg["prior_heads"])

    def trainable_named_parameters(self):
        return [("prior." + n, p) for n, p in self.prior.named_parameters()]

    def zero_gradient_mask(self, name, prm):
        """The entries whose gradient is exactly 0 in exact arithmetic: the key biases (the
        middle third of each qkv.bias; q.(k + b) shifts a query's every score by q.b, which the
        softmax ignores). Both sides' gradients there are rounding noise (~1e-11), which AdamW
        divides by sqrt(v) + 1e-8: their updates differ by up to ~lr * noise / 1e-8."""
        if not name.endswith(".qkv.bias"):
            return None
        mask = torch.zeros_like(prm, dtype=torch.bool)
        C = prm.shape[0] // 3
        mask[C : 2 * C] = True
        return mask

    @torch.no_grad()
    def tokens(self, images):
        self.tokenizer.eval()
        if isinstance(self.tokenizer, VqVae):
            idx = self.tokenizer.quantizer.nearest(self.tokenizer.rows(images))
        else:
            idx = self.tokenizer.quantize(images)[1]
        return idx.reshape(images.shape[0], -1)

    def training_loss(self, batch, step):
        images, labels = batch[0], batch[1]
        tokens = batch[2].reshape(images.shape[0], -1) if len(batch) > 2 else self.tokens(images)
        if self.class_dropout > 0:  # latent draws Philox uniforms; the timing does not depend on them
            drop = torch.rand(labels.shape[0]) < self.class_dropout
            labels = torch.where(drop, torch.full_like(labels, self.classes), labels)
        return self.prior.token_nll(tokens, labels).mean()

    def reconstruct(self, x):
        return self.tokenizer.reconstruct(x)

    def after_step(self, step):
        pass


def make_model(cfg):
    kinds = {"ae": Autoencoder, "vae": Vae, "vqvae": VqVae, "fsq": FsqAutoencoder, "prior": TokenPrior}
    return kinds[cfg["model"]](cfg)


def load_into(model, state):
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise SystemExit(f"compare_torch: the checkpoint lacks {missing}")
    for k, v in own.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise SystemExit(f"compare_torch: {k}: PyTorch {tuple(v.shape)}, latent {tuple(state[k].shape)}")
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in own})


# ------------------------------------------------------------------ latent's side

# name in this tool -> (latent train options, train_step_bench model name)
MODELS = {
    "ae": (["--model", "ae"], "ae"),
    "vae": (["--model", "vae"], "vae"),
    "vqvae": (["--model", "vqvae"], "vqvae"),
    "vqvae_ema": (["--model", "vqvae", "--ema", "--dead-code-threshold", "1"], "vqvae_ema"),
    "fsq": (["--model", "fsq"], "fsq"),
    # The transformer prior over the tokens of a VQ-VAE that the tool trains first
    # (tokenizer_checkpoint); class dropout 0, so that the step's labels are the batch's own.
    "prior": (["--model", "prior", "--class-dropout", "0", "--lr-schedule", "constant",
               "--warmup-steps", "0"], "prior"),
}

# `latent train` options of the prior's tokenizer: the default VQ-VAE (K = 512, as
# BM_train_step_prior's), trained briefly so that its codes are not all alike.
TOKENIZER_STEPS = 20


def tokenizer_checkpoint(args, out):
    """A VQ-VAE tokenizer for the prior: `latent train --model vqvae --steps 20` on the first
    20 batches of training images; returns its checkpoint."""
    cmd = [args.latent, "train", "--model", "vqvae", "--device", "cpu", "--steps", str(TOKENIZER_STEPS),
           "--batch-size", str(args.batch), "--train-limit", str(args.batch * TOKENIZER_STEPS),
           "--test-limit", "1", "--log-every", "0", "--out", out, "--silent", "--overwrite"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    subprocess.run(cmd, check=True, env=env_threads(args.threads))
    return os.path.join(out, "checkpoint.safetensors")


def model_options(args, name, tmp):
    """`latent train` options of a model (the prior's name its tokenizer, trained once)."""
    options = list(MODELS[name][0])
    if name == "prior":
        if not args.tokenizer:
            args.tokenizer = tokenizer_checkpoint(args, os.path.join(tmp, "prior-tokenizer"))
        options += ["--tokenizer", args.tokenizer]
    return options


def env_threads(threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["LATENT_BENCH_DEVICE"] = "cpu"
    return env


def latent_checkpoint(args, name, out, options):
    """Three steps on the first `batch` training images (one batch, reshuffled each epoch):
    checkpoint-1 holds the weights (and optimizer, EMA state) after step 1, metrics.jsonl's
    step-2 line the training loss of exactly those weights on those images, and checkpoint-2
    the parameters after step 2 (forward, backward and AdamW from checkpoint-1)."""
    cmd = [args.latent, "train", *options, "--device", "cpu", "--steps", "3",
           "--checkpoint-every", "1", "--log-every", "1",
           "--batch-size", str(args.batch), "--train-limit", str(args.batch),
           "--test-limit", str(args.test_limit), "--out", out, "--silent", "--overwrite"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    subprocess.run(cmd, check=True, env=env_threads(args.threads))
    with open(os.path.join(out, "metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    step2 = [l for l in lines if l.get("step") == 2 and "loss" in l]
    _, cfg = model_state(os.path.join(out, "checkpoint-1.safetensors"))
    if step2[0]["lr"] != cfg["lr"]:  # the PyTorch step takes the config's lr
        raise SystemExit(f"compare_torch: {name}: step 2 ran at lr {step2[0]['lr']}, not the config's {cfg['lr']}")
    return (os.path.join(out, "checkpoint-1.safetensors"), step2[0]["loss"],
            os.path.join(out, "checkpoint-2.safetensors"))


def trainable(model):
    """(name, parameter) of what latent's AdamW updates, in latent's order (the order of the
    checkpoint's optimizer.state.<i>): the prior's transformer only, else every parameter."""
    if hasattr(model, "trainable_named_parameters"):
        return model.trainable_named_parameters()
    return list(model.named_parameters())


def one_step_difference(cfg, ckpt1, ckpt2, batch):
    """Loads checkpoint-1's model and AdamW state, takes latent's step 2 on `batch` (the
    images; the prior's (images, labels, tokens)) in PyTorch and returns the largest
    |parameter - checkpoint-2's| (the backward and AdamW)."""
    tensors, _ = load_safetensors(ckpt1)
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    model = make_model(cfg)
    load_into(model, state)
    model.train()
    named = trainable(model)
    params = [prm for _, prm in named]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=cfg["weight_decay"])
    if f"optimizer.state.{len(params)}.exp_avg" in tensors:
        raise SystemExit("compare_torch: the checkpoint's optimizer holds more parameters than the PyTorch model trains")
    for i, (name, prm) in enumerate(named):
        exp_avg = tensors[f"optimizer.state.{i}.exp_avg"]
        if tuple(exp_avg.shape) != tuple(prm.shape):
            raise SystemExit(f"compare_torch: optimizer.state.{i} is {tuple(exp_avg.shape)}, {name} {tuple(prm.shape)}")
        opt.state[prm] = {"step": tensors[f"optimizer.state.{i}.step"].to(torch.float32).reshape(()),
                          "exp_avg": exp_avg.clone(),
                          "exp_avg_sq": tensors[f"optimizer.state.{i}.exp_avg_sq"].clone()}
    opt.zero_grad(set_to_none=True)
    model.training_loss(batch, 1).backward()
    opt.step()
    after, _ = model_state(ckpt2)
    worst, noise = 0.0, None
    for n, prm in named:
        diff = (prm.detach() - after[n]).abs()
        mask = model.zero_gradient_mask(n, prm) if hasattr(model, "zero_gradient_mask") else None
        if mask is not None:
            noise = max(noise or 0.0, diff[mask].max().item())
            diff = diff[~mask]
        worst = max(worst, diff.max().item())
    return worst, noise


def latent_eval(args, checkpoint):
    """`latent eval --json`'s line: test_mse, and the prior's test_nll_bits_per_token."""
    cmd = [args.latent, "eval", "--checkpoint", checkpoint, "--device", "cpu", "--json",
           "--test-limit", str(args.test_limit)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env_threads(args.threads))
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


def save_npy(path, t):
    """float32 or int32 .npy (format 1.0), without NumPy."""
    descr = {torch.float32: "<f4", torch.int32: "<i4"}[t.dtype]
    shape = "(" + ", ".join(str(d) for d in t.shape) + ("," if t.dim() == 1 else "") + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(array.array("f" if t.dtype == torch.float32 else "i", t.flatten().tolist()).tobytes())


def load_npy(path):
    """A little-endian float32/int32/int64 .npy (C order), without NumPy."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:6] != b"\x93NUMPY":
        raise SystemExit(f"compare_torch: {path} is not a .npy file")
    if blob[6] == 1:
        (n,), begin = struct.unpack("<H", blob[8:10]), 10
    else:
        (n,), begin = struct.unpack("<I", blob[8:12]), 12
    header = ast.literal_eval(blob[begin : begin + n].decode("latin1"))
    dtype = {"<f4": torch.float32, "<i4": torch.int32, "<i8": torch.int64}[header["descr"]]
    if header["fortran_order"]:
        raise SystemExit(f"compare_torch: {path} is in Fortran order")
    data = bytearray(blob[begin + n :])
    return torch.frombuffer(data, dtype=dtype).reshape(header["shape"]).clone()


def latent_tokens(args, tokenizer, images, tmp):
    """`latent encode --checkpoint tokenizer` of the images: latent's own tokens [N, 7, 7]."""
    src, dst = os.path.join(tmp, "encode-images.npy"), os.path.join(tmp, "encode-tokens.npy")
    save_npy(src, images.to(torch.float32))
    subprocess.run([args.latent, "encode", "--checkpoint", tokenizer, "--device", "cpu", src, "-o", dst],
                   check=True, capture_output=True, env=env_threads(args.threads))
    return load_npy(dst)


def idx_images(args, split, n):
    d = args.data_dir or os.environ.get("LATENT_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"
    for name in (f"{split}-images-idx3-ubyte.gz", f"{split}-images-idx3-ubyte"):
        path = os.path.join(d, name)
        if os.path.exists(path):
            raw = (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
            magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
            assert magic == 2051 and rows == 28 and cols == 28, path
            n = min(n, count)
            pix = torch.frombuffer(bytearray(raw[16 : 16 + n * 784]), dtype=torch.uint8)
            return pix.reshape(n, 1, 28, 28).to(torch.float32) / 255.0
    return None


def idx_labels(args, split, n):
    d = args.data_dir or os.environ.get("LATENT_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"
    for name in (f"{split}-labels-idx1-ubyte.gz", f"{split}-labels-idx1-ubyte"):
        path = os.path.join(d, name)
        if os.path.exists(path):
            raw = (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
            magic, count = struct.unpack(">II", raw[:8])
            assert magic == 2049, path
            n = min(n, count)
            return torch.frombuffer(bytearray(raw[8 : 8 + n]), dtype=torch.uint8).to(torch.int64)
    return None


def latent_bench(args, bench_name):
    cmd = [args.bench, f"--benchmark_filter=^BM_train_step_{bench_name}/{args.batch}/",
           "--benchmark_format=json", f"--benchmark_min_time={args.min_time}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env_threads(args.threads))
    runs = json.loads(out.stdout)["benchmarks"]
    if not runs:
        raise SystemExit(f"compare_torch: {args.bench} has no BM_train_step_{bench_name}/{args.batch}")
    return runs[0]["images/s"]


# ------------------------------------------------------------------ PyTorch's side


def torch_run(args, cfg, state):
    model = make_model(cfg)
    load_into(model, state)
    model.train()
    opt = torch.optim.AdamW([prm for _, prm in trainable(model)], lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=cfg["weight_decay"])
    x = torch.rand(args.batch, 1, 28, 28)
    if cfg["model"] == "prior":
        # Images and labels, tokenized inside the step as latent's is; class dropout at
        # BM_train_step_prior's (the default) 0.1, not the check's 0.
        x = (x, torch.randint(0, 10, (args.batch,)))
        model.class_dropout = 0.1

    def step(s):
        opt.zero_grad(set_to_none=True)
        loss = model.training_loss(x, s)
        loss.backward()
        opt.step()
        model.after_step(s)

    for s in range(3):
        step(s)
    steps, start = 0, time.perf_counter()
    while True:
        step(3 + steps)
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= args.min_time:
            return steps * args.batch / elapsed


def load1():
    return os.getloadavg()[0]


# ------------------------------------------------------------------ one epoch of each


def latent_epoch(args, name, out, options):
    """`latent train` for one epoch of the 60,000 training images (468 steps of 128, the last
    partial batch dropped); returns img/s over its training time (metrics.jsonl's final
    train_seconds: the steps and the batch assembly, not the start-up or the evaluation)."""
    cmd = [args.latent, "train", *options, "--device", "cpu", "--epochs", "1",
           "--batch-size", str(args.batch), "--test-limit", "1", "--log-every", "0",
           "--out", out, "--silent", "--overwrite"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    subprocess.run(cmd, check=True, env=env_threads(args.threads))
    with open(os.path.join(out, "metrics.jsonl")) as f:
        final = [json.loads(l) for l in f if '"final"' in l][-1]
    return final["steps_this_run"] * args.batch / final["train_seconds"]


def torch_epoch(args, cfg, state, train, labels):
    """The same epoch in PyTorch: a fresh permutation, batches of --batch gathered from the
    training images in memory, the training step of torch_run; img/s over the loop."""
    model = make_model(cfg)
    load_into(model, state)
    model.train()
    opt = torch.optim.AdamW([prm for _, prm in trainable(model)], lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=cfg["weight_decay"])
    steps = train.shape[0] // args.batch
    start = time.perf_counter()
    order = torch.randperm(train.shape[0])
    for s in range(steps):
        rows = order[s * args.batch : (s + 1) * args.batch]
        x = (train[rows], labels[rows]) if cfg["model"] == "prior" else train[rows]
        opt.zero_grad(set_to_none=True)
        model.training_loss(x, s).backward()
        opt.step()
        model.after_step(s)
    return steps * args.batch / (time.perf_counter() - start)


# glibc malloc settings for --torch-malloc tuned: large blocks from the heap instead of a
# fresh mmap each (whose pages fault in on every training step), and no trimming.
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 34)}


def torch_timing(args, kind, checkpoint):
    """One PyTorch timing run (kind "step" or "epoch") in a fresh Python process, so that no
    run inherits another's heap: with glibc's default malloc, PyTorch's step runs up to 1.6x
    faster in a process that has once freed a large block (its mmap threshold rises), so
    in-process runs would favour whichever model comes later."""
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", kind, "--worker-checkpoint", checkpoint,
           "--batch", str(args.batch), "--threads", str(args.threads), "--min-time", str(args.min_time)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    env = dict(os.environ)
    if args.torch_malloc == "tuned":
        env.update(TUNED_MALLOC)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def torch_worker(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    state, cfg = model_state(args.worker_checkpoint)
    if args.torch_worker == "step":
        print(torch_run(args, cfg, state))
    else:
        print(torch_epoch(args, cfg, state, idx_images(args, "train", 60000), idx_labels(args, "train", 60000)))
    return 0


class CompetingLoad:
    """--load N: N busy processes (a Python loop each) running for as long as the timing."""

    def __init__(self, n):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]

    def stop(self):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def main():
    p = argparse.ArgumentParser(description="latent's cpu training step beside PyTorch eager's")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--build", default=os.path.join(root, "build"),
                   help="latent build directory (tools/latent, bench/train_step_bench; default: the repository's build/)")
    p.add_argument("--models", default="ae,vae,vqvae_ema,fsq,prior",
                   help="comma list of ae, vae, vqvae, vqvae_ema, fsq, prior")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pairs", type=int, default=5, help="interleaved latent/PyTorch timing pairs per model")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds per timing run")
    p.add_argument("--test-limit", type=int, default=500, help="test images of the loss check")
    p.add_argument("--tolerance", type=float, default=1e-5)
    p.add_argument("--data-dir", default="")
    p.add_argument("--prior-tokenizer", dest="tokenizer", default="",
                   help="the prior's tokenizer checkpoint (vqvae or fsq; default: a VQ-VAE the tool trains for "
                        f"{TOKENIZER_STEPS} steps); BM_train_step_prior's is a default VQ-VAE, so time with a default one")
    p.add_argument("--check-only", action="store_true", help="the loss check, no timing")
    p.add_argument("--no-check", action="store_true", help="timing only (weights still from a latent checkpoint)")
    p.add_argument("--epoch-pairs", type=int, default=0,
                   help="also time N interleaved pairs of one whole training epoch per model (0: none)")
    p.add_argument("--load", type=int, default=0,
                   help="run N busy processes beside every timing run (a competing load on N cores)")
    p.add_argument("--torch-malloc", choices=["default", "tuned"], default="default",
                   help="PyTorch's processes with glibc's default malloc, or with large blocks kept on the heap")
    p.add_argument("--torch-worker", choices=["step", "epoch"], help=argparse.SUPPRESS)
    p.add_argument("--worker-checkpoint", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    args.latent = os.path.join(args.build, "tools", "latent")
    args.bench = os.path.join(args.build, "bench", "train_step_bench")
    for exe in (args.latent, args.bench):
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"compare_torch: no {exe}: build latent (Release) first, or pass --build DIR")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; latent from {args.build}; "
          f"batch {args.batch}; {os.cpu_count()} cpus", flush=True)

    images = None if args.no_check else idx_images(args, "t10k", args.test_limit)
    if args.epoch_pairs > 0 and idx_images(args, "train", 1) is None:
        raise SystemExit("compare_torch: --epoch-pairs needs the Fashion-MNIST training images")
    load = CompetingLoad(args.load)
    try:
        return run_models(args, images)
    finally:
        load.stop()


def run_models(args, images):
    train_images = None if args.no_check else idx_images(args, "train", args.batch)
    if images is None and not args.no_check:
        print("no Fashion-MNIST test images found: the loss check is skipped", flush=True)
    failed = False
    rows, epoch_rows = [], []
    with tempfile.TemporaryDirectory(prefix="compare-torch-") as tmp:
        for name in args.models.split(","):
            if name not in MODELS:
                raise SystemExit(f"compare_torch: unknown model {name!r} ({', '.join(MODELS)})")
            options = model_options(args, name, tmp)
            ckpt, train_loss, ckpt2 = latent_checkpoint(args, name, os.path.join(tmp, name), options)
            state, cfg = model_state(ckpt)
            checks = []
            prior = cfg["model"] == "prior"
            if prior and train_images is not None:
                # The prior's batch: the images, their labels (class dropout 0) and latent's
                # own tokens of them (`latent encode` with the tokenizer checkpoint), so that
                # a near-tie of the nearest code cannot move the loss; the PyTorch tokenizer's
                # tokens must agree with them (the tokens the timed PyTorch step computes).
                train_labels = idx_labels(args, "train", args.batch)
                if train_labels is None:
                    raise SystemExit("compare_torch: the prior's check needs the Fashion-MNIST labels (train-labels-idx1-ubyte)")
                test_labels = None if images is None else idx_labels(args, "t10k", images.shape[0])
                both = train_images if images is None else torch.cat([train_images, images])
                theirs_tokens = latent_tokens(args, args.tokenizer, both, tmp).reshape(both.shape[0], -1)
                model = make_model(cfg)
                load_into(model, state)
                ours_tokens = model.tokens(both)
                checks.append((f"tokens != `latent encode`'s, of {both.numel() // 784 * 49}", 0.0,
                               float((ours_tokens != theirs_tokens.to(ours_tokens.dtype)).sum().item())))
                train_batch = (train_images, train_labels, theirs_tokens[: train_images.shape[0]])
                test_batch = None if images is None else (images, test_labels, theirs_tokens[train_images.shape[0] :])
            else:
                train_batch, test_batch = train_images, None
            if train_images is not None and cfg["model"] != "vae":  # the VAE's loss is noisy
                model = make_model(cfg)
                load_into(model, state)
                model.train()
                with torch.no_grad():
                    ours = model.training_loss(train_batch, 1).item()
                checks.append((f"training loss, step 2, {train_images.shape[0]} train images", train_loss, ours))
                diff, noise = one_step_difference(cfg, ckpt, ckpt2, train_batch)
                checks.append(("parameters" + (" but key biases" if noise is not None else " after step 2") + ": max |diff|", 0.0, diff))
                if noise is not None:  # reported, not checked
                    checks.append(("key biases (gradient 0: noise): max |diff|", 0.0, noise, None))
            if images is not None:
                model = make_model(cfg)
                load_into(model, state)
                model.eval()
                with torch.no_grad():
                    ours = F.mse_loss(model.reconstruct(images), images, reduction="sum").item() / images.numel()
                evaluated = latent_eval(args, ckpt)
                checks.append((f"test MSE, {images.shape[0]} test images", evaluated["test_mse"], ours))
                if prior and test_batch is not None:
                    with torch.no_grad():
                        nll = model.prior.token_nll(test_batch[2], test_batch[1].to(torch.int64))
                    checks.append((f"test NLL bits/token, {images.shape[0]} test images",
                                   evaluated["test_nll_bits_per_token"], nll.sum().item() / math.log(2.0) / nll.numel()))
            for what, theirs, ours, *tolerance in checks:
                diff = abs(ours - theirs)
                tolerance = tolerance[0] if tolerance else args.tolerance
                ok = tolerance is None or diff <= tolerance
                failed |= not ok
                print(f"check {name:10s} {what:42s} latent {theirs:.8f}  PyTorch {ours:.8f}  "
                      f"|diff| {diff:.2e}  {'(not checked)' if tolerance is None else 'ok' if ok else 'MISMATCH'}",
                      flush=True)
            bench_name = MODELS[name][1]
            if args.check_only or bench_name is None:
                continue
            if prior:
                print("  prior, PyTorch side: tokens from its VQ-VAE encoder + nearest code (no grad), attention by "
                      "F.scaled_dot_product_attention(is_causal=True), F.layer_norm, F.gelu, F.cross_entropy", flush=True)
            ours_ips, theirs_ips, loads = [], [], []
            for i in range(args.pairs):
                # Alternate which side runs first, so a load that rises or falls through a
                # pair does not always favour the same side.
                sides = [("latent", lambda: theirs_ips.append(latent_bench(args, bench_name))),
                         ("torch", lambda: ours_ips.append(torch_timing(args, "step", ckpt)))]
                for _, run in sides if i % 2 == 0 else sides[::-1]:
                    loads.append(load1())
                    run()
                print(f"  {name} pair {i + 1}: latent {theirs_ips[-1]:8.1f} img/s  PyTorch {ours_ips[-1]:8.1f} img/s  "
                      f"(load {loads[-2]:.2f}/{loads[-1]:.2f})", flush=True)
            rows.append((name, statistics.median(theirs_ips), max(theirs_ips), statistics.median(ours_ips),
                         max(ours_ips), min(loads), max(loads)))
            ours_ips, theirs_ips, loads = [], [], []
            for i in range(args.epoch_pairs):
                sides = [lambda: theirs_ips.append(latent_epoch(args, name, os.path.join(tmp, name + "-epoch"), options)),
                         lambda: ours_ips.append(torch_timing(args, "epoch", ckpt))]
                for run in sides if i % 2 == 0 else sides[::-1]:
                    loads.append(load1())
                    run()
                print(f"  {name} epoch pair {i + 1}: latent {theirs_ips[-1]:8.1f} img/s  PyTorch {ours_ips[-1]:8.1f} img/s  "
                      f"(load {loads[-2]:.2f}/{loads[-1]:.2f})", flush=True)
            if args.epoch_pairs > 0:
                epoch_rows.append((name + " (epoch)", statistics.median(theirs_ips), max(theirs_ips),
                                   statistics.median(ours_ips), max(ours_ips), min(loads), max(loads)))
    if rows or epoch_rows:
        print()
        loaded = f"; beside {args.load} busy process{'es' if args.load != 1 else ''}" if args.load else ""
        loaded += "; PyTorch with large blocks kept on the heap (--torch-malloc tuned)" if args.torch_malloc == "tuned" else ""
        print(f"training step, batch {args.batch}, {args.threads} threads each{loaded}, {args.pairs} interleaved "
              f"pairs of >= {args.min_time:g} s runs" +
              (f"; one epoch (60,000 images), {args.epoch_pairs} interleaved pairs" if epoch_rows else "") +
              "; ratio = latent median / PyTorch median (> 1: latent faster)")
        print("| model | latent img/s median | latent best | PyTorch img/s median | PyTorch best | ratio | load avg (1 min) |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for name, lm, lb, tm, tb, lo, hi in rows + epoch_rows:
            print(f"| {name} | {lm:.0f} | {lb:.0f} | {tm:.0f} | {tb:.0f} | {lm / tm:.2f} | {lo:.2f}-{hi:.2f} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""PyTorch + lightly reference for the quality benchmark: one method trained with its recipe.

    python quality.py METHOD [--epochs N] [--dataset fashion-mnist-10k|fashion-mnist]
                             [--threads T] [--seed S]

The same job as `selfsup pretrain --method METHOD --epochs N`: ConvNet-S, the method's recipe
read from `recipes/METHOD.toml` (heads, optimizer, warm-up + cosine schedule, weight decay,
temperature, momentum), batch 128 with the last partial batch dropped, the method's view preset,
then the kNN (k = 20, τ 0.1, weighted) of the test features against the training features, a
linear probe (30 epochs of Adam 1e-3, batch 256, standardised features) and RankMe. Built from
what a PyTorch user reaches for: lightly 1.6.0's heads, losses, `update_momentum` and
`cosine_schedule`, `copy.deepcopy` teachers with `deactivate_requires_grad`.

Prints one JSON line: {"method", "impl": "pytorch+lightly", "knn_acc", "linear_acc", "rankme",
"images_per_s", "train_s", "steps"}.
"""

import argparse
import copy
import json
import math
import time
import tomllib
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import nn

from bench import REPO, ConvNetS, knn_accuracy, load_split

BATCH = 128


# --- views: selfsup's presets, batched ------------------------------------------------------


def resized_crop_flip(x, size, scale, gen):
    """selfsup's resized_crop = torchvision's RandomResizedCrop on square images (area U(scale),
    aspect log-uniform in [3/4, 4/3], up to ten draws for a box inside the image, else the
    whole image; bilinear, edge pixels clamped) then horizontal_flip (p 0.5)."""
    n = x.shape[0]
    u = lambda lo, hi: torch.empty(n).uniform_(lo, hi, generator=gen)
    area = torch.empty(n, 10).uniform_(*scale, generator=gen)
    ratio = torch.exp(torch.empty(n, 10).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen))
    w, h = torch.sqrt(area * ratio), torch.sqrt(area / ratio)
    fits = (w <= 1) & (h <= 1)
    first = fits.float().argmax(1)
    rows = torch.arange(n)
    w = torch.where(fits.any(1), w[rows, first], torch.ones(n))
    h = torch.where(fits.any(1), h[rows, first], torch.ones(n))
    cx = (1 - w) * u(0, 1) * 2 - (1 - w)
    cy = (1 - h) * u(0, 1) * 2 - (1 - h)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    # "border": samples beyond the outermost pixel centres take the edge pixel, as
    # torchvision's crop + resize (and selfsup's resampling) do.
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def jitter(x, p, gen):
    """torchvision's brightness ×U(0.6, 1.4) then contrast ×U(0.6, 1.4) around the mean, each
    clamped to [0, 1], with probability p (selfsup's color_jitter)."""
    n = x.shape[0]
    apply = (torch.rand(n, generator=gen) < p).float().view(n, 1, 1, 1)
    b = torch.empty(n).uniform_(0.6, 1.4, generator=gen).view(n, 1, 1, 1)
    c = torch.empty(n).uniform_(0.6, 1.4, generator=gen).view(n, 1, 1, 1)
    b = apply * b + (1 - apply)
    c = apply * c + (1 - apply)
    x = (x * b).clamp(0, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp(0, 1)


def blur(x, sigma, p, gen):
    """Gaussian blur, σ U(sigma), kernel radius ⌈3σ⌉, reflected borders, with probability p."""
    out = x.clone()
    for i in range(x.shape[0]):
        s = float(torch.empty(1).uniform_(*sigma, generator=gen))
        if float(torch.rand(1, generator=gen)) < p:
            radius = min(math.ceil(3 * s), x.shape[-1] - 1)
            out[i] = TF.gaussian_blur(x[i], [2 * radius + 1] * 2, [s, s])
    return out


def solarize(x, p, gen):
    n = x.shape[0]
    apply = (torch.rand(n, generator=gen) < p).view(n, 1, 1, 1)
    return torch.where(apply & (x >= 0.5), 1 - x, x)


def simclr_view(x, gen, side=28):
    return jitter(resized_crop_flip(x, side, (0.3, 1.0), gen), 1.0, gen)


def byol_views(x, gen):
    def view(blur_p, solarize_p):
        v = jitter(resized_crop_flip(x, 28, (0.3, 1.0), gen), 0.8, gen)
        return solarize(blur(v, (0.1, 1.0), blur_p, gen), solarize_p, gen)

    return [view(1.0, 0.0), view(0.1, 0.2)]


def dino_views(x, gen, locals_):
    global_ = [jitter(resized_crop_flip(x, 28, (0.4, 1.0), gen), 0.8, gen) for _ in range(2)]
    local = [jitter(resized_crop_flip(x, 12, (0.05, 0.4), gen), 0.8, gen) for _ in range(locals_)]
    return global_ + local


# --- methods ------------------------------------------------------------------------------


def teacher(module):
    from lightly.models.utils import deactivate_requires_grad

    t = copy.deepcopy(module)
    deactivate_requires_grad(t)
    return t


class Method(nn.Module):
    """One of the recipes' methods; `loss(images, step, total, epoch)` and `after_step`."""

    def __init__(self, name, r, total_steps):
        super().__init__()
        from lightly import loss as L
        from lightly.models import modules as H
        from lightly.models.modules.heads import ProjectionHead

        self.name, self.r, self.total = name, r, total_steps
        self.backbone = ConvNetS()
        hidden, out, pred = r["hidden_dim"], r["projection_dim"], r["predictor_hidden_dim"]
        if name == "simclr":
            self.head = H.SimCLRProjectionHead(128, hidden, out)
            self.criterion = L.NTXentLoss(temperature=r["temperature"])
        elif name == "moco":
            self.head = H.MoCoProjectionHead(128, hidden, out)
            self.criterion = L.NTXentLoss(temperature=r["temperature"], memory_bank_size=(r["queue_size"], out))
        elif name == "moco-v3":
            bn = lambda d, affine=True: nn.BatchNorm1d(d, affine=affine)
            self.head = ProjectionHead([
                (128, hidden, bn(hidden), nn.ReLU()),
                (hidden, hidden, bn(hidden), nn.ReLU()),
                (hidden, out, bn(out, affine=False), None),
            ])
            self.predictor = ProjectionHead([
                (out, pred, bn(pred), nn.ReLU()),
                (pred, out, bn(out, affine=False), None),
            ])
        elif name == "byol":
            self.head = H.BYOLProjectionHead(128, hidden, out)
            self.predictor = H.BYOLPredictionHead(out, pred, out)
            self.criterion = L.NegativeCosineSimilarity()
        elif name == "simsiam":
            self.head = H.SimSiamProjectionHead(128, out, out)
            self.predictor = H.SimSiamPredictionHead(out, pred, out)
            self.criterion = L.NegativeCosineSimilarity()
        elif name == "barlow-twins":
            self.head = H.BarlowTwinsProjectionHead(128, hidden, out)
            self.criterion = L.BarlowTwinsLoss(lambda_param=r["barlow_lambda"])
        elif name == "vicreg":
            self.head = H.BarlowTwinsProjectionHead(128, hidden, out)
            self.criterion = L.VICRegLoss()
        elif name == "dino":
            self.head = H.DINOProjectionHead(128, hidden, out, r["dino_output_dim"])
            warmup = max(1, math.ceil(min(r["epochs"], 30) / 3))
            self.criterion = L.DINOLoss(output_dim=r["dino_output_dim"], warmup_teacher_temp_epochs=warmup)
        else:
            raise SystemExit(f"quality.py: no reference for method '{name}'")
        if name in ("moco", "moco-v3", "byol", "dino"):
            self.backbone_t = teacher(self.backbone)
            if name == "dino":
                # A weight-normalised head cannot be deep-copied (lightly's DINO example builds
                # the teacher head anew); start it equal to the student's.
                self.head_t = H.DINOProjectionHead(128, hidden, out, r["dino_output_dim"])
                self.head_t.load_state_dict(self.head.state_dict())
                from lightly.models.utils import deactivate_requires_grad

                deactivate_requires_grad(self.head_t)
            else:
                self.head_t = teacher(self.head)

    def momentum(self, step):
        from lightly.utils.scheduler import cosine_schedule

        m = self.r["momentum"]
        return m if self.name == "moco" else cosine_schedule(step, self.total, m, 1.0)

    def after_step(self, step):
        from lightly.models.utils import update_momentum

        if hasattr(self, "backbone_t"):
            m = self.momentum(step)
            update_momentum(self.backbone, self.backbone_t, m)
            update_momentum(self.head, self.head_t, m)

    def loss(self, x, gen, epoch):
        n = self.name
        if n == "dino":
            views = dino_views(x, gen, self.r["local_crops"])
            t_out = [self.head_t(self.backbone_t(v)) for v in views[:2]]
            s_out = [self.head(self.backbone(v)) for v in views]
            return self.criterion(t_out, s_out, epoch=epoch)
        v0, v1 = byol_views(x, gen) if n in ("byol", "moco-v3") else (simclr_view(x, gen), simclr_view(x, gen))
        if n in ("simclr", "barlow-twins", "vicreg"):
            return self.criterion(self.head(self.backbone(v0)), self.head(self.backbone(v1)))
        if n == "moco":
            q = self.head(self.backbone(v0))
            with torch.no_grad():
                k = self.head_t(self.backbone_t(v1))
            return self.criterion(q, k)
        if n == "moco-v3":
            q0 = self.predictor(self.head(self.backbone(v0)))
            q1 = self.predictor(self.head(self.backbone(v1)))
            with torch.no_grad():
                k0 = self.head_t(self.backbone_t(v0))
                k1 = self.head_t(self.backbone_t(v1))
            tau = self.r["temperature"]

            def ctr(q, k):
                logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / tau
                return F.cross_entropy(logits, torch.arange(q.shape[0])) * 2 * tau

            return ctr(q0, k1) + ctr(q1, k0)
        if n == "byol":
            p0 = self.predictor(self.head(self.backbone(v0)))
            p1 = self.predictor(self.head(self.backbone(v1)))
            with torch.no_grad():
                z0 = self.head_t(self.backbone_t(v0))
                z1 = self.head_t(self.backbone_t(v1))
            return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))
        if n == "simsiam":
            z0, z1 = self.head(self.backbone(v0)), self.head(self.backbone(v1))
            p0, p1 = self.predictor(z0), self.predictor(z1)
            return 0.5 * (self.criterion(p0, z1.detach()) + self.criterion(p1, z0.detach()))
        raise AssertionError(n)


def recipe(method, epochs):
    """recipes/METHOD.toml over the CLI's defaults (crates/selfsup-cli/src/config.rs)."""
    r = {
        "optimizer": "adam", "lr": 2e-3, "lr_schedule": "constant", "warmup_epochs": 0.0,
        "min_lr": 0.0, "weight_decay": 1e-6, "clip_grad": 0.0, "temperature": 0.2,
        "hidden_dim": 128, "projection_dim": 64, "predictor_hidden_dim": 128, "momentum": 0.99,
        "queue_size": 4096, "barlow_lambda": 5e-3, "dino_output_dim": 1024, "local_crops": 4,
        "freeze_last_layer": 0.0,
    }
    r.update(tomllib.loads((REPO / "recipes" / f"{method}.toml").read_text()))
    r["epochs"] = epochs
    return r


def lr_at(r, step, steps_per_epoch, total):
    """The CLI's schedule: linear warm-up from lr/w to lr over w steps, then a cosine from lr to
    min_lr over the remaining steps (Burn's Linear then CosineAnnealing schedulers)."""
    lr = r["lr"]
    if r["lr_schedule"] == "constant":
        return lr
    w = min(round(r["warmup_epochs"] * steps_per_epoch), total - 1)
    if step < w:
        return lr / w + step * (lr - lr / w) / w
    t = step - w
    return r["min_lr"] + (lr - r["min_lr"]) * (1 + math.cos(math.pi * t / (total - w))) / 2


@torch.no_grad()
def embed(backbone, images):
    backbone.eval()
    return torch.cat([backbone(c.unsqueeze(1).float() / 255.0) for c in images.split(512)])


def linear_probe(z_train, y_train, z_test, y_test, classes, seed):
    """selfsup_eval::linear_probe's protocol: standardised features, 30 epochs of Adam 1e-3,
    batch 256."""
    mean, std = z_train.mean(0), z_train.std(0).clamp_min(1e-6)
    z_train, z_test = (z_train - mean) / std, (z_test - mean) / std
    torch.manual_seed(seed)
    probe = nn.Linear(z_train.shape[1], classes)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(30):
        for idx in torch.randperm(z_train.shape[0], generator=gen).split(256):
            loss = F.cross_entropy(probe(z_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (probe(z_test).argmax(1) == y_test).float().mean().item()


def rank_me(z):
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum() + 1e-7
    return math.exp(-(p * p.log()).sum().item())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("method")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dataset", default="fashion-mnist-10k")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = (
        REPO / "crates/selfsup-data/data/fashion-mnist-10k"
        if args.dataset == "fashion-mnist-10k"
        else Path.home() / ".cache/selfsup/data" / args.dataset
    )
    x_train, y_train, x_test, y_test = load_split(folder)
    r = recipe(args.method, args.epochs)
    steps_per_epoch = x_train.shape[0] // BATCH
    total = steps_per_epoch * args.epochs
    torch.manual_seed(args.seed)
    model = Method(args.method, r, total)
    params = [p for p in model.parameters() if p.requires_grad]
    if r["optimizer"] == "adamw":
        opt = torch.optim.AdamW(params, lr=r["lr"], eps=1e-8, weight_decay=r["weight_decay"])
    else:
        opt = torch.optim.Adam(params, lr=r["lr"], eps=1e-8, weight_decay=r["weight_decay"])
    gen = torch.Generator().manual_seed(args.seed ^ 0xA5A5)
    step, started = 0, time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(x_train.shape[0], generator=torch.Generator().manual_seed(args.seed + epoch))
        model.train()
        for i in range(steps_per_epoch):
            x = x_train[order[i * BATCH:][:BATCH]].unsqueeze(1).float() / 255.0
            loss = model.loss(x, gen, epoch)
            for group in opt.param_groups:
                group["lr"] = lr_at(r, step, steps_per_epoch, total)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if step < round(r["freeze_last_layer"] * steps_per_epoch):
                # lightly's DINOProjectionHead.cancel_last_layer_gradients, counted in steps.
                for p in model.head.last_layer.parameters():
                    p.grad = None
            if r["clip_grad"] > 0:
                for p in params:
                    if p.grad is not None:
                        torch.nn.utils.clip_grad_norm_([p], r["clip_grad"])
            opt.step()
            model.after_step(step)
            step += 1
    train_s = time.perf_counter() - started
    z_train, z_test = embed(model.backbone, x_train), embed(model.backbone, x_test)
    classes = int(y_train.max()) + 1
    print(json.dumps({
        "method": args.method,
        "impl": "pytorch+lightly",
        "dataset": args.dataset,
        "epochs": args.epochs,
        "steps": step,
        "knn_acc": knn_accuracy(z_train, y_train, z_test, y_test, classes),
        "linear_acc": linear_probe(z_train, y_train, z_test, y_test, classes, args.seed),
        "rankme": rank_me(z_test),
        "train_s": train_s,
        "images_per_s": step * BATCH / train_s,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()

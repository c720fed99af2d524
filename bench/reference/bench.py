"""PyTorch reference for `cargo xtask bench`: one workload per process, one JSON line out.

Mirrors `crates/selfsup-bench/src/workloads.rs` workload by workload, with the libraries a
PyTorch user would reach for: lightly 1.6.0 (NT-Xent, Barlow Twins, VICReg, the SimCLR
projection head) and pytorch-metric-learning 2.9.0 (batch-hard triplets).

    python bench.py WORKLOAD [--warmup N] [--iters N] [--limit N] [--threads T] [--budget-s S]

Prints {"workload", "impl": "pytorch", "times_s", "rss_idle_bytes", "rss_peak_bytes", "extra"}.
A workload that cannot run here prints {"workload", "impl", "skipped": reason} and exits 0.
"""

import argparse
import gzip
import json
import math
import os
import struct
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BATCH = 256
REPO = Path(__file__).resolve().parents[2]
DEVICE = torch.device("cpu")


def rss_bytes(field):
    """A /proc/self/status memory field in bytes (0 where it cannot be read)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


BUDGET_S = math.inf


def timed(warmup, iters, step):
    """Runs step(i) warmup + iters times; returns the timed iterations' seconds. Stops early
    once BUDGET_S seconds have passed and one iteration is timed."""
    began = time.perf_counter()
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        step(i)
        if i >= warmup:
            times.append(time.perf_counter() - start)
        if times and time.perf_counter() - began > BUDGET_S:
            break
    return times


def pair_loss(args, n, d, loss_fn):
    """Forward + backward of a loss of two [n, d] embeddings."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, d, generator=gen).to(DEVICE)
    b = torch.randn(n, d, generator=gen).to(DEVICE)

    def step(_):
        za = a.clone().requires_grad_()
        zb = b.clone().requires_grad_()
        loss_fn(za, zb).backward()
        float(za.grad.sum() + zb.grad.sum())

    return timed(args.warmup, args.iters, step), {}


def nt_xent(args, n):
    from lightly.loss import NTXentLoss

    return pair_loss(args, n, 128, NTXentLoss(temperature=0.5))


def triplet_batch_hard(args):
    from pytorch_metric_learning import losses, miners

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 128, generator=gen).to(DEVICE)
    labels = (torch.arange(256) % 16).to(DEVICE)
    miner = miners.BatchHardMiner()
    loss_fn = losses.TripletMarginLoss(margin=0.05)

    def step(_):
        e = x.clone().requires_grad_()
        loss_fn(e, labels, miner(e, labels)).backward()
        float(e.grad.sum())

    return timed(args.warmup, args.iters, step), {}


def barlow_twins(args):
    from lightly.loss import BarlowTwinsLoss

    return pair_loss(args, 256, 2048, BarlowTwinsLoss(lambda_param=5e-3))


def vicreg(args):
    from lightly.loss import VICRegLoss

    return pair_loss(args, 256, 2048, VICRegLoss())


def skip(reason):
    raise Skip(reason)


class Skip(Exception):
    pass


# --- SimCLR with ConvNet-S -------------------------------------------------------------------


class ConvNetS(nn.Module):
    """selfsup_nn::ConvNetS: [conv3×3-BN-ReLU]×2 (32), pool, ×2 (64), pool, ×1 (128), GAP."""

    def __init__(self):
        super().__init__()
        widths = [1, 32, 32, 64, 64, 128]
        layers = []
        for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            if i in (1, 3):
                layers.append(nn.MaxPool2d(2))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class SimCLR(nn.Module):
    def __init__(self):
        super().__init__()
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        self.backbone = ConvNetS()
        self.head = SimCLRProjectionHead(128, 128, 64)
        self.loss = NTXentLoss(temperature=0.5)

    def forward(self, x0, x1):
        return self.loss(self.head(self.backbone(x0)), self.head(self.backbone(x1)))


def simclr_view(x, gen):
    """selfsup's simclr_grayscale(28) preset, batched: resized crop (area U(0.3, 1), aspect
    log-uniform in [3/4, 4/3], bilinear, zero padding), flip p 0.5, brightness ×U(0.6, 1.4)
    (torchvision's), contrast ×U(0.6, 1.4) around the per-image mean, each clamped to [0, 1]."""
    n = x.shape[0]
    u = lambda lo, hi: torch.empty(n).uniform_(lo, hi, generator=gen).to(DEVICE)
    area = u(0.3, 1.0)
    ratio = torch.exp(u(math.log(3 / 4), math.log(4 / 3)))
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - w) * u(0, 1) * 2 - (1 - w)
    cy = (1 - h) * u(0, 1) * 2 - (1 - h)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).to(DEVICE)
    theta = torch.zeros(n, 2, 3, device=DEVICE)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = (x * u(0.6, 1.4).view(n, 1, 1, 1)).clamp(0.0, 1.0)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.6, 1.4).view(n, 1, 1, 1) + mean
    return x.clamp(0.0, 1.0)


def read_idx(path):
    with gzip.open(path) if str(path).endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)


def load_split(folder):
    folder = Path(folder)
    get = lambda stem: read_idx(next(p for p in folder.glob(stem + "*")))
    return (
        get("train-images-idx3-ubyte"),
        get("train-labels-idx1-ubyte").long(),
        get("t10k-images-idx3-ubyte"),
        get("t10k-labels-idx1-ubyte").long(),
    )


class Trainer:
    """The CLI's training step without its online probe: Adam lr 1e-3, weight decay 1e-6."""

    def __init__(self):
        torch.manual_seed(0)
        self.model = SimCLR().to(DEVICE)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3, eps=1e-8, weight_decay=1e-6)
        self.gen = torch.Generator().manual_seed(0xA5A5)

    def step(self, images_u8):
        self.model.train()
        x = images_u8.to(DEVICE).unsqueeze(1).float().div_(255.0)
        loss = self.model(simclr_view(x, self.gen), simclr_view(x, self.gen))
        value = loss.item()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return value


def simclr_step(args):
    images, _, _, _ = load_split(REPO / "crates/selfsup-data/data/fashion-mnist-10k")
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(0))
    batches = images.shape[0] // BATCH
    trainer = Trainer()

    def step(i):
        trainer.step(images[order[(i % batches) * BATCH :][:BATCH]])

    times = timed(args.warmup, args.iters, step)
    return times, {"images_per_s": BATCH / sorted(times)[len(times) // 2]}


def simclr_resnet18_step(args):
    """selfsup-bench's simclr-resnet18-step: ResNet-18 with the CIFAR stem (3×3 stride-1 stem
    convolution, no max-pool), lightly's SimCLRProjectionHead(512, 512, 128), NTXentLoss(0.5),
    Adam; a fixed batch of 128 uniform 32×32 RGB images and its horizontal flip."""
    import torchvision
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    torch.manual_seed(0)
    backbone = torchvision.models.resnet18()
    backbone.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    backbone.maxpool = nn.Identity()
    backbone.fc = nn.Identity()
    model = nn.ModuleDict({"backbone": backbone, "head": SimCLRProjectionHead(512, 512, 128)}).to(DEVICE)
    loss_fn = NTXentLoss(temperature=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8, weight_decay=1e-6)
    images = torch.rand(128, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(DEVICE)

    def step(_):
        model.train()
        z = lambda x: model["head"](model["backbone"](x))
        loss = loss_fn(z(images), z(images.flip(3)))
        loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()

    times = timed(args.warmup, args.iters, step)
    return times, {"images_per_s": 128 / sorted(times)[len(times) // 2]}


@torch.no_grad()
def embed(backbone, images):
    backbone.eval()
    return torch.cat([backbone(c.to(DEVICE).unsqueeze(1).float() / 255.0) for c in images.split(512)])


@torch.no_grad()
def knn_accuracy(bank, bank_labels, queries, query_labels, classes, k=20, temperature=0.1):
    bank = F.normalize(bank, dim=1)
    queries = F.normalize(queries, dim=1)
    correct = 0
    for q, y in zip(queries.split(1024), query_labels.split(1024)):
        sim, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(q.shape[0], classes, device=DEVICE).scatter_add_(1, bank_labels[idx], (sim / temperature).exp())
        correct += (votes.argmax(1) == y).sum().item()
    return correct / queries.shape[0]


def knn_10k_60k(args):
    """selfsup-bench's knn-10k-60k: Gaussian features, labels i mod 10."""
    gen = torch.Generator().manual_seed(0)
    bank = torch.randn(60_000, 128, generator=gen).to(DEVICE)
    queries = torch.randn(10_000, 128, generator=gen).to(DEVICE)
    bank_labels = (torch.arange(60_000) % 10).to(DEVICE)
    query_labels = (torch.arange(10_000) % 10).to(DEVICE)
    extra = {}

    def step(_):
        extra["knn_acc"] = knn_accuracy(bank, bank_labels, queries, query_labels, 10)

    return timed(args.warmup, args.iters, step), extra


def simclr_epoch_knn(args):
    cache = Path(os.environ.get("SELFSUP_CACHE", Path.home() / ".cache/selfsup"))
    folder = cache / "data/fashion-mnist"
    if not folder.is_dir():
        skip(f"{folder} is missing: run cargo xtask setup data")
    train, train_labels, test, test_labels = load_split(folder)
    if args.limit:
        train, train_labels = train[: args.limit], train_labels[: args.limit]
    extra = {}

    def run(_):
        start = time.perf_counter()
        order = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(0))
        trainer = Trainer()
        loss = float("nan")
        for b in range(train.shape[0] // BATCH):
            loss = trainer.step(train[order[b * BATCH : (b + 1) * BATCH]])
        train_s = time.perf_counter() - start
        backbone = trainer.model.backbone
        acc = knn_accuracy(
            embed(backbone, train), train_labels.to(DEVICE), embed(backbone, test), test_labels.to(DEVICE), 10
        )
        extra.update(
            knn_acc=acc,
            last_loss=loss,
            train_s=train_s,
            eval_s=time.perf_counter() - start - train_s,
            images_per_s=train.shape[0] // BATCH * BATCH / train_s,
            train_images=train.shape[0],
        )

    return timed(args.warmup, args.iters, run), extra


WORKLOADS = {
    "nt-xent-256": lambda a: nt_xent(a, 256),
    "nt-xent-2048": lambda a: nt_xent(a, 2048),
    "triplet-batch-hard-256": triplet_batch_hard,
    "barlow-twins-256": barlow_twins,
    "vicreg-256": vicreg,
    "nt-xent-16384": lambda a: nt_xent(a, 8192),
    # lightly has no chunked NT-Xent: its reference is the unchunked loss.
    "nt-xent-16384-chunked": lambda a: nt_xent(a, 8192),
    "nt-xent-65536-chunked": lambda a: skip(
        "lightly has no chunked NT-Xent, and its unchunked loss needs several (2N)² = 16 GiB "
        "matrices at 2N = 65,536: more than this machine's memory"
    ),
    "knn-10k-60k": knn_10k_60k,
    "simclr-step": simclr_step,
    "simclr-resnet18-step": simclr_resnet18_step,
    "simclr-epoch-knn": simclr_epoch_knn,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--backend", default="pytorch", help="ignored; for symmetry with selfsup-bench")
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--iters", type=int, required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--budget-s", type=float, default=math.inf)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU check")
    args = parser.parse_args()
    global BUDGET_S, DEVICE
    BUDGET_S = args.budget_s
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    idle = rss_bytes("VmRSS")
    try:
        times, extra = WORKLOADS[args.workload](args)
    except Skip as reason:
        print(json.dumps({"workload": args.workload, "impl": "pytorch", "skipped": str(reason)}))
        return
    print(
        json.dumps(
            {
                "workload": args.workload,
                "impl": "pytorch",
                "times_s": times,
                "rss_idle_bytes": idle,
                "rss_peak_bytes": rss_bytes("VmHWM"),
                "extra": extra,
                "versions": {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(DEVICE)},
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())

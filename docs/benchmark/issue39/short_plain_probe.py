"""Issue 39 item 2: the short run as a user's plain loop trains it (a
record of a probe, not a tool: its result is in docs/benchmarks.md,
"Short runs at rho 0.05").

A small CNN with BatchNorm on 5,000 Fashion-MNIST training images with 40%
of their labels replaced by another class, 12 epochs of batch 128 (480
steps), SGD lr 0.05 constant, momentum 0.9, rho 0.05. Val: 5,000 clean
training images outside the subset; test: the 10,000 test images (read
only with --test). Prints one JSON line per run.

    python short_plain_probe.py --methods sgd sam arsam late \
        'arsam:{"tail": 0.5}' --seeds 0 1 2 3 4 [--test]
"""
import argparse
import json
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from arsam import ARSAM, SAM, LatePhaseSAM


def idx(path):
    with open(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
             for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(root):
    x = torch.from_numpy(idx(f'{root}/train-images-idx3-ubyte').copy())
    y = torch.from_numpy(idx(f'{root}/train-labels-idx1-ubyte').astype(np.int64))
    tx = torch.from_numpy(idx(f'{root}/t10k-images-idx3-ubyte').copy())
    ty = torch.from_numpy(idx(f'{root}/t10k-labels-idx1-ubyte').astype(np.int64))
    def norm(a):
        return ((a.float() / 255 - 0.286) / 0.353)[:, None]
    return norm(x), y, norm(tx), ty


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 49, 10))


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(b).argmax(1) for b in x.split(1000)])
    model.train()
    return float((pred == y).float().mean() * 100)


def run(method, seed, data, args):
    x, y, tx, ty = data
    g = torch.Generator().manual_seed(1000)  # the data split: same for all seeds
    order = torch.randperm(len(x), generator=g)
    tr, va = order[:5000], order[5000:10000]
    train_x, clean_y = x[tr], y[tr]
    noisy_y = clean_y.clone()
    flip = torch.rand(5000, generator=g) < 0.4
    noisy_y[flip] = (clean_y[flip] + torch.randint(1, 10, (int(flip.sum()),),
                                                   generator=g)) % 10
    torch.manual_seed(seed)
    model = cnn()
    steps = args.epochs * ((5000 + 127) // 128)
    base = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    name, _, option = method.partition(':')
    extra = json.loads(option) if option else {}
    optimizer = dict(
        sgd=lambda: base,
        sam=lambda: SAM(model, base, rho=args.rho),
        arsam=lambda: ARSAM(model, base, rho=args.rho, max_steps=steps, **extra),
        late=lambda: LatePhaseSAM(model, base, rho=args.rho, max_steps=steps),
    )[name]()
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(args.epochs):
        for batch in torch.randperm(5000, generator=gen).split(128):
            inputs, targets = train_x[batch], noisy_y[batch]

            def closure():
                loss = F.cross_entropy(model(inputs), targets)
                loss.backward()
                return loss

            optimizer.step(closure)
            optimizer.zero_grad()
    out = dict(method=method, seed=seed, time=time.perf_counter() - start,
               val=accuracy(model, x[va], y[va]),
               fit_clean=accuracy(model, train_x, clean_y),
               sam_rate=getattr(optimizer, 'sam_rate', 0.0 if name == 'sgd' else 1.0))
    if args.test:
        out['test'] = accuracy(model, tx, ty)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--methods', nargs='+', default=['sgd', 'sam', 'arsam'])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--rho', type=float, default=0.05)
    parser.add_argument('--test', action='store_true')
    parser.add_argument('--data', default='/work/main/data/fashion_mnist')
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load(args.data)
    for seed in args.seeds:
        for method in args.methods:
            print(json.dumps(run(method, seed, data, args)), flush=True)


if __name__ == '__main__':
    main()

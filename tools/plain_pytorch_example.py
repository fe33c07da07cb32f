"""ARSAM in a plain PyTorch loop: no mmengine, no OpenMMLab package.

    python tools/plain_pytorch_example.py [--method arsam|sam|asam|looksam|sgd]

Trains a small CNN on images it draws itself (a disc, a box or a cross on
noise, 32x32, 3 classes; 30% of the training labels flipped, the setting
where sharpness-aware training helps) and prints the test accuracy, the
share of two-pass steps and the cost in SAM's passes. About a minute on
two CPU cores.
"""
import argparse
import logging

import torch
from torch import nn
from torch.nn import functional as F

from arsam import ARSAM, ASAM, SAM, LookSAM


def draw_shapes(n: int, generator: torch.Generator):
    """``n`` noisy 32x32 images of a disc (0), a box (1) or a cross (2)."""
    labels = torch.randint(0, 3, (n,), generator=generator)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0),
                            indexing='ij')
    centre = 10 + 12 * torch.rand(n, 2, generator=generator)
    size = 5 + 4 * torch.rand(n, 1, 1, generator=generator)
    dy = ys - centre[:, 0, None, None]
    dx = xs - centre[:, 1, None, None]
    disc = dy**2 + dx**2 <= size**2
    box = (dy.abs() <= size) & (dx.abs() <= size)
    cross = ((dy.abs() <= size) & (dx.abs() <= 1.5)) | (
        (dx.abs() <= size) & (dy.abs() <= 1.5))
    masks = torch.stack([disc, box, cross], 1)[torch.arange(n), labels]
    images = masks.float() + 0.6 * torch.randn(n, 32, 32, generator=generator)
    return images[:, None], labels


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 64, 3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--method', default='arsam',
                        choices=['arsam', 'sam', 'asam', 'looksam', 'sgd'])
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')

    generator = torch.Generator().manual_seed(args.seed)
    train_x, train_y = draw_shapes(2000, generator)
    noisy = torch.rand(len(train_y), generator=generator) < 0.3
    train_y[noisy] = torch.randint(0, 3, (int(noisy.sum()),),
                                   generator=generator)
    test_x, test_y = draw_shapes(2000, generator)

    torch.manual_seed(args.seed)
    model = small_cnn()
    steps = args.epochs * (len(train_x) // 100)
    # --- the loop a user writes: ---------------------------------------
    base = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    optimizer = dict(
        arsam=lambda: ARSAM(model, base, rho=0.1, max_steps=steps),
        sam=lambda: SAM(model, base, rho=0.1),
        asam=lambda: ASAM(model, base, rho=1.0),
        looksam=lambda: LookSAM(model, base, rho=0.1, k=5, alpha=0.25),
        sgd=lambda: base)[args.method]()
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(base, steps)
    for epoch in range(args.epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for batch in order.split(100):
            inputs, targets = train_x[batch], train_y[batch]

            def closure():
                loss = F.cross_entropy(model(inputs), targets)
                loss.backward()
                return loss

            optimizer.step(closure)
            optimizer.zero_grad()
            scheduler.step()
    # -------------------------------------------------------------------
    model.eval()
    with torch.no_grad():
        accuracy = (model(test_x).argmax(1) == test_y).float().mean()
    rate = getattr(optimizer, 'sam_rate', 0.0)
    print(f'{args.method}: test accuracy {100 * accuracy:.2f}%, '
          f'two-pass steps {rate:.3f}, {(1 + rate) / 2:.2f}x SAM\'s passes')


if __name__ == '__main__':
    main()

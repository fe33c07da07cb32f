#!/usr/bin/env bash
# Fashion-MNIST without a download hub: Debian's dataset-fashion-mnist
# package ships the original idx files; mmpretrain's FashionMNIST class
# reads them unpacked from data/fashion_mnist (it checks only that they
# exist, so download=True must stay off: Debian recompressed the .gz).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=/usr/share/datasets/fashion-mnist
DST=data/fashion_mnist
if [ ! -f "$SRC/train-images-idx3-ubyte.gz" ]; then
  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist
fi
mkdir -p "$DST"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte \
         t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$DST/$f" ] || gunzip -c "$SRC/$f.gz" > "$DST/$f"
done
ls -l "$DST"

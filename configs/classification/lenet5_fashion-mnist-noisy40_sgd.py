# Where SAM helps (docs/algorithms.md, "Judging a fast-SAM method"): LeNet-5
# trained on a 10,000-image subset of the Fashion-MNIST training set with
# 40% symmetric label noise, 30 epochs. Every choice is made on val: a
# clean split carved from the rest of the training set (NoisyLabelDataset
# holdout). The test set (test_dataloader, clean) is read once, at the end
# (Runner.test()), after every choice is fixed.
_base_ = './lenet5_fashion-mnist_sgd.py'

_fmnist_train = dict(
    type='FashionMNIST', data_root='data/fashion_mnist', download=False,
    split='train',
    pipeline=[dict(type='Resize', scale=32), dict(type='PackInputs')])
_subset = dict(num_samples=10000, data_seed=0)
train_dataloader = dict(dataset=dict(
    _delete_=True, type='NoisyLabelDataset', noise_rate=0.4,
    noise_type='symmetric', dataset=_fmnist_train, **_subset))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='NoisyLabelDataset', holdout=True,
    dataset=_fmnist_train, **_subset))
param_scheduler = dict(T_max=30)
train_cfg = dict(max_epochs=30, val_interval=30)

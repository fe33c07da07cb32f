# The small-ResNet twin of lenet5_fashion-mnist-noisy40_sgd.py: CIFAR-style
# ResNet-18 on a 10,000-image Fashion-MNIST training subset with 40%
# symmetric label noise; val is a clean split carved from the rest of the
# training set, the clean test set is read once at the end.
_base_ = './resnet18_fashion-mnist_sgd.py'

_fmnist_train = dict(type='FashionMNIST', data_root='data/fashion_mnist',
                     split='train')
_subset = dict(num_samples=10000, data_seed=0)
train_dataloader = dict(dataset=dict(
    _delete_=True, type='NoisyLabelDataset', noise_rate=0.4,
    noise_type='symmetric', **_subset,
    dataset=dict(**_fmnist_train, pipeline={{_base_.train_pipeline}})))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='NoisyLabelDataset', holdout=True, **_subset,
    dataset=dict(**_fmnist_train, pipeline={{_base_.test_pipeline}})))

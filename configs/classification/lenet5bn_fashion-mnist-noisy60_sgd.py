# The second label-noise setting: lenet5bn_fashion-mnist-noisy40_sgd.py with
# 60% of the training labels replaced at random (symmetric noise). Same
# subset, splits and schedule.
_base_ = './lenet5bn_fashion-mnist-noisy40_sgd.py'
train_dataloader = dict(dataset=dict(noise_rate=0.6))

# The no-harm case next to the label-noise settings: the same 10,000-image
# subset, splits and schedule as lenet5bn_fashion-mnist-noisy40_sgd.py, with
# clean labels. Here SAM has little or nothing to add over SGD; a fast-SAM
# default must not cost accuracy.
_base_ = './lenet5bn_fashion-mnist-noisy40_sgd.py'
train_dataloader = dict(dataset=dict(noise_rate=0.0))

# Low-bit QAT where SAM helps: LeNet5BN on 10,000
# Fashion-MNIST images with 40% symmetric label noise, W4A4 LSQ
# fake-quantized (first and last layers at 8 bits), SGD. Choices on val
# (the clean holdout carved from the training set), test read once.
_base_ = '../classification/lenet5bn_fashion-mnist-noisy40_sgd.py'
custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]

# ARSAMOptimWrapper twin of fcn_r18-w32_shapes-colour-noisy40_sgd.py at its defaults
# (0.6x SAM's passes); rho 0.1 as its SAM twin. The demo
# (bash tools/run_demo.sh) trains it beside SGD and SAM.
_base_ = './fcn_r18-w32_shapes-colour-noisy40_sgd.py'
optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.1)

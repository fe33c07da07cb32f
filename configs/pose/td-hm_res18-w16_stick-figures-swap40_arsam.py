# ARSAMOptimWrapper twin of td-hm_res18-w16_stick-figures-swap40_adam.py
# (Adam stays the base optimizer); rho 0.05: SAM's best of 0.02/0.05/0.1
# on val (docs/benchmarks.md, "Pose").
_base_ = './td-hm_res18-w16_stick-figures-swap40_adam.py'
optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05)

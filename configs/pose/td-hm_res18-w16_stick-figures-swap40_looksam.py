# LookSAMOptimWrapper twin of td-hm_res18-w16_stick-figures-swap40_adam.py
# (Adam stays the base optimizer), the peer at ARSAM's cost (k=5: 0.6x
# SAM's passes) with the reuse weight that matched ARSAM elsewhere
# (alpha=0.25); rho 0.05 as its SAM and ARSAM twins (docs/benchmarks.md,
# "Pose").
_base_ = './td-hm_res18-w16_stick-figures-swap40_adam.py'
optim_wrapper = dict(type='LookSAMOptimWrapper', rho=0.05, k=5, alpha=0.25)

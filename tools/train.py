"""Train with a SAM-family optimizer wrapper; see arsam_mm/runner/train.py.

    python tools/train.py CONFIG [--work-dir D] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
"""
from arsam_mm.runner import cli

if __name__ == '__main__':
    cli()

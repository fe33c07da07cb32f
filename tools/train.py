"""Train with a SAM-family optimizer wrapper; see arsam_mm/runner/train.py.

    python tools/train.py CONFIG [--work-dir D] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm]

Third-party warnings that concern nothing a user can change are kept off
the console (tools/quiet.py lists them and why); the run's log file in
the work dir keeps every line.
"""
import quiet

quiet.quiet_third_party()

from arsam_mm.runner import cli  # noqa: E402  (after the filters)

if __name__ == '__main__':
    cli(quiet_console=quiet.quiet_console_of)

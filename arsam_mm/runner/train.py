"""``tools/train.py``: mmseg/mmpose's training entry point, SAM-aware.

The same interface OpenMMLab users know (``--work-dir``, ``--resume``,
``--amp``, ``--cfg-options``, ``--launcher``) with these differences:

* ``--amp`` switches a SAM-family wrapper to its AMP twin (upstream scripts
  accept only ``OptimWrapper`` there);
* before anything is built (and before the Runner prints the config), the
  config and checkpoint paths, the data the train and val loaders read,
  this package's hook arguments and the configurations the SAM wrappers
  cannot run (several optimizers, FSDP, ``compile=True``) are checked:
  each failure is one line naming the key and the fix;
* ``--embedded-data`` points the config at generated data for a smoke run;
* ``--launcher pytorch`` on a machine without CUDA runs DDP over gloo (for
  CPU checks of multi-process training; GPUs go through mmengine as usual);
* a short run logs at least 20 lines (the logger's interval is lowered
  unless ``--cfg-options default_hooks.logger.interval=N`` sets it).

It adds ``SAMRunInfoHook`` to the run (the epoch length for
``warmup_epochs`` under an iteration loop, and a summary line at the end:
the last validation metrics and the SAM-step rate), suggests the closest
registered names for a misspelt ``optim_wrapper.type``, and says when a
bare ``--resume`` finds no checkpoint to resume.
"""
import argparse
import difflib
import logging
import os
import os.path as osp
from typing import Callable, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger, print_log
from mmengine.registry import OPTIM_WRAPPERS, RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

from ..datasets.split_check import check_dataset_splits
from ..hooks.sam_run_info_hook import run_summary
from ..optim._checks import (
    ConfigError,
    check_wrapper_arguments,
    compile_error,
    fsdp_error,
)
from .embedded import use_embedded_data, walk_dicts
from .preflight import (
    check_config_path,
    check_data_present,
    check_own_hooks,
    check_resume_path,
)


def _sam_family_class(type_name):
    """The wrapper class of ``type_name`` if it runs on the engine (the
    SAM family and MSAM), else None."""
    if not isinstance(type_name, str):
        return None
    cls = OPTIM_WRAPPERS.get(type_name)
    from arsam_mm.optim.engine_glue import EngineGlue
    return cls if cls is not None and issubclass(cls, EngineGlue) else None


def _is_sam_family(type_name) -> bool:
    return _sam_family_class(type_name) is not None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train an OpenMMLab model (SAM-family optimizers '
        'registered by arsam_mm)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or without a value from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: switches the optimizer wrapper to its Amp twin')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (mmengine syntax)')
    parser.add_argument(
        '--embedded-data',
        action='store_true',
        help='smoke run: train and evaluate on the data the package '
        'generates (see README), small inputs, no pretrained downloads')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def switch_to_amp(cfg: Config) -> None:
    """``--amp``: ``X`` -> ``AmpX`` for any registered wrapper with a twin."""
    wrapper_cfg = cfg.optim_wrapper
    type_name = wrapper_cfg.get('type', 'OptimWrapper')
    if type_name.startswith('Amp'):
        print_log('AMP training is already enabled in your config.',
                  logger='current', level=logging.WARNING)
        return
    amp_name = f'Amp{type_name}'
    from mmengine.device import get_device
    if type_name == 'OptimWrapper' and get_device() == 'cpu':
        raise ConfigError(
            '--amp', "the plain OptimWrapper's twin is mmengine's "
            'AmpOptimWrapper, which trains only on a GPU, NPU or MLU',
            'Drop --amp on this machine, or use a SAM-family wrapper: its '
            'Amp twin runs bfloat16 autocast on a CPU.', owner='')
    if OPTIM_WRAPPERS.get(amp_name) is None:
        raise ConfigError(
            'type', f'{type_name!r} has no mixed-precision twin for --amp '
            f'({amp_name!r} is not registered)', 'Use OptimWrapper, '
            'SAMOptimWrapper or ARSAMOptimWrapper, or drop --amp.')
    wrapper_cfg.type = amp_name
    wrapper_cfg.setdefault('loss_scale', 'dynamic')


def _registered_wrapper_names(registry=OPTIM_WRAPPERS) -> set:
    """Every optimizer wrapper type of the root registry and its children
    (mmseg, mmpose, mmpretrain, ...), plain and scoped names."""
    names = set(registry.module_dict)
    for scope, child in registry.children.items():
        child_names = _registered_wrapper_names(child)
        names |= child_names | {f'{scope}.{n}' for n in child_names}
    return names


def check_wrapper_type(type_name) -> None:
    """A misspelt ``optim_wrapper.type`` gets the closest registered names
    instead of the registry's bare KeyError."""
    if not isinstance(type_name, str):
        return
    names = _registered_wrapper_names()
    if type_name in names:
        return
    close = difflib.get_close_matches(type_name, sorted(names), n=3,
                                      cutoff=0.6)
    hint = (f'Did you mean {" or ".join(close)}?' if close else
            f'Registered: {", ".join(sorted(names))}.')
    raise ConfigError('type', f'{type_name!r} is not a registered optimizer '
                      'wrapper', hint)


def check_config(cfg: Config) -> None:
    """Refuse configurations the SAM-family wrappers cannot train, and
    data sets that would read other files than their split names."""
    check_dataset_splits(cfg)
    wrapper_cfg = cfg.get('optim_wrapper', None)
    if wrapper_cfg is None:
        return
    type_name = wrapper_cfg.get('type', None)
    check_wrapper_type(type_name)
    if type_name is None:
        nested = [
            key for key, value in wrapper_cfg.items()
            if isinstance(value, dict) and _is_sam_family(value.get('type'))
        ]
        if nested:
            raise ConfigError(
                f'{nested[0]}.type', 'SAM-family wrappers cannot be used '
                'inside an OptimWrapperDict (several optimizers): their '
                'second pass needs the whole model',
                'Use one optimizer with paramwise_cfg instead.')
        return
    cls = _sam_family_class(type_name)
    if cls is None:
        return
    check_wrapper_arguments(cls, wrapper_cfg)
    if cfg.get('compile', False):
        raise compile_error(type_name)
    model_wrapper = cfg.get('model_wrapper_cfg', None) or {}
    if 'FullyShardedDataParallel' in str(model_wrapper.get('type', '')):
        raise fsdp_error(type_name)


def _prepare_cpu_distributed(cfg: Config) -> None:
    """mmengine's pytorch launcher assumes CUDA; on CPU use gloo."""
    if cfg.launcher != 'pytorch' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group('gloo')
    wrapper_cfg = cfg.get('model_wrapper_cfg', None) or dict(
        type='MMDistributedDataParallel')
    wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg

    def sync_bn_to_bn(node):  # torch's SyncBatchNorm needs GPU modules
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'

    walk_dicts(cfg.model, sync_bn_to_bn)
    print_log('CPU distributed run (gloo): SyncBN layers built as BN.',
              logger='current', level=logging.WARNING)


def summarize(runner) -> dict:
    """The summary ``SAMRunInfoHook`` logged at the end of training."""
    summary = runner.message_hub.get_info('arsam_mm/summary')
    return summary if summary is not None else run_summary(runner)


#: Training log lines a run prints at least (the logger's interval is
#: lowered for short runs unless --cfg-options sets it).
LOG_LINES = 20


def add_run_info_hook(cfg: Config, log_lines: Optional[int] = None) -> None:
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(h.get('type') == 'SAMRunInfoHook' for h in hooks):
        hooks.append(dict(type='SAMRunInfoHook', log_lines=log_lines))
    cfg.custom_hooks = hooks


def say_when_nothing_to_resume(cfg: Config):
    """A bare ``--resume`` on a work dir without checkpoints starts from
    scratch (mmengine's rule): say so rather than let it pass silently.
    Returns the message, or None when there is a checkpoint to resume."""
    if find_latest_checkpoint(cfg.work_dir) is not None:
        return None
    message = (f'--resume: no checkpoint in {cfg.work_dir} (no '
               'last_checkpoint file), so training starts from scratch. '
               'Pass --resume CKPT to resume a checkpoint elsewhere.')
    print_log(message, logger='current', level=logging.WARNING)
    return message


def main(argv=None, quiet_console: Optional[Callable] = None):
    """``quiet_console(logger)``: what the calling tool does to the
    Runner's console handlers (``tools/quiet.py``)."""
    import arsam_mm  # noqa: F401  (registers the wrappers, stack shims)

    args = parse_args(argv)
    check_config_path(args.config)
    check_resume_path(args.resume)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.embedded_data:
        use_embedded_data(cfg, options=args.cfg_options or {})
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        switch_to_amp(cfg)
    if args.resume == 'auto':
        cfg.load_from = None
        # Nothing to resume: mmengine would log "Auto resumed from the
        # latest checkpoint None."; we said it, and start from scratch.
        cfg.resume = say_when_nothing_to_resume(cfg) is None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    check_config(cfg)
    check_own_hooks(cfg)
    check_data_present(cfg)
    chosen = any(option.startswith('default_hooks.logger.interval')
                 for option in (args.cfg_options or {}))
    add_run_info_hook(cfg, None if chosen else LOG_LINES)
    _prepare_cpu_distributed(cfg)

    if quiet_console is not None:
        quiet_console(MMLogger.get_current_instance())
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    if quiet_console is not None:
        quiet_console(runner.logger)
    runner.train()
    return summarize(runner)


def cli(argv=None, quiet_console: Optional[Callable] = None):
    """``tools/train.py``: a configuration error (a path, the data, a key
    of ours) ends the command with its one-line message (the key and the
    fix), before the Runner prints the config, instead of a traceback."""
    import sys
    try:
        return main(argv, quiet_console)
    except ConfigError as error:
        sys.exit(f'train.py: error: {error}')


if __name__ == '__main__':
    cli()

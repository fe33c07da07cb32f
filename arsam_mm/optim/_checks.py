"""Checks of the mmengine glue: AMP keys, unsupported models, a missing
``optim_context``. The argument checks themselves live in
``arsam/_checks.py`` (torch only) and are re-exported here."""
from arsam._checks import (  # noqa: F401
    USAGE_DOC,
    ConfigError,
    accepted_arguments,
    check_number,
    check_perturbation_arguments,
    check_unknown_arguments,
)
from arsam.policies import build_policy

__all__ = [
    'check_number', 'accepted_arguments',
    'check_unknown_arguments', 'ConfigError', 'check_wrapper_arguments',
    'refuse_amp_arguments', 'compile_error', 'fsdp_error',
    'refuse_unsupported_model', 'refuse_update_without_context'
]


def compile_error(name: str) -> ConfigError:
    """The refusal of ``compile=True``, from ``tools/train.py``'s check of
    the config or from the wrapper at its first step."""
    return ConfigError(
        'compile', f'{name} cannot run inside a torch.compile-d train_step '
        '(it edits weights in place and hooks the data preprocessor)',
        'Set compile=False (--cfg-options compile=False).', owner='')


def fsdp_error(name: str) -> ConfigError:
    """The refusal of FSDP, from the config check or the wrapper."""
    return ConfigError(
        'model_wrapper_cfg.type', f'{name} does not support FSDP (sharded '
        'gradients need an all-reduced norm)', 'Use MMDistributedDataParallel '
        '(the default) or a plain OptimWrapper.', owner='')


def refuse_unsupported_model(wrapper, model) -> None:
    """FSDP and a torch.compile-d train_step cannot run a two-pass step."""
    name = type(wrapper).__name__
    import torch
    # Traced by torch.compile (is_compiling), or, run eagerly after a graph
    # break, the compiled train_step's wrapper.
    if torch.compiler.is_compiling() or getattr(
            getattr(model, 'train_step', None), '_torchdynamo_orig_callable',
            None) is not None:
        raise compile_error(name)
    from torch.distributed.fsdp import FullyShardedDataParallel
    if isinstance(model, FullyShardedDataParallel):
        raise fsdp_error(name)


def refuse_update_without_context(wrapper) -> None:
    """``update_params`` came without ``optim_context`` around the
    forward."""
    raise RuntimeError(
        f'{type(wrapper).__name__}.update_params was called without '
        'optim_context(model) around the forward: use the model\'s '
        'train_step (BaseModel / MMDistributedDataParallel) or wrap the '
        'forward in `with optim_wrapper.optim_context(model):`.')


#: Keys of an ``optim_wrapper`` config that mmengine's constructor (and an
#: ``mmseg::``-style base's ``_scope_``) takes,
#: not the wrapper.
_CONSTRUCTOR_KEYS = ('type', 'optimizer', 'paramwise_cfg', 'constructor',
                     '_scope_')


def check_wrapper_arguments(cls, wrapper_cfg: dict) -> None:
    """Everything the wrapper ``cls`` would refuse about its arguments,
    before anything is built: unknown keys, out-of-range values."""
    args = {k: v for k, v in wrapper_cfg.items() if k not in _CONSTRUCTOR_KEYS}
    refuse_amp_arguments(cls, args)
    check_unknown_arguments(cls, args)
    check_perturbation_arguments(args)
    if 'second_pass_share' in args:
        from .batch_share import check_share
        check_share(args['second_pass_share'])
    policy_cls = getattr(cls, 'policy_cls', None)
    if policy_cls is not None:
        build_policy(policy_cls, dict(args))


def refuse_amp_arguments(cls, kwargs: dict) -> None:
    """``loss_scale``/``dtype`` on a wrapper class that is not an AMP one."""
    from mmengine.optim import AmpOptimWrapper
    name = cls.__name__
    amp_keys = [k for k in ('loss_scale', 'dtype') if k in kwargs]
    if amp_keys and not issubclass(cls, AmpOptimWrapper):
        raise ConfigError(
            amp_keys[0], f'{name} is not a mixed-precision wrapper, so '
            f'it takes no {" or ".join(amp_keys)} (an AMP config such '
            'as a `-amp-` upstream one sets it)',
            f"Use type='Amp{name}' (or train with --amp), or remove "
            f'optim_wrapper.{amp_keys[0]}.')

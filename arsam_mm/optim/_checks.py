"""Build-time checks of optimizer-wrapper arguments.

Every bad value is refused when the wrapper is built, with a message that
names the config key (``optim_wrapper.<key>``) and the fix, instead of a
bare Python error at the first SAM step.
"""
import difflib
import inspect
import numbers
from typing import List, Optional

__all__ = [
    'config_error', 'check_number', 'accepted_arguments',
    'check_unknown_arguments'
]


def config_error(key: str, problem: str, fix: str,
                 owner: str = 'optim_wrapper') -> ValueError:
    return ValueError(f'{owner}.{key}: {problem}. {fix}')


def check_number(key: str,
                 value,
                 *,
                 integer: bool = False,
                 optional: bool = False,
                 low: Optional[float] = None,
                 high: Optional[float] = None,
                 open_low: bool = False,
                 open_high: bool = False,
                 owner: str = 'optim_wrapper') -> None:
    """Refuse ``value`` unless it is a (whole) number in the given range.

    ``bool`` and numeric strings such as ``'0.05'`` are refused: a config
    that says ``rho='0.05'`` is a typo, not a radius.
    """
    if value is None and optional:
        return
    kind = 'an integer' if integer else 'a number'
    wanted = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise config_error(
            key, f'must be {kind}, got {value!r} ({type(value).__name__})',
            f'Write it without quotes, e.g. {owner}.{key}='
            f'{"1" if integer else "0.05"}.' if isinstance(value, str) else
            f'Set it to {kind}.', owner)
    bounds = []
    if low is not None:
        bounds.append(f'{">" if open_low else ">="} {low}')
    if high is not None:
        bounds.append(f'{"<" if open_high else "<="} {high}')
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high
                                     if open_high else value > high)
    if too_low or too_high:
        raise config_error(key, f'must be {" and ".join(bounds)}, got '
                           f'{value!r}', 'See the docstring of the type for '
                           'the meaning and the default.', owner)


def accepted_arguments(cls) -> List[str]:
    """Every keyword a wrapper class takes: its ``__init__`` parameters and
    those of its bases, and the arguments it builds its policy from."""
    names = set()
    for klass in cls.__mro__:
        names.update(getattr(klass, 'policy_argument_names', ()))
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD,
                              param.KEYWORD_ONLY):
                names.add(param.name)
    names.discard('self')
    return sorted(names)


def check_unknown_arguments(cls, kwargs: dict) -> None:
    """Refuse a keyword ``cls`` does not take (a typo such as
    ``warmup_iter``), naming the closest ones it does take."""
    accepted = accepted_arguments(cls)
    for key in kwargs:
        if key in accepted:
            continue
        close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.5)
        hint = (f'Did you mean {" or ".join(close)}?' if close else
                f'It takes: {", ".join(accepted)}.')
        raise config_error(key, f'{cls.__name__} takes no argument {key!r}',
                           hint)


def refuse_amp_arguments(wrapper, kwargs: dict) -> None:
    """``loss_scale``/``dtype`` on a wrapper that is not an AMP one."""
    from mmengine.optim import AmpOptimWrapper
    name = type(wrapper).__name__
    amp_keys = [k for k in ('loss_scale', 'dtype') if k in kwargs]
    if amp_keys and not isinstance(wrapper, AmpOptimWrapper):
        raise config_error(
            amp_keys[0], f'{name} is not a mixed-precision wrapper, so '
            f'it takes no {" or ".join(amp_keys)} (an AMP config such '
            'as a `-amp-` upstream one sets it)',
            f"Use type='Amp{name}' (or train with --amp), or remove "
            f'optim_wrapper.{amp_keys[0]}.')


def refuse_unsupported_model(wrapper, model) -> None:
    """FSDP (sharded gradients need an all-reduced norm) and a
    torch.compile-d train_step (weights edited in place, a hook on the data
    preprocessor) cannot run a two-pass step."""
    name = type(wrapper).__name__
    import torch
    # Traced by torch.compile (is_compiling), or, run eagerly after a graph
    # break, the compiled train_step's wrapper.
    if torch.compiler.is_compiling() or getattr(
            getattr(model, 'train_step', None), '_torchdynamo_orig_callable',
            None) is not None:
        raise config_error(
            'type', f'{name} cannot run inside a torch.compile-d train_step '
            '(it edits weights in place and hooks the data preprocessor)',
            'Set compile=False.')
    from torch.distributed.fsdp import FullyShardedDataParallel
    if isinstance(model, FullyShardedDataParallel):
        raise config_error(
            'type', f'{name} does not support FSDP (sharded gradients need '
            'an all-reduced norm)', 'Use model_wrapper_cfg=dict(type='
            "'MMDistributedDataParallel') or a plain OptimWrapper.")


def refuse_update_without_context(wrapper) -> None:
    """``update_params`` came without ``optim_context`` around the
    forward."""
    raise RuntimeError(
        f'{type(wrapper).__name__}.update_params was called without '
        'optim_context(model) around the forward: use the model\'s '
        'train_step (BaseModel / MMDistributedDataParallel) or wrap the '
        'forward in `with optim_wrapper.optim_context(model):`.')

"""Build-time checks of optimizer arguments (torch only).

Every bad value is refused when the wrapper is built, with a message that
names the config key (``optim_wrapper.<key>``) and the fix, instead of a
bare Python error at the first SAM step.
"""
import difflib
import inspect
import math
import numbers
from contextlib import contextmanager
from typing import List, Optional

__all__ = [
    'config_error', 'check_number', 'accepted_arguments',
    'check_unknown_arguments', 'check_perturbation_arguments', 'owned_by',
    'USAGE_DOC', 'ConfigError'
]

#: Where every argument's meaning, range and default is documented.
USAGE_DOC = 'docs/usage.md'


class ConfigError(ValueError):
    """A configuration the optimizer cannot train, named by its key."""


def config_error(key: str, problem: str, fix: str,
                 owner: str = 'optim_wrapper') -> ConfigError:
    return ConfigError(f'{owner}.{key}: {problem}. {fix}')


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
    if not math.isfinite(value):
        raise config_error(key, f'must be a finite number, got {value!r}',
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
                           f'{value!r}', f'{USAGE_DOC} gives its meaning and '
                           'default.', owner)


@contextmanager
def owned_by(owner: str):
    """Errors raised inside name ``owner`` instead of ``optim_wrapper``
    (the plain API: ``ARSAM.budget: ...``, not a config key)."""
    try:
        yield
    except ConfigError as error:
        message = str(error)
        if not message.startswith('optim_wrapper.'):
            raise
        raise ConfigError(owner + message[len('optim_wrapper'):]) from None


def check_perturbation_arguments(args: dict) -> None:
    """The engine's radius arguments found in ``args``: ``rho`` > 0,
    ``eta`` and ``eps`` >= 0 (the engine and the early config check share
    this one rule)."""
    for key in ('rho', 'eta', 'eps'):
        if key in args:
            check_number(key, args[key], low=0, open_low=key == 'rho')


def accepted_arguments(cls) -> List[str]:
    """Every keyword a wrapper class takes: its ``__init__`` parameters and
    those of its bases, and the arguments of its ``policy_cls``."""
    names = set()
    policy_cls = getattr(cls, 'policy_cls', None)
    if policy_cls is not None:
        names.update(inspect.signature(policy_cls).parameters)
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD,
                              param.KEYWORD_ONLY):
                names.add(param.name)
    names.discard('self')
    return sorted(names)


def check_unknown_arguments(cls, kwargs: dict, owner: str = 'optim_wrapper'
                            ) -> None:
    """Refuse a keyword ``cls`` does not take (a typo such as
    ``warmup_iter``), naming the closest ones it does take, or saying what
    replaced an argument of an earlier release (the policy's
    ``removed_arguments``)."""
    accepted = accepted_arguments(cls)
    removed = dict(getattr(getattr(cls, 'policy_cls', None),
                           'removed_arguments', {}))
    for key in kwargs:
        if key in accepted:
            continue
        if key in removed:
            raise config_error(key, f'{cls.__name__} no longer takes '
                               f'{key!r}: {removed[key]}', f'See {USAGE_DOC}.',
                               owner)
        close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.5)
        hint = (f'Did you mean {" or ".join(close)}?' if close else
                f'It takes: {", ".join(accepted)}.')
        raise config_error(key, f'{cls.__name__} takes no argument {key!r}',
                           hint, owner)

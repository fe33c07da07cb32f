"""Build-time checks of optimizer arguments (torch only).

Every bad value is refused when the optimizer or wrapper is built, with a
:class:`ConfigError` that names the setting and the fix, instead of a bare
Python error at the first SAM step.

One error model: a check raises ``ConfigError(key, problem, fix)`` where it
fails, without knowing who took the setting; the front end names itself
once (``owner``). An mmengine config is the default (``optim_wrapper.rho:
...``); the plain API names its class (``ARSAM.rho: ...``) through
:func:`front_end` around its constructor and its first step; a hook or a
data set passes its own name; a top-level config key passes ``''``.
"""
import difflib
import inspect
import math
import numbers
from contextlib import contextmanager
from typing import List, Optional

__all__ = [
    'check_number', 'policy_argument_names', 'accepted_arguments',
    'check_unknown_arguments',
    'check_perturbation_arguments', 'front_end', 'USAGE_DOC', 'ConfigError'
]

#: Where every argument's meaning, range and default is documented.
USAGE_DOC = 'docs/usage.md'

#: The owner of a setting whose front end did not name itself: a key of an
#: mmengine config's ``optim_wrapper``.
DEFAULT_OWNER = 'optim_wrapper'


class ConfigError(ValueError):
    """A setting the optimizer cannot train with.

    Args:
        key (str): the setting, as its owner spells it (``'rho'``).
        problem (str): what is wrong with its value.
        fix (str): what to write instead.
        owner (str, optional): who took the setting (see the module
            docstring); None until a front end names itself.
    """

    def __init__(self, key: str, problem: str, fix: str,
                 owner: Optional[str] = None):
        super().__init__(key, problem, fix, owner)
        self.key, self.problem, self.fix, self.owner = key, problem, fix, owner

    def __str__(self) -> str:
        owner = DEFAULT_OWNER if self.owner is None else self.owner
        where = f'{owner}.{self.key}' if owner else self.key
        return f'{where}: {self.problem}. {self.fix}'


@contextmanager
def front_end(owner: str):
    """The boundary of a front end: a :class:`ConfigError` raised inside
    that no one named yet is ``owner``'s (the plain API's class name)."""
    try:
        yield
    except ConfigError as error:
        if error.owner is None:
            error.owner = owner
        raise


def check_number(key: str,
                 value,
                 *,
                 integer: bool = False,
                 optional: bool = False,
                 low: Optional[float] = None,
                 high: Optional[float] = None,
                 open_low: bool = False,
                 open_high: bool = False,
                 where: str = '') -> None:
    """Refuse ``value`` unless it is a (whole) number in the given range.

    ``bool`` and numeric strings such as ``'0.05'`` are refused: a config
    that says ``rho='0.05'`` is a typo, not a radius. ``where`` says which
    of several values of ``key`` it is (``'param group 1'``).
    """
    if value is None and optional:
        return
    kind = 'an integer' if integer else 'a number'
    wanted = numbers.Integral if integer else numbers.Real
    at = f'{where}: ' if where else ''
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise ConfigError(
            key, f'{at}must be {kind}, got {value!r} ({type(value).__name__})',
            f'Write it without quotes, e.g. {key}='
            f'{"1" if integer else "0.05"}.' if isinstance(value, str) else
            f'Set it to {kind}.')
    if not math.isfinite(value):
        raise ConfigError(key, f'{at}must be a finite number, got {value!r}',
                          f'Set it to {kind}.')
    bounds = []
    if low is not None:
        bounds.append(f'{">" if open_low else ">="} {low}')
    if high is not None:
        bounds.append(f'{"<" if open_high else "<="} {high}')
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high
                                     if open_high else value > high)
    if too_low or too_high:
        raise ConfigError(key, f'{at}must be {" and ".join(bounds)}, got '
                          f'{value!r}', f'{USAGE_DOC} gives its meaning and '
                          'default.')


def check_perturbation_arguments(args: dict) -> None:
    """The engine's radius arguments found in ``args``: ``rho`` > 0,
    ``eta`` and ``eps`` >= 0 (the engine and the early config check share
    this one rule)."""
    for key in ('rho', 'eta', 'eps'):
        if key in args:
            check_number(key, args[key], low=0, open_low=key == 'rho')


def policy_argument_names(policy_cls) -> tuple:
    """The constructor arguments of ``policy_cls``: a wrapper or optimizer
    whose ``policy_cls`` it is takes them next to its own."""
    return tuple(inspect.signature(policy_cls).parameters)


def accepted_arguments(cls) -> List[str]:
    """Every keyword a wrapper class takes: its ``__init__`` parameters and
    those of its bases, and the arguments of its ``policy_cls``."""
    names = set()
    policy_cls = getattr(cls, 'policy_cls', None)
    if policy_cls is not None:
        names.update(policy_argument_names(policy_cls))
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


def check_unknown_arguments(cls, kwargs: dict) -> None:
    """Refuse a keyword ``cls`` does not take (a typo such as
    ``warmup_iter``), naming the closest ones it does take, or saying what
    replaced an argument of an earlier release (``migrations.py``)."""
    from .migrations import REMOVED_ARGUMENTS
    accepted = accepted_arguments(cls)
    policy_cls = getattr(cls, 'policy_cls', None)
    removed = REMOVED_ARGUMENTS.get(getattr(policy_cls, '__name__', None), {})
    for key in kwargs:
        if key in accepted:
            continue
        if key in removed:
            raise ConfigError(key, f'{cls.__name__} no longer takes '
                              f'{key!r}: {removed[key]}', f'See {USAGE_DOC}.')
        close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.5)
        hint = (f'Did you mean {" or ".join(close)}?' if close else
                f'It takes: {", ".join(accepted)}.')
        raise ConfigError(key, f'{cls.__name__} takes no argument {key!r}',
                          hint)

"""Build-time checks of optimizer-wrapper arguments.

Every bad value is refused when the wrapper is built, with a message that
names the config key (``optim_wrapper.<key>``) and the fix, instead of a
bare Python error at the first SAM step.
"""
import numbers
from typing import Optional

__all__ = ['config_error', 'check_number']


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

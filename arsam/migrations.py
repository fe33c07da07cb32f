"""Everything that reads or refuses what an earlier release wrote.

Checkpoints of earlier releases load, and arguments they took are refused
with what to write instead; each entry says the release it goes away in.
Nothing else in the package knows an old key or an old argument.

* ARSAM state keys ``rate`` and ``psf`` (the stored ``PSF *
  psf_scale``): written by 0.1, read until 0.5;
* engine states without ``policy_type`` (the policy is read from its
  keys): 0.1 and 0.2, until 0.5;
* the flat ARSAM state (windows, reuse and statistics in one dict): 0.1
  to 0.3, until 0.6;
* the plain optimizer's ``{'base', 'sharpness_aware'}`` state dict: 0.2
  and 0.3, until 0.6;
* refusals of ARSAM's removed arguments and values: until 0.5.
"""
from typing import Optional, Tuple

from ._checks import ConfigError

__all__ = [
    'REMOVED_ARGUMENTS', 'refuse_removed_values', 'engine_state_policy_type',
    'arsam_policy_state', 'plain_optimizer_state'
]

#: Arguments of earlier releases, per policy class, and what to do
#: instead (refused by ``_checks.check_unknown_arguments``; until 0.5).
REMOVED_ARGUMENTS = dict(ARSAMPolicy=dict(
    reuse="ARSAM mixes the stored PSF (the former reuse='decay'); 'scaled' "
    "and 'stale' were studied and removed (docs/benchmarks.md). Remove it",
    stat_layers='it counted tensors: it is now stat_tensors. Rename it',
    min_p="it belonged to the removed schedule='relative'. Remove it",
    reference_iters="it belonged to the removed schedule='relative'. Remove "
    'it'))


def refuse_removed_values(policy_name: str, arguments: dict) -> None:
    """Values an earlier release took (until 0.5), refused with what to
    write instead before the policy is built."""
    if policy_name != 'ARSAMPolicy':
        return
    if arguments.get('schedule') == 'relative':
        raise ConfigError(
            'schedule', "schedule='relative' was removed: its cost "
            "followed the run and it kept 0.80 of SAM's gain where "
            "'budget' kept 0.97 (docs/benchmarks.md)",
            "Use schedule='budget' (the default) or 'paper'.")
    if arguments.get('placement') in ('front', 'late'):
        raise ConfigError(
            'placement', f"placement={arguments['placement']!r} was removed "
            '(studied in docs/benchmarks.md: no better than the others)',
            "Use 'adaptive' (the default) or 'uniform'; for two-pass "
            "iterations at the end of the run set tail, e.g. tail=0.5.")


#: How a policy state written before ``policy_type`` was saved (0.1, 0.2)
#: shows its policy: a key only that policy writes (until 0.5).
_POLICY_KEYS = (('windows', 'ARSAMPolicy'), ('window_target', 'ARSAMPolicy'),
                ('rate', 'ARSAMPolicy'),
                ('direction', 'LookSAMPolicy'), ('mean', 'AESAMPolicy'),
                ('generator', 'RandomSAMPolicy'),
                ('iteration', 'PeriodicSAMPolicy'))


def engine_state_policy_type(state: Optional[dict]) -> Optional[str]:
    """The policy class that wrote an engine state (None: no state)."""
    if state is None:
        return None
    if 'policy_type' in state:
        return state['policy_type']
    policy = state['policy']
    if not policy:
        return 'AlwaysSAMPolicy'
    for key, name in _POLICY_KEYS:
        if key in policy:
            return name
    raise ValueError(
        f'An engine state of an unknown policy (keys {sorted(policy)}): '
        'it was not written by arsam.')


def arsam_policy_state(state: dict) -> dict:
    """An ARSAM policy state of any release in this release's nested form
    (``windows``, ``budget``, ``reuse``, ``statistics`` sub-states)."""
    if 'windows' in state:
        return state
    state = dict(state)
    if 'window_target' not in state:  # 0.1: other names
        state['window_target'] = state.pop('rate')
        state['scaled_psf'] = state.pop('psf')
        state.setdefault('psf_scale', 1.0)
    return dict(
        iteration=state['iteration'],
        windows={k: state[k] for k in ('window_target', 'window_pos',
                                       'windows_started', 'quota_left')},
        budget=state.get('budget'),
        changes=state.get('changes'),
        generator=state['generator'],
        reuse=dict(scaled_psf=state['scaled_psf'],
                   psf_scale=state['psf_scale'],
                   reuse_count=state['reuse_count'], coef=state['coef'],
                   psf_empty=state.get('psf_empty',
                                       state['scaled_psf'] is None)),
        statistics={k: state[k] for k in ('history', 'counts', 'last')})


def plain_optimizer_state(state_dict) -> Tuple[dict, Optional[dict]]:
    """The base optimizer's state and the engine's (None: a plain
    ``torch.optim`` state) from what a plain SAM-family optimizer's
    ``state_dict()`` returned in any release, or from a ``torch.optim``
    optimizer's."""
    keys = set(state_dict) if isinstance(state_dict, dict) else None
    if keys is not None and {'base', 'sharpness_aware'} <= keys:  # 0.2, 0.3
        return state_dict['base'], state_dict['sharpness_aware']
    if keys is not None and {'state', 'param_groups'} <= keys:
        base = {k: v for k, v in state_dict.items() if k != 'sam_state'}
        return base, state_dict.get('sam_state')
    given = sorted(keys) if keys is not None else type(state_dict).__name__
    raise ValueError(
        "expected the state_dict() of a torch.optim optimizer (keys "
        "'state', 'param_groups', and 'sam_state' from a SAM-family one), "
        f'got {given}.')

"""The argument tables of docs/usage.md against the constructors: every
documented default is the code's, and every argument is documented."""
import ast
import inspect
import re
from pathlib import Path

import pytest

from arsam.optim import SharpnessAwareOptimizer
from arsam.policies import (
    AESAMPolicy,
    ARSAMPolicy,
    LatePhaseSAMPolicy,
    LookSAMPolicy,
    PeriodicSAMPolicy,
    RandomSAMPolicy,
)
from arsam_mm.optim import MomentumSAMMixin, SharpnessAwareMixin

USAGE = Path(__file__).resolve().parents[1] / 'docs' / 'usage.md'

#: heading of each table -> the constructor it documents, and the
#: parameters of that constructor that table leaves to another one.
TABLES = {
    'Common arguments': (SharpnessAwareMixin, {'optimizer', 'policy'}),
    'ARSAM arguments': (ARSAMPolicy, set()),
    'LookSAM arguments': (LookSAMPolicy, set()),
    'AE-SAM arguments': (AESAMPolicy, set()),
    'RST arguments': (RandomSAMPolicy, set()),
    'Periodic SAM arguments': (PeriodicSAMPolicy, set()),
    'Late-phase SAM arguments': (LatePhaseSAMPolicy, set()),
    'MSAM arguments': (MomentumSAMMixin, {'optimizer'}),
    'Plain PyTorch arguments': (SharpnessAwareOptimizer, {
        'model', 'base_optimizer', 'policy', 'rho', 'adaptive', 'eta', 'eps',
        'exclude'
    }),
}


def _tables():
    """``{heading: {argument: default text}}`` of docs/usage.md."""
    tables, heading = {}, None
    for line in USAGE.read_text().splitlines():
        if line.startswith('#'):
            heading = line.lstrip('#').strip()
            continue
        row = re.match(r'\| `(\w+)` \| ([^|]+) \|', line)
        if row and heading:
            tables.setdefault(heading, {})[row[1]] = row[2].strip()
    return tables


@pytest.mark.parametrize('title', list(TABLES))
def test_documented_defaults_are_the_code_defaults(title):
    cls, elsewhere = TABLES[title]
    tables = _tables()
    table = next((rows for heading, rows in tables.items()
                  if heading.startswith(title)), None)
    assert table, f'docs/usage.md has no table under "{title}"'
    params = {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != 'self' and p.kind is not p.VAR_KEYWORD
    }
    documented = set(table)
    assert documented - set(params) == set(), (
        f'{title}: documented but not taken by {cls.__name__}')
    assert set(params) - elsewhere - documented == set(), (
        f'{title}: taken by {cls.__name__} but not documented')
    for name, text in table.items():
        assert ast.literal_eval(text) == params[name], (
            f'{title}: `{name}` is documented as {text}, the code says '
            f'{params[name]!r}')

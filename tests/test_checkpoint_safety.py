"""Importing arsam_mm keeps checkpoint loading weights-only.

A checkpoint whose pickle would run code is refused before anything of it
runs, through every path mmengine loads local checkpoints by; the explicit
opt-in (``ARSAM_MM_TRUST_CHECKPOINTS=1``) loads it.
"""
import os
import subprocess

import pytest
import torch
from conftest import build_segmentor, make_runner
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from arsam_mm.checkpoint import TRUST_ENV, UntrustedCheckpointError


class _ShellCommand:
    """Unpickling this runs ``touch MARKER`` through ``os.system``."""

    callee = 'system'

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _Subprocess(_ShellCommand):
    """The same through a module torch does not block by name."""

    callee = 'call'  # pickled (protocol 2) as ``commands.call``

    def __reduce__(self):
        return subprocess.call, (['touch', self.marker], )


class _GetattrEscape:
    """``getattr`` on an allowed class, but not a listed attribute."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, 'register_statistics')


def _malicious_checkpoint(tmp_path, payload):
    model = build_segmentor()
    path = tmp_path / 'evil.pth'
    torch.save(dict(meta=dict(payload=payload),
                    state_dict=model.state_dict()), path)
    return str(path)


@pytest.fixture(autouse=True)
def _untrusted(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)


@pytest.mark.parametrize('payload_cls', [_ShellCommand, _Subprocess])
def test_loader_refuses_code_and_runs_none_of_it(tmp_path, payload_cls):
    marker = tmp_path / 'ran'
    path = _malicious_checkpoint(tmp_path, payload_cls(marker))
    with pytest.raises(UntrustedCheckpointError) as info:
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert not marker.exists()
    message = str(info.value)
    assert payload_cls.callee in message, message
    assert f'{TRUST_ENV}=1' in message


def test_getattr_is_limited_to_listed_attributes(tmp_path):
    path = _malicious_checkpoint(tmp_path, _GetattrEscape())
    with pytest.raises(UntrustedCheckpointError, match='register_statistics'):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')


@pytest.mark.parametrize('resume', [False, True], ids=['load_from', 'resume'])
def test_runner_refuses_code_in_load_from_and_resume(tmp_path, shapes_root,
                                                     resume):
    marker = tmp_path / 'ran'
    path = _malicious_checkpoint(tmp_path, _Subprocess(marker))
    runner = make_runner(
        tmp_path / 'work', build_segmentor(), shapes_root,
        dict(type='ARSAMOptimWrapper', optimizer=dict(type='SGD', lr=0.01)),
        2, load_from=path, resume=resume)
    with pytest.raises(UntrustedCheckpointError):
        runner.train()
    assert not marker.exists()


def test_explicit_opt_in_loads_the_untrusted_file(tmp_path, monkeypatch):
    marker = tmp_path / 'ran'
    path = _malicious_checkpoint(tmp_path, _Subprocess(marker))
    monkeypatch.setenv(TRUST_ENV, '1')
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert marker.exists()  # what the user opted into
    assert 'state_dict' in checkpoint


def test_written_checkpoint_needs_only_listed_globals(tmp_path, shapes_root):
    """A Runner checkpoint (message hub, numpy, SAM state) loads
    weights-only, and with torch's bare allow-list it would not."""
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type='ARSAMOptimWrapper', window=2, warmup_iters=1, budget=0.4,
             optimizer=dict(type='SGD', lr=0.01)), 3,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=3)))
    runner.train()
    path = str(tmp_path / 'iter_3.pth')
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    hub = checkpoint['message_hub']['log_scalars']
    assert isinstance(hub['train/sam_rate'], HistoryBuffer)
    assert hub['train/sam_rate'].statistics('mean') > 0
    assert 'sam_state' in checkpoint['optimizer']

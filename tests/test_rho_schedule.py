"""rho as a param-group value that mmengine's own parameter schedulers
drive, measured where it acts: the size of the perturbation each SAM
iteration applies; and kept across --resume."""
import pytest
import torch
from conftest import build_segmentor, make_runner

TOTAL = 6


def _rho_ramp():
    # mmengine's scheduler, nothing of ours: rho from 0.25x to 1x of 0.2.
    return dict(type='LinearParamScheduler', param_name='rho',
                start_factor=0.25, end_factor=1.0, begin=0, end=4,
                by_epoch=False)


def _runner(tmp_path, root, **kwargs):
    return make_runner(
        tmp_path, build_segmentor(seed=2), root,
        dict(type='SAMOptimWrapper', rho=0.2,
             optimizer=dict(type='SGD', lr=0.02, momentum=0.9)),
        TOTAL, param_scheduler=[_rho_ramp()], **kwargs)


def test_mmengine_scheduler_drives_the_perturbation_radius(tmp_path,
                                                           shapes_root):
    runner = _runner(tmp_path, shapes_root)
    model = runner.model
    params = [p for p in model.parameters() if p.requires_grad]
    snapshots = []
    model.backbone.register_forward_pre_hook(lambda *a: snapshots.append(
        torch.cat([p.detach().flatten() for p in params])))
    runner.train()
    assert len(snapshots) == 2 * TOTAL  # first pass at w, second at w + e
    radii = [float((snapshots[i + 1] - snapshots[i]).norm())
             for i in range(0, len(snapshots), 2)]
    # LinearParamScheduler over [begin, end): the factor goes from 0.25 to
    # 1 in end - begin - 1 = 3 steps, then stays.
    want = [0.2 * (0.25 + 0.75 * min(t, 3) / 3) for t in range(TOTAL)]
    assert radii == pytest.approx(want, rel=1e-4)
    rho = runner.message_hub.get_scalar('train/rho')
    assert rho.data[0].tolist() == pytest.approx(want)


def test_resume_keeps_the_scheduled_rho(tmp_path, shapes_root):
    hook = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                interval=2))
    whole = _runner(tmp_path / 'whole', shapes_root, default_hooks=hook)
    whole.train()
    resumed = _runner(tmp_path / 'resumed', shapes_root, resume=True,
                      load_from=str(tmp_path / 'whole' / 'iter_2.pth'))
    resumed.train()
    groups = resumed.optim_wrapper.param_groups
    assert [g['rho'] for g in groups] == [
        g['rho'] for g in whole.optim_wrapper.param_groups]
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key

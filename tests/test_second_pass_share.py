"""``second_pass_share``: the second pass on a random share of the batch
(ESAM/AUSAM's lever), through a real mmseg model and Runner."""
import copy
import json

import pytest
import torch
from conftest import build_segmentor, make_runner
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from arsam_mm.optim._checks import ConfigError
from arsam_mm.runner import check_config


def _wrapper(model, share, type_name='SAMOptimWrapper', **kwargs):
    return build_optim_wrapper(model, dict(
        type=type_name, rho=0.5, second_pass_share=share,
        optimizer=dict(type='SGD', lr=0.1), **kwargs))


def _forwards(model):
    """What each training forward of ``model`` ran on: (inputs,
    data_samples)."""
    seen = []
    model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(
            (kwargs['inputs'].detach().clone(), kwargs['data_samples'])),
        with_kwargs=True)
    return seen


def test_the_second_pass_runs_on_its_share_of_the_same_examples(seg_batches):
    model = build_segmentor()
    wrapper = _wrapper(model, 0.5)
    seen = _forwards(model)
    torch.manual_seed(1)
    model.train_step(copy.deepcopy(seg_batches[0]), wrapper)
    (full, full_samples), (part, part_samples) = seen
    assert len(full) == 4 and len(part) == 2  # round(0.5 * 4)
    # Each image of the second pass is one of the first pass's (the
    # preprocessed batch, not a re-run of the pipeline), with its own
    # labels beside it.
    for image, sample in zip(part, part_samples):
        match = [i for i in range(len(full)) if torch.equal(full[i], image)]
        assert len(match) == 1
        assert torch.equal(sample.gt_sem_seg.data,
                           full_samples[match[0]].gt_sem_seg.data)
    # Another draw takes other examples in some step: the share is sampled.
    picks = set()
    for batch in seg_batches:
        seen.clear()
        model.train_step(copy.deepcopy(batch), wrapper)
        picks.add(tuple(next(i for i in range(4)
                             if torch.equal(seen[0][0][i], image))
                        for image in seen[1][0]))
    assert len(picks) > 1


def test_a_share_of_copies_of_one_example_is_the_whole_batch(seg_batches):
    """Four copies of one image: any share of them has the batch's mean
    loss and BatchNorm statistics, so the step equals the whole batch's; on
    four different images it does not."""
    one = copy.deepcopy(seg_batches[0])
    copies = dict(inputs=[one['inputs'][0]] * 4,
                  data_samples=[one['data_samples'][0]] * 4)

    def step(batch, share):
        model = build_segmentor()
        model.train_step(copy.deepcopy(batch), _wrapper(model, share))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    whole = step(copies, 1.0)
    for share in (0.5, 0.25):
        torch.testing.assert_close(step(copies, share), whole, rtol=1e-5,
                                   atol=1e-6)
    assert not torch.allclose(step(seg_batches[0], 0.5),
                              step(seg_batches[0], 1.0), atol=1e-6)


def test_passes_count_the_examples_and_the_log_says_the_cost(tmp_path,
                                                             shapes_root):
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type='ARSAMOptimWrapper', rho=0.05, window=4, warmup_iters=3,
             budget=0.5, second_pass_share=0.5,
             optimizer=dict(type='SGD', lr=0.01)), 12, log_level='INFO',
        custom_hooks=[dict(type='SAMTraceHook'),
                      dict(type='SAMRunInfoHook')])
    runner.train()
    assert runner.optim_wrapper.sam_iters == 6
    with open(tmp_path / 'sam_trace.json') as f:
        trace = json.load(f)
    assert trace['forwards'] == 12 + 6 and trace['backwards'] == 12 + 6
    # 12 whole first passes, 6 second passes on 2 of 4 images, each way.
    assert trace['passes'] == pytest.approx(2 * 12 + 2 * 6 * 0.5)
    log = (tmp_path / runner.timestamp / f'{runner.timestamp}.log').read_text()
    assert ('6 of 12 training iterations took two passes, the second on 0.5 '
            "of the batch (sam_rate=0.500, 0.62x SAM's" in log)


@pytest.mark.parametrize('share', [0, 1.5, '0.5'])
def test_a_bad_share_names_the_key(share):
    cfg = dict(type='ARSAMOptimWrapper', second_pass_share=share,
               optimizer=dict(type='SGD', lr=0.01))
    with pytest.raises(ConfigError, match=r'optim_wrapper\.second_pass_share'):
        check_config(Config(dict(optim_wrapper=cfg)))
    with pytest.raises(ConfigError, match=r'optim_wrapper\.second_pass_share'):
        build_optim_wrapper(build_segmentor(), cfg)
    # MSAM takes one pass: it has no second pass to cut.
    with pytest.raises(ConfigError, match=r'optim_wrapper\.second_pass_share'):
        check_config(Config(dict(optim_wrapper=dict(
            type='MSAMOptimWrapper', second_pass_share=0.5))))


def test_a_share_with_a_reused_term_is_warned_about():
    """ARSAM and LookSAM reuse what a SAM step measured, and so its
    share's sampling noise: the user is told at build; SAM is not."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('share_warning', log_level='INFO')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        for type_name in ('ARSAMOptimWrapper', 'LookSAMOptimWrapper',
                          'SAMOptimWrapper'):
            _wrapper(build_segmentor(), 0.5, type_name)
            _wrapper(build_segmentor(), 1.0, type_name)
    finally:
        logger.removeHandler(handler)
    warned = [r.getMessage() for r in records
              if 'second_pass_share=0.5' in r.getMessage()]
    assert [w.split(':')[0] for w in warned] == [
        'ARSAMOptimWrapper', 'LookSAMOptimWrapper']
    assert all(r.levelno == logging.WARNING for r in records
               if 'second_pass_share' in r.getMessage())


def test_a_batch_it_cannot_cut_is_refused_by_name(seg_batches):
    from arsam_mm.optim.batch_share import take_share
    with pytest.raises(ConfigError, match=r'second_pass_share.*Remove'):
        take_share(torch.zeros(4, 3), 0.5, 'SAMOptimWrapper')
    batch = dict(inputs=torch.zeros(4, 3), data_samples=list('abcd'))
    assert take_share(batch, 1.0, 'SAMOptimWrapper') is batch
    assert len(take_share(batch, 0.1, 'SAMOptimWrapper')['inputs']) == 1

"""Random inputs shaped like a config's training batch, for timing
without the config's data set (``tools/benchmark_step.py --synthetic``,
``tools/gpu_check.sh``)."""
import torch

__all__ = ['train_input_size', 'input_channels', 'synthetic_batch',
           'set_input_size']


def input_channels(cfg) -> int:
    """Image channels the model's data preprocessor normalises."""
    preprocessor = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor', {})
    return len(preprocessor.get('mean', (0, 0, 0)))


def train_input_size(cfg):
    """(H, W) of the training input: the size mmseg's data preprocessor pads
    to (``--embedded-data`` sets it), mmseg's ``crop_size`` variable,
    mmpose's codec ``input_size`` (W, H), else the first crop/resize size
    in the train pipeline."""
    preprocessor = cfg.model.get('data_preprocessor') or {}
    if preprocessor.get('size'):
        return tuple(preprocessor['size'])
    if cfg.get('crop_size'):
        return tuple(cfg.crop_size)
    codec = cfg.get('codec')
    if isinstance(codec, dict) and codec.get('input_size'):
        width, height = codec['input_size']
        return height, width
    for step in cfg.train_dataloader.dataset.get('pipeline', []):
        for key in ('crop_size', 'scale'):
            size = step.get(key)
            if isinstance(size, int):
                return size, size
            if isinstance(size, (list, tuple)) and len(size) == 2:
                return tuple(size)
    raise ValueError(
        'No input size in this config (neither crop_size, codec.input_size '
        'nor a crop in train_dataloader.dataset.pipeline); pass it '
        'explicitly (e.g. --shape H W).')


def set_input_size(cfg, shape):
    """Train at ``shape`` (H, W): mmseg's data preprocessor pads every
    batch up to its ``size``, which would undo a smaller ``--shape``."""
    preprocessor = cfg.model.get('data_preprocessor') or {}
    if preprocessor.get('size'):
        preprocessor['size'] = tuple(shape)


def synthetic_batch(cfg, batch_size, shape=None):
    """One random batch in the format the config's data loader yields, of
    ``shape`` (H, W) or the training input's size."""
    from mmengine.structures import PixelData
    height, width = shape or train_input_size(cfg)
    scope = cfg.get('default_scope')
    generator = torch.Generator().manual_seed(0)
    channels = input_channels(cfg)
    inputs = [torch.randint(0, 256, (channels, height, width),
                            generator=generator, dtype=torch.uint8)
              for _ in range(batch_size)]
    samples = []
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        head = cfg.model.decode_head
        num_classes = (head[-1] if isinstance(head, list) else
                       head)['num_classes']
        for _ in range(batch_size):
            label = torch.randint(0, num_classes, (1, height, width),
                                  generator=generator)
            sample = SegDataSample(metainfo=dict(
                img_shape=(height, width), ori_shape=(height, width),
                pad_shape=(height, width)))
            sample.gt_sem_seg = PixelData(data=label)
            samples.append(sample)
    elif scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        # LeNet-style backbones classify themselves (ClsHead has none).
        num_classes = (cfg.model.head.get('num_classes')
                       or cfg.model.backbone.get('num_classes'))
        for _ in range(batch_size):
            label = torch.randint(0, num_classes, (1, ), generator=generator)
            samples.append(DataSample().set_gt_label(label))
    elif scope == 'mmpose' and isinstance(cfg.get('codec'), dict) and (
            cfg.codec.get('heatmap_size')):
        # A top-down heatmap model (SimpleBaseline, HRNet): the targets the
        # codec's GenerateTarget makes, one instance per image.
        from mmengine.structures import InstanceData
        from mmpose.structures import PoseDataSample
        # The codec's output stride, at this input size.
        stride = cfg.codec['input_size'][0] // cfg.codec['heatmap_size'][0]
        heat_w, heat_h = width // stride, height // stride
        joints = cfg.model.head['out_channels']
        for _ in range(batch_size):
            sample = PoseDataSample(metainfo=dict(
                img_shape=(height, width), input_size=(width, height),
                input_center=(width / 2, height / 2),
                input_scale=(width, height), flip_indices=list(
                    range(joints))))
            sample.gt_fields = PixelData(heatmaps=torch.rand(
                joints, heat_h, heat_w, generator=generator))
            sample.gt_instance_labels = InstanceData(
                keypoint_weights=torch.ones(1, joints))
            samples.append(sample)
    else:
        raise ValueError(
            f'--synthetic: default_scope={scope!r}: mmseg, mmpretrain and '
            'top-down heatmap mmpose configs; use --embedded-data for the '
            'others.')
    return dict(inputs=inputs, data_samples=samples)

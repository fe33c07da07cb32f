# The clean twin of td-hm_res18-w16_stick-figures-swap40_adam.py: the same
# figures, model and schedule, no swapped annotations (the "no harm
# without noise" check).
_base_ = './td-hm_res18-w16_stick-figures-swap40_adam.py'
data_root = 'data/stick_figures_clean/'
generate = dict(noise_rate=0.0)
figures = dict(data_root=data_root, generate=generate)
train_dataloader = dict(dataset=figures)
val_dataloader = dict(dataset=figures)
test_dataloader = dict(dataset=figures)
val_evaluator = dict(ann_file=data_root +
                     'annotations/person_keypoints_val.json')
test_evaluator = dict(ann_file=data_root +
                      'annotations/person_keypoints_test.json')

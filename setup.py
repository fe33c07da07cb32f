from setuptools import find_packages, setup

setup(
    name='arsam_mm',
    version='0.1.0',
    description='ARSAM: sharpness-aware training at a fraction of SAM cost, '
    'as one-line mmengine optimizer wrappers',
    packages=find_packages(include=['arsam', 'arsam.*', 'arsam_mm', 'arsam_mm.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.0', 'mmengine>=0.10,<1.0'],
)

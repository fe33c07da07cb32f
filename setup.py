import re
from pathlib import Path

from setuptools import find_packages, setup

# One version: arsam.__version__ (arsam_mm reports the same).
VERSION = re.search(r"__version__ = '([^']+)'",
                    (Path(__file__).parent / 'arsam' / '__init__.py').read_text())[1]

setup(
    name='arsam_mm',
    version=VERSION,
    description='ARSAM: sharpness-aware training at a fraction of SAM cost, '
    'as one-line mmengine optimizer wrappers',
    packages=find_packages(include=['arsam', 'arsam.*', 'arsam_mm', 'arsam_mm.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.0', 'mmengine>=0.10,<1.0'],
)

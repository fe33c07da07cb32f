"""arsam_mm: SAM, ASAM and ARSAM as one-line mmengine optimizer wrappers."""
from arsam import __version__  # noqa: F401  (one version for both)

from . import compat  # noqa: F401  (must precede any mmseg/mmpose import)
from .datasets import *  # noqa: F401,F403
from .hooks import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403

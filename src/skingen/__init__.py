"""skingen: synthetic skin-illness images to augment small clinical data sets.

Heavy libraries are imported lazily inside the functions that need them, so importing
``skingen`` and running ``skingen --help`` stay fast.
"""

from skingen.errors import SkingenError

__version__ = "0.1.0"
__all__ = ["SkingenError", "__version__"]

"""sqnxt-engine: a SqueezeNext inference engine in NumPy and a loop-nest accelerator emulator."""
from .errors import GraphError, UserError

__version__ = "0.1.0"
__all__ = ["GraphError", "UserError", "__version__"]

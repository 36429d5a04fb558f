"""sqnxt-engine: a SqueezeNext inference engine in NumPy and a loop-nest accelerator emulator.

The core's folders, one job each; imports go one way, from a layer to the layers below it only
(tests/test_layering.py holds it, reading the line below):

Layers, lowest first: functional < graph < zoo < io < quant < runtime < train < cli

  errors, progress, limits
                    (top-level modules) the user's error, the progress bar, the resource limits
                    on what a file or an option may make the engine take: below every layer
  functional        the operators' arithmetic on NCHW arrays, with its compiled inference kernels
  graph             the IR: operators, nodes, graphs; batch-norm folding and fusion (fusion),
                    seeded random weights for any graph (seeded_weights)
  zoo               every network by name, and the preprocessing its weights expect (preprocess)
  io                files: weight files, converters, images, labels, data sets, network specs
  quant             post-training integer quantization and the pure-integer runner
  runtime           the float runner and its threads; classifying with a weight file of either
                    kind (predict), so it sits above quant
  train             sqnxt-train (PyTorch, optional), with its compiled channels-last shift
  cli               the commands

The core never imports the accelerator (`sqnxt_engine.emu`) or its loop-nest kernels
(`sqnxt_engine.kernels`): those import the core.
"""
from .errors import GraphError, UserError

__version__ = "0.1.0"
__all__ = ["GraphError", "UserError", "__version__"]

"""Graph IR: operators (one class each), nodes, graphs and a builder; which nodes run as one step
(fusion: batch norm folded, activations fused); seeded random weights for any graph (seeded_weights)."""
from . import ops
from .graph import INPUT, Graph, GraphBuilder, Layer, Node, check_weights, layer_table
from .ops import (
                  LRN,
                  OPS,
                  Add,
                  AvgPool,
                  BatchNorm,
                  Concat,
                  Conv2d,
                  Dropout,
                  Flatten,
                  GlobalAvgPool,
                  LeakyReLU,
                  Linear,
                  MaxPool,
                  Op,
                  ReLU,
                  ReLU6,
                  Shift,
)

__all__ = ["INPUT", "Graph", "GraphBuilder", "Layer", "Node", "check_weights", "layer_table", "ops", "OPS", "Op",
           "Conv2d", "BatchNorm", "ReLU", "ReLU6", "LeakyReLU", "Add", "Concat", "MaxPool",
           "AvgPool", "GlobalAvgPool", "LRN", "Flatten", "Linear", "Dropout", "Shift"]

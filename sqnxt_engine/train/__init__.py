"""Training with PyTorch (the optional `train` extra): a torch module from any IR graph, the
Fashion-MNIST recipe, magnitude pruning, export through sqnxt-convert. The engine never imports it."""

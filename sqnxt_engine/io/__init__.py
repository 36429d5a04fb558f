"""Reading and writing what the engine consumes, one module per job: pth (restricted .pth
reader), weights (the project's .npz weight files), convert_pytorchcv (pytorchcv state dicts
to zoo names), images (image files to network input), prototxt (Caffe network definitions)."""

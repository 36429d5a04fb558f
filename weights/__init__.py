"""The shipped weight files (installed as sqnxt_engine.weights): .npz files, MANIFEST.json with
each file's sha256 and provenance, README.md with the recipe. See sqnxt_engine.io.shipped."""

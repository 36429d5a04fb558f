"""Builds the Cython kernels, each set in the folder of the code that uses it:

  kernels/                 the accelerator's loop-nest kernels (sqnxt_engine.kernels); templates
                           (*.pyx.tp) are expanded with Tempita first, so each loop order is
                           generated from one source instead of copied by hand
  sqnxt_engine/functional/ the float runner's inference kernels (_infer.pyx, _infer_simd.h)
  sqnxt_engine/train/      sqnxt-train's channels-last shift (_shift.pyx)
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from Cython.Tempita import sub as tempita_sub
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def expand_templates():
    for template in glob.glob(os.path.join(HERE, "kernels", "*.tp")):
        target = template[: -len(".tp")]
        with open(template, encoding="utf-8") as f:
            text = tempita_sub(f.read())
        old = open(target, encoding="utf-8").read() if os.path.exists(target) else None
        if text != old:  # keep mtimes stable so unchanged kernels are not recompiled
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)


def openmp_flags():
    """-fopenmp for the inference kernels, only when asked (SQNXT_OPENMP=1) and the C compiler and
    linker accept it; otherwise their prange loops compile to plain serial loops. Off by default,
    measured (docs/inference-speed.md): OpenMP's spinning workers beside OpenBLAS's made a
    two-thread forward pass 10-300x slower on a loaded 2-core machine."""
    import tempfile
    if os.environ.get("SQNXT_OPENMP") != "1":
        return []
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CCompilerError, DistutilsExecError
    from setuptools._distutils.sysconfig import customize_compiler

    cc = new_compiler()
    customize_compiler(cc)
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "probe.c")
        with open(src, "w", encoding="utf-8") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objs = cc.compile([src], output_dir=d, extra_postargs=["-fopenmp"])
            cc.link_executable(objs, os.path.join(d, "probe"), extra_postargs=["-fopenmp"])
        except (CCompilerError, DistutilsExecError):
            return []
    return ["-fopenmp"]


# (source folder, package, OpenMP): only the inference kernels split their loops over OpenMP threads
KERNEL_SETS = [
    ("kernels", "sqnxt_engine.kernels", False),
    (os.path.join("sqnxt_engine", "functional"), "sqnxt_engine.functional", True),
    (os.path.join("sqnxt_engine", "train"), "sqnxt_engine.train", False),
]


def extensions():
    expand_templates()
    mods = []
    openmp = openmp_flags()
    for folder, package, uses_openmp in KERNEL_SETS:
        flags = openmp if uses_openmp else []
        for pyx in sorted(glob.glob(os.path.join(folder, "*.pyx"))):
            stem = os.path.splitext(os.path.basename(pyx))[0]
            mods.append(Extension(
                f"{package}.{stem}", [pyx],
                depends=glob.glob(os.path.join(folder, "*.h")) + glob.glob(os.path.join(folder, "*.pxd")),
                include_dirs=[numpy.get_include(), folder],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=["-O3"] + flags,
                extra_link_args=flags,
            ))
    if not mods:
        return []
    return cythonize(mods, language_level=3, include_path=[folder for folder, _, _ in KERNEL_SETS],
                     compiler_directives={"boundscheck": False, "wraparound": False,
                                          "cdivision": True, "initializedcheck": False})


setup(ext_modules=extensions())

"""Hypothesis generators shared by the tests: convolution layers (geometry, as a kernels
`ConvShape`) and loop-nest mappings of a layer. Imported as `strategies` (pyproject's
[tool.pytest.ini_options] puts tests/ on the path)."""
from dataclasses import dataclass

from hypothesis import strategies as st

from sqnxt_engine.kernels import DATAFLOWS, ORDERS, ConvShape, Mapping

# kernel shapes worth testing: SqueezeNext's 1x1, 1x3, 3x1, plain squares, and odd ones
KERNELS = ((1, 1), (1, 3), (3, 1), (3, 3), (2, 2), (5, 5), (2, 3))


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution: `groups` groups of `cg` input and `kg` output channels each."""
    groups: int
    cg: int
    kg: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int, int, int]          # top, bottom, left, right
    H: int
    W: int

    def conv_shape(self) -> ConvShape:
        assert self.dilation == (1, 1), "the kernels' ConvShape has no dilation"
        return ConvShape(C=self.cg * self.groups, H=self.H, W=self.W, K=self.kg * self.groups,
                         R=self.kernel[0], S=self.kernel[1], stride=self.stride,
                         padding=self.pad, groups=self.groups)


@st.composite
def conv_geometries(draw, kernels=KERNELS, max_channels=3, max_hw=7, max_dilation=1,
                    depthwise=True):
    """A legal layer (at least one output pixel): 1-`max_channels` channels per group in and
    out, 1-3 groups (or a depthwise layer of 1-5 channels), strides 1-3, padding 0-2 per side,
    inputs up to `max_hw` (grown to the kernel's extent where the padded input is smaller)."""
    groups = draw(st.sampled_from([1, 1, 2, 3] + (["dw"] if depthwise else [])))
    if groups == "dw":
        groups, cg, kg = draw(st.integers(1, 5)), 1, 1
    else:
        cg, kg = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    kernel = draw(st.sampled_from(kernels))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation)))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(4))
    extent = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    H, W = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    H = max(H, extent[0] - pad[0] - pad[1])
    W = max(W, extent[1] - pad[2] - pad[3])
    return ConvGeometry(groups, cg, kg, kernel, stride, dilation, pad, H, W)


def conv_shapes(**kw):
    """`conv_geometries` (no dilation) as the kernels' ConvShape."""
    return conv_geometries(**kw).map(ConvGeometry.conv_shape)


@st.composite
def mappings(draw, shape: ConvShape, dataflow=None, max_pe=4, max_psums=4):
    """A legal mapping of `shape`: any (or the given) dataflow, a Pr x Pc array of 1-`max_pe`
    each side, any loop order, any tile size from 1 to each loop's extent (the last tile of a
    loop is partial when the size does not divide it), 1-`max_psums` partial sums per PE."""
    df = dataflow or draw(st.sampled_from(DATAFLOWS))
    tiles = tuple(draw(st.sampled_from(v)) for v in shape.legal_tiles().values())
    return Mapping(df, draw(st.integers(1, max_pe)), draw(st.integers(1, max_pe)),
                   draw(st.sampled_from(ORDERS)), tiles, draw(st.integers(1, max_psums)))

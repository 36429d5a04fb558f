"""The zoo matches the authors' own Caffe files, layer by layer: every conv and fc, with its
shapes, parameters and MACs, and the network totals."""
import pytest

from sqnxt_engine import zoo
from sqnxt_engine.graph import Conv2d, Linear

FILES = {
    "1.0-SqNxt-23.train_val.prototxt": "1.0-SqNxt-23",
    "1.0-G-SqNxt-23.train_val.prototxt": "1.0-G-SqNxt-23",
    "1.0-SqNxt-23v5.train_val.prototxt": "1.0-SqNxt-23v5",
    "2.0-SqNxt-23.train_val.prototxt": "2.0-SqNxt-23",
    "2.0-SqNxt-23v5.train_val.prototxt": "2.0-SqNxt-23v5",
    "bvlc_alexnet.deploy.prototxt": "AlexNet",
    "SqueezeNet_v1.0.deploy.prototxt": "SqueezeNet-v1.0",
    "SqueezeNet_v1.1.deploy.prototxt": "SqueezeNet-v1.1",
}


def signature(graph):
    """Every conv / fc as (input shape, output shape, kernel, stride, padding, groups, params, MACs),
    sorted: Caffe may list a block's shortcut before or after its branch."""
    rows = []
    for l in graph.layers:
        if isinstance(l.op, Conv2d):
            rows.append((l.in_shapes[0], l.out_shape, l.op.kernel, l.op.stride, l.op.padding,
                         l.op.groups, l.params, l.macs))
        elif isinstance(l.op, Linear):
            rows.append((l.in_shapes[0], l.out_shape, None, None, None, 1, l.params, l.macs))
    return sorted(rows, key=repr)


@pytest.mark.parametrize("filename", FILES)
def test_zoo_equals_caffe_file(caffe_dir, filename):
    from sqnxt_engine.io.prototxt import read_prototxt

    model = zoo.build(FILES[filename])
    imported = read_prototxt(caffe_dir / filename, input_shape=model.input_shape)
    mine, theirs = signature(model), signature(imported)
    if FILES[filename] == "SqueezeNet-v1.0":
        # the published file pads conv10 by 1; the paper's 837M MACs (and the zoo) use pad 0
        def conv10(rows):
            return [r for r in rows if r[1][0] == 1000]
        (z10,), (f10,) = conv10(mine), conv10(theirs)
        assert z10[4] == (0, 0, 0, 0) and f10[4] == (1, 1, 1, 1)
        mine = [r for r in mine if r not in (z10,)]
        theirs = [r for r in theirs if r not in (f10,)]
    assert len(mine) == len(theirs)
    assert mine == theirs
    if FILES[filename] != "SqueezeNet-v1.0":
        assert (imported.params, imported.macs) == (model.params, model.macs)

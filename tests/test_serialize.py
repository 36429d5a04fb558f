import pytest

from sqnxt_engine import GraphError, zoo
from sqnxt_engine.graph.serialize import graph_from_dict, graph_to_dict


@pytest.mark.parametrize("name", ["1.0-G-SqNxt-23", "MobileNet-v1", "AlexNet", "sqnxt23v5_w1"])
def test_round_trip(name):
    import json
    g = zoo.build(name)
    back = graph_from_dict(json.loads(json.dumps(graph_to_dict(g))))
    assert [(n.name, n.op, n.inputs) for n in back.nodes] == [(n.name, n.op, n.inputs) for n in g.nodes]
    assert (back.params, back.macs) == (g.params, g.macs)


def test_malformed_description_is_a_graph_error():
    with pytest.raises(GraphError, match="unknown operator"):
        graph_from_dict({"name": "x", "input_shape": [3, 4, 4],
                         "nodes": [{"name": "a", "op": "warp", "inputs": ["input"]}]})
    with pytest.raises(GraphError, match="malformed"):
        graph_from_dict({"name": "x"})

"""Which ops LiteRT's default delegate (XNNPACK) takes, read after ``allocate_tensors()``."""
from __future__ import annotations


def delegation(interp) -> dict:
    """Delegate partitions and the ops left to the builtin kernels.

    The node list keeps the replaced nodes and appends one DELEGATE node per partition, so a
    node counts as delegated when it lies between a partition's input and output tensors."""
    ops = interp._get_ops_details()
    first = next((o["index"] for o in ops if o["op_name"] == "DELEGATE"), len(ops))
    original, partitions = ops[:first], ops[first:]
    producer = {t: o["index"] for o in original for t in o["outputs"]}
    covered: set[int] = set()
    for part in partitions:
        boundary, stack = set(part["inputs"]), list(part["outputs"])
        while stack:
            t = stack.pop()
            node = producer.get(t)
            if t in boundary or node is None or node in covered:
                continue
            covered.add(node)
            stack.extend(original[node]["inputs"])
    left = [o["op_name"] for o in original if o["index"] not in covered]
    return {"delegate_partitions": len(partitions), "non_delegated_ops": len(left),
            "non_delegated_kinds": sorted(set(left))}


def single_partition(tflite_bytes: bytes) -> bool:
    """True when the whole float graph runs as one XNNPACK partition, no op left outside."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite_bytes)
    interp.allocate_tensors()
    d = delegation(interp)
    return d["delegate_partitions"] == 1 and d["non_delegated_ops"] == 0

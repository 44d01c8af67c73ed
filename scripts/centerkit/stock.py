"""Upstream's own center loop, read from a tree's tools/program.py (never copied into the
kit): the reference the tests and the benchmark compare the kit's center math with."""

import ast


def stock_update_center(program_py):
    """upstream tools/program.py `update_center(char_center, post_result, preds)`, as is."""
    import numpy as np
    import paddle

    with open(program_py, encoding="utf-8") as f:
        module = ast.parse(f.read())
    fn = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "update_center")
    namespace = {"paddle": paddle, "np": np}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), program_py, "exec"), namespace)
    return namespace["update_center"]

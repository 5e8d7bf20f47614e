"""The checker itself, on small source snippets against a small made-up API of two versions: it must report
what a version lacks unless a feature check guards it. These run everywhere (no bindings needed); the same
cases against the real bindings are in test_tensorrt_api.py."""
from __future__ import annotations

import textwrap

from tests.conformance.apicheck import check, find_uses, project


def fn(*params, returns=()):
    return {"kind": "function", "params": [list(params)], "returns": list(returns)}


def cls(members, init=("self",)):
    return {"kind": "class", "params": [list(init)], "members": members}


VALUE = {"kind": "value"}
OLD = {"tensorrt": {"version": "8", "error": None, "names": {
    "Runtime": cls({"deserialize_cuda_engine": fn("self", "serialized_engine", returns=["ICudaEngine"])},
                   ("self", "logger")),
    "ICudaEngine": cls({"num_bindings": {"kind": "property"}, "num_io_tensors": {"kind": "property"},
                        "create_execution_context": fn("self", returns=["IExecutionContext"])}),
    "IExecutionContext": cls({"execute_async_v2": fn("self", "bindings", "stream_handle"),
                              "execute_async_v3": fn("self", "stream_handle")}),
    "BuilderFlag": cls({"FP16": VALUE, "INT8": VALUE}),
    "IInt8EntropyCalibrator2": cls({"get_batch": fn("self", "names")}),
}}}
NEW = {"tensorrt": {"version": "11", "error": None, "names": {
    "Runtime": OLD["tensorrt"]["names"]["Runtime"],
    "ICudaEngine": cls({"num_io_tensors": {"kind": "property"},
                        "create_execution_context": fn("self", returns=["IExecutionContext"])}),
    "IExecutionContext": cls({"execute_async_v3": fn("self", "stream_handle")}),
    "BuilderFlag": cls({"DIRECT_IO": VALUE}),
}}}
APIS = {"8": OLD, "11": NEW}


def problems(source: str, version: str = "11"):
    uses = find_uses(textwrap.dedent(source), "snippet.py", APIS)
    return check(uses, APIS[version], version)


def test_an_unguarded_name_a_version_lacks_is_reported_with_file_line_name_and_version():
    found = problems("""
        import tensorrt as trt

        def build(config):
            config.set_flag(trt.BuilderFlag.FP16)
    """)
    assert len(found) == 1
    assert found[0].startswith("snippet.py:5:") and "BuilderFlag.FP16" in found[0] and "tensorrt 11:" in found[0]
    assert problems("import tensorrt as trt\nx = trt.BuilderFlag.FP16\n", "8") == []


def test_hasattr_getattr_early_exit_and_attribute_error_guards_are_accepted():
    guarded = [
        """
        import tensorrt as trt
        def f(config):
            if hasattr(trt.BuilderFlag, "FP16"):
                config.set_flag(trt.BuilderFlag.FP16)
        """,
        """
        import tensorrt as trt
        def f(config):
            flag = getattr(trt.BuilderFlag, "FP16", None)
            if flag is not None:
                config.set_flag(flag)
        """,
        """
        import tensorrt as trt
        def f(config):
            if getattr(trt.BuilderFlag, "FP16", None) is not None:
                config.set_flag(trt.BuilderFlag.FP16)
        """,
        """
        import tensorrt as trt
        def f(config):
            if not hasattr(trt.BuilderFlag, "FP16"):
                raise RuntimeError("no FP16 flag")
            config.set_flag(trt.BuilderFlag.FP16)
        """,
        """
        import tensorrt as trt
        def f(config):
            try:
                config.set_flag(trt.BuilderFlag.FP16)
            except (AttributeError, TypeError):
                pass
        """,
        """
        import tensorrt as trt
        use = hasattr(trt.BuilderFlag, "FP16") and trt.BuilderFlag.FP16
        """,
    ]
    for source in guarded:
        assert problems(source) == [], source


def test_a_guard_of_another_name_or_the_wrong_polarity_or_a_broad_except_does_not_count():
    unguarded = [
        """
        import tensorrt as trt
        if hasattr(trt.BuilderFlag, "INT8"):
            x = trt.BuilderFlag.FP16
        """,
        """
        import tensorrt as trt
        if not hasattr(trt.BuilderFlag, "FP16"):
            x = trt.BuilderFlag.FP16
        """,
        """
        import tensorrt as trt
        try:
            x = trt.BuilderFlag.FP16
        except Exception:
            x = None
        """,
        """
        import tensorrt as trt
        x = getattr(trt.BuilderFlag, "FP16")
        """,
    ]
    for source in unguarded:
        assert len(problems(source)) == 1, source


def test_lazy_and_from_imports_inside_functions_are_followed():
    found = problems("""
        from edgevid._optional import require

        def calibrator():
            trt = require("tensorrt", "INT8 calibration")
            return trt.IInt8EntropyCalibrator2

        def other():
            from tensorrt import IInt8EntropyCalibrator2 as Calib
            return Calib
    """)
    assert [p.split(":")[1] for p in found] == ["6", "9"]


def test_members_resolve_through_return_types_and_by_member_name():
    source = """
        import tensorrt as trt

        def run(blob, bindings, stream):
            engine = trt.Runtime(None).deserialize_cuda_engine(blob)
            n = engine.num_bindings
            ctx = engine.create_execution_context()
            ctx.execute_async_v2(bindings, stream_handle=stream)

        def unknown(context):
            context.execute_async_v2([], 0)
    """
    found = problems(source)
    assert any(":6:" in p and "ICudaEngine.num_bindings" in p for p in found), found
    assert any(":8:" in p and "IExecutionContext.execute_async_v2" in p for p in found), found
    assert any(":11:" in p and "execute_async_v2" in p for p in found), found
    assert problems(source, "8") == []


def test_keyword_arguments_are_checked_against_the_signatures():
    found = problems("""
        import tensorrt as trt
        def go(ctx: "trt.IExecutionContext", stream):
            ctx.execute_async_v3(stream=stream)
            ctx.execute_async_v3(stream_handle=stream)
    """, "8")
    assert len(found) == 1 and ":4:" in found[0] and "'stream'" in found[0] and "stream_handle" in found[0]


def test_files_without_tensorrt_and_the_project_own_names_are_left_alone():
    assert problems("def f(ctx):\n    ctx.execute_async_v2([], 0)\n") == []
    assert problems("""
        import tensorrt as trt
        class Session:
            def num_bindings(self):
                return 0
            def go(self, other, table):
                table.update({})
                return other.num_bindings() + self.execute_async_v2
    """) == []


def test_helpers_returning_the_module_and_a_module_passed_between_files_are_followed():
    helper = textwrap.dedent("""
        from edgevid._optional import require

        def tensorrt():
            return require("tensorrt", "the TensorRT backend")
    """)
    user = textwrap.dedent("""
        from . import helper

        def flags(trt):
            return trt.BuilderFlag.FP16

        def load(blob):
            trt = helper.tensorrt()
            return helper.tensorrt().BuilderFlag.INT8
    """)
    context = project([("helper.py", helper), ("user.py", user)])
    uses = find_uses(user, "user.py", APIS, context)
    assert [p.split(":")[1] for p in check(uses, NEW, "11")] == ["5", "9"]
    # read alone, the file cannot tell that trt and helper.tensorrt() are TensorRT: the project context does
    assert check(find_uses(user, "user.py", APIS), NEW, "11") == []


def test_a_name_bound_to_a_class_and_per_function_variables_are_resolved():
    found = problems("""
        import tensorrt as trt

        def flags():
            kinds = trt.BuilderFlag
            return kinds.FP16

        def run(blob):
            ctx = trt.Runtime(None).deserialize_cuda_engine(blob).create_execution_context()
            ctx.execute_async_v2([], 0)

        def other(engine):
            ctx = engine
            return ctx.num_io_tensors
    """)
    assert [p.split(":")[1] for p in found] == ["6", "10"], found


def test_the_project_own_names_and_names_of_another_watched_api_are_not_taken_for_tensorrt():
    apis = {v: dict(a, **{"pycuda.driver": {"version": "1", "error": None, "names": {
        "DeviceAllocation": cls({"free": fn("self")}), "mem_alloc": fn("size", returns=["DeviceAllocation"])}}})
        for v, a in APIS.items()}
    apis["8"]["tensorrt"]["names"]["IGpuAllocator"] = cls({"free": fn("self", "memory")})
    source = textwrap.dedent("""
        import tensorrt as trt
        import pycuda.driver as cuda

        class Plan:
            def __init__(self):
                self.num_bindings = 0

        def release(buffers, plan):
            for buffer in buffers:
                buffer.free()
            return plan.num_bindings + cuda.mem_alloc(4).free()
    """)
    uses = find_uses(source, "s.py", apis)
    assert check([u for u in uses if u.module == "tensorrt"], apis["11"], "11") == []

"""Every pycuda name the package uses exists in the real pycuda (built here from its sdist against CUDA's
headers, imported over a stub libcuda.so.1 in a subprocess: conftest.py), and the house rules of
docs/architecture.md §3 hold: never pycuda.autoinit."""
from __future__ import annotations

import ast
import textwrap

import pytest

from tests.conformance.apicheck import aliases, check, find_uses, lookup
from tests.conformance.conftest import project_sources, project_uses

pytestmark = pytest.mark.conformance

# What the CUDA plumbing of the TensorRT backend needs (tensorrt-facts.md §6), with argument names
EXPECTED = {
    ("init",): (), ("Device",): (), ("Device", "count"): (), ("Device", "retain_primary_context"): (),
    ("Device", "compute_capability"): (), ("Device", "name"): (), ("Device", "total_memory"): (),
    ("Context", "push"): (), ("Context", "pop"): (), ("Context", "synchronize"): (), ("Context", "detach"): (),
    ("Stream",): (), ("Stream", "synchronize"): (), ("Stream", "handle"): (),
    ("Event",): (), ("Event", "record"): (), ("Event", "synchronize"): (), ("Event", "time_since"): (),
    ("mem_alloc",): (), ("mem_get_info",): (), ("DeviceAllocation", "free"): (),
    ("pagelocked_empty",): ("shape", "dtype"),
    ("memcpy_htod_async",): ("dest", "src", "stream"), ("memcpy_dtoh_async",): ("dest", "src", "stream"),
    ("memcpy_dtod_async",): ("dest", "src", "size", "stream"),
    ("Error",): (), ("LogicError",): (),
}


def test_the_package_uses_only_what_pycuda_has(project_apis, pycuda_apis):
    uses = project_uses(project_apis, "pycuda")
    problems = [p for version, api in pycuda_apis.items() for p in check(uses, api, version)]
    assert not problems, "pycuda names that do not exist:\n" + "\n".join(problems)


@pytest.mark.parametrize("chain", sorted(EXPECTED), ids=".".join)
def test_the_cuda_plumbing_names_resolve(pycuda_apis, chain):
    for version, api in pycuda_apis.items():
        entry = lookup(api["pycuda.driver"], chain)
        assert entry is not None, "pycuda.driver.%s is missing from pycuda %s" % (".".join(chain), version)
        for arg in EXPECTED[chain]:
            overloads = entry.get("params") or []
            assert any(arg in p for p in overloads), "pycuda.driver.%s takes no %r: %s" % (".".join(chain), arg,
                                                                                             overloads)


def test_the_checker_reports_a_pycuda_name_that_does_not_exist(pycuda_apis):
    source = textwrap.dedent('''
        def plumbing():
            import pycuda.driver as cuda
            cuda.init()
            ctx = cuda.Device(0).retain_primary_context()
            ctx.push()
            ctx.push_current()
            cuda.memcpy_htod_async(dest=1, src=2, stream=None)
            cuda.memcpy_htod_async(dst=1, src=2)
    ''')
    uses = find_uses(source, "plumbing.py", pycuda_apis)
    assert ("Context", "push") in {u.chain for u in uses}  # resolved through retain_primary_context's return type
    for version, api in pycuda_apis.items():
        found = check(uses, api, version)
        assert [p.split(":")[1] for p in found] == ["7", "9"], found
        assert "Context.push_current" in found[0] and "'dst'" in found[1]


def test_no_module_imports_pycuda_autoinit():
    """autoinit makes its own context at import; edgevid retains the primary context (architecture.md §3)."""
    bad = [path for path, text in project_sources()
           if any(m == "pycuda.autoinit" for m, _ in aliases(ast.parse(text)).values())
           or "pycuda.autoinit" in {a.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Import)
                                    for a in n.names}]
    assert not bad, "pycuda.autoinit imported in %s; retain the primary context instead" % bad

"""Each handler imports with only what Lambda will give it: its own folder, the layer and the runtime.

In Lambda a function sees its CodeUri folder (/var/task), the layer built from shared/ (the coach
package plus shared/requirements.txt) and the runtime's boto3. Each handler is imported in a fresh
interpreter whose path holds exactly its folder and shared/, and whose imports of installed packages
are limited to the layer's requirements and boto3 (with their dependencies). A handler that imports
from another handler's folder, from tests/, or a package the layer does not ship fails here instead of
at its first invocation.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.infra.cfn_template import ROOT, function_environment, function_property, load_template, serverless_functions

LAYER_DIR = ROOT / "shared"
RUNTIME_PACKAGES = ["boto3"]  # what the python3.13 Lambda runtime already has

IMPORT_CHECK = r"""
import importlib.abc, importlib.machinery, json, sys
from pathlib import Path

function_dir, layer_dir, allowed = sys.argv[1], sys.argv[2], set(json.loads(sys.argv[3]))

def local_modules(folder):
    names = set()
    for entry in Path(folder).iterdir():
        if entry.suffix == ".py":
            names.add(entry.stem)
        elif (entry / "__init__.py").is_file():
            names.add(entry.name)
    return names

local = local_modules(function_dir) | local_modules(layer_dir)
# Keep the interpreter's standard library and the installed packages; drop everything else (the
# repository root, the project's editable-install entry).
installed = [p for p in sys.path if p.startswith(sys.base_prefix) or p.endswith("site-packages")]
stdlib = [p for p in installed if "site-packages" not in p]
sys.path[:] = [function_dir, layer_dir] + installed


class LambdaPackageGate(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in local or top in allowed or top in sys.builtin_module_names:
            return None
        if "." in fullname or importlib.machinery.PathFinder.find_spec(top, stdlib) is not None:
            return None  # a submodule of an allowed package, or the standard library
        raise ModuleNotFoundError(
            f"No module named {fullname!r} in Lambda: not in this function's folder, the layer "
            "(shared/ and shared/requirements.txt) or the runtime", name=fullname)


sys.meta_path.insert(0, LambdaPackageGate())
import app  # noqa: E402

handler = getattr(app, "lambda_handler", None)
if not callable(handler):
    raise SystemExit("app.lambda_handler is missing or not callable")
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules} - sys.stdlib_module_names)))
"""


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _top_level_modules(dist: importlib.metadata.Distribution) -> set[str]:
    names = {line.strip() for line in (dist.read_text("top_level.txt") or "").splitlines() if line.strip()}
    for file in dist.files or []:
        first = file.parts[0] if file.parts else ""
        if not first or first in ("..", "__pycache__") or first.endswith((".dist-info", ".egg-info", ".pth")):
            continue
        if len(file.parts) > 1:
            names.add(first)
        elif first.endswith(".py"):
            names.add(first[:-3])
        elif first.endswith((".so", ".pyd")):
            names.add(first.split(".", 1)[0])
    return names


def allowed_modules(requirements: list[str]) -> set[str]:
    """Importable top-level names of the requirements and everything they depend on (extras honoured)."""
    modules: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(line) for line in requirements]
    while todo:
        req = todo.pop()
        key = (req.name.lower().replace("_", "-"), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(req.name)
        modules |= _top_level_modules(dist)
        for line in dist.requires or []:
            dep = Requirement(line)
            environments = [{"extra": extra} for extra in req.extras] or [{"extra": ""}]
            if dep.marker is None or any(dep.marker.evaluate(env) for env in environments):
                todo.append(dep)
    return modules


def _environment(template: dict, logical_id: str) -> dict[str, str]:
    """The function's variables with stand-in values, plus what Lambda sets, and nothing from this shell."""
    params = template["Parameters"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    for name, value in function_environment(template, logical_id).items():
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            value = str(params[ref]["Default"]) if ref in params else f"test-{ref.lower()}"
        env[name] = str(value)
    return env


TEMPLATE = load_template()
FUNCTIONS = sorted(serverless_functions(TEMPLATE))


@pytest.fixture(scope="module")
def allowed() -> set[str]:
    return allowed_modules(_requirements(LAYER_DIR / "requirements.txt") + RUNTIME_PACKAGES)


def _import_in_lambda_layout(function_dir: Path, allowed: set[str], env: dict[str, str], tmp_path: Path):
    return subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_CHECK, str(function_dir), str(LAYER_DIR), json.dumps(sorted(allowed))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_handler_imports_with_only_its_folder_the_layer_and_the_runtime(logical_id, allowed, tmp_path):
    function_dir = ROOT / function_property(TEMPLATE, logical_id, "CodeUri")
    result = _import_in_lambda_layout(function_dir, allowed, _environment(TEMPLATE, logical_id), tmp_path)
    assert result.returncode == 0, f"{logical_id} ({function_dir.relative_to(ROOT)}):\n{result.stderr[-3000:]}"
    assert "coach" in json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("source", "missing"),
    [
        ("from tests.fakes import openai_server\n", "tests"),
        ("import moto\n", "moto"),
        ("from functions.critique import app\n", "functions"),
    ],
)
def test_an_import_lambda_cannot_satisfy_is_refused(source, missing, allowed, tmp_path):
    function_dir = tmp_path / "function"
    function_dir.mkdir()
    (function_dir / "app.py").write_text(source + "def lambda_handler(event, context):\n    return {}\n")
    result = _import_in_lambda_layout(function_dir, allowed, {"PATH": os.environ.get("PATH", "")}, tmp_path)
    assert result.returncode != 0
    assert f"No module named '{missing}" in result.stderr


_GUARDS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside `try: ... except ImportError` (or broader), or `if TYPE_CHECKING:`: absence is handled."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                caught = handler.type
                names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
                if caught is None or any(isinstance(n, ast.Name) and n.id in _GUARDS for n in names):
                    return True
        if isinstance(parent, ast.If) and child in parent.body and "TYPE_CHECKING" in ast.unparse(parent.test):
            return True
        child, parent = parent, parents.get(parent)
    return False


def _module_file(name: str, roots: list[Path]) -> Path | None:
    for root in roots:
        base = root.joinpath(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def reachable_imports(entry: Path, roots: list[Path]) -> dict[str, set[str]]:
    """Every module `entry` can import, at load time or later inside functions, that lives outside `roots`.

    Returns {top-level module: {files importing it}}; imports whose absence the code handles are left out.
    """
    outside: dict[str, set[str]] = {}
    todo, seen = [entry], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        package = ".".join(path.relative_to(next(r for r in roots if path.is_relative_to(r))).parent.parts)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                    base = ".".join([*anchor, base] if base else anchor)
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                found = _module_file(name, roots)
                if found is not None:
                    todo.append(found)
                elif name == names[0] and not _guarded(node, parents):
                    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    outside.setdefault(name.partition(".")[0], set()).add(str(shown))
    return outside


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_even_deferred_imports_are_in_the_layer_or_the_runtime(logical_id, allowed):
    function_dir = ROOT / function_property(TEMPLATE, logical_id, "CodeUri")
    stdlib = [p for p in sys.path if p.startswith(sys.base_prefix) and "site-packages" not in p]
    imports = reachable_imports(function_dir / "app.py", [function_dir, LAYER_DIR])
    missing = {
        module: sorted(files) for module, files in imports.items()
        if module not in allowed and module not in sys.builtin_module_names
        and importlib.machinery.PathFinder.find_spec(module, stdlib) is None
    }
    assert not missing, f"{logical_id} imports packages Lambda will not have: {missing}"


def test_import_walk_sees_deferred_and_guarded_imports(tmp_path):
    (tmp_path / "app.py").write_text(
        "import json\n"
        "from helpers import tool\n"
        "def lambda_handler(event, context):\n"
        "    import moto\n"
        "    return tool()\n"
    )
    (tmp_path / "helpers.py").write_text(
        "try:\n    import tiktoken\nexcept ImportError:\n    tiktoken = None\n"
        "def tool():\n    from openai import OpenAI\n    return OpenAI\n"
    )
    found = reachable_imports(tmp_path / "app.py", [tmp_path])
    assert set(found) == {"json", "moto", "openai"}


def test_layer_requirements_leave_test_tools_out(allowed):
    assert {"openai", "praw", "pydantic", "aws_lambda_powertools", "boto3"} <= allowed
    assert not {"moto", "pytest", "tiktoken", "hypothesis"} & allowed

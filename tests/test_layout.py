"""The package's layout is its data flow: each folder imports only the ones before it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "impasto"

# Each layer may import from the layers before it (and from itself); the shared ground from nothing
# of the package but itself. cli/ and serve/ sit on top: nothing else imports them.
LAYERS = [
    {"errors", "config", "atomic", "runtime", "job", "presets"},
    {"image"},
    {"net"},
    {"loss"},
    {"optim"},
    {"gatys", "paper", "audio", "fast"},
    {"video"},
    {"serve"},
    {"cli", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _imports(text: str, where: tuple[str, ...]) -> set[str]:
    """The top-level parts of impasto that a module at ``where`` (its parts under src/impasto, e.g.
    ``("loss", "terms")``) imports: ``gatys`` for ``from ..gatys.run import x``."""
    package = list(where[:-1])
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            names = base + (node.module.split(".") if node.module else [])
            found |= {names[0]} if names else {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("impasto."):
            found.add(node.module.split(".")[1])
    return found - {"__init__"}


def _top(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py")


def test_every_module_has_a_layer():
    assert {_top(p) for p in MODULES} <= set(RANK), {_top(p) for p in MODULES} - set(RANK)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    where = path.relative_to(PACKAGE).with_suffix("").parts
    own = RANK[where[0]]
    later = {name for name in _imports(path.read_text(encoding="utf-8"), where) if RANK.get(name, -1) > own}
    assert not later, f"{'/'.join(where)}.py imports {sorted(later)}, which come after it"


def test_the_check_sees_an_import_that_goes_back():
    assert _imports("from ..gatys.run import transfer\nfrom . import guided\n", ("loss", "terms")) == {"gatys", "loss"}
    assert _imports("from .. import presets\nfrom impasto.cli.main import run\n", ("video", "fast")) == {"presets", "cli"}
    assert _imports("from .inputs import prepare\n", ("gatys", "run")) == {"gatys"}

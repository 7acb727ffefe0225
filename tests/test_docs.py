"""README.md and docs/*.md against the code: every option table against the config dataclasses and
the real parser of its command, each option documented once, every relative link and every module
or file the docs name present, the README short. No network, no model runs.

An option table is a markdown table with the header ``| option | default | meaning |``, captioned by
the line just above it, ``Options of `impasto CMD` [, `impasto CMD2` …]:``, naming every command
(sub-command, or ``reconstruct`` for both of its kinds) whose options it lists. Every row of the
table is an option of every command its caption names, shown as ``impasto CMD --help`` shows it:
its option strings (and the names of its values where it takes several), its default and its help
text. Together, the tables naming a command list each of its options exactly once.

``python tests/test_docs.py [CMD ...]`` prints the rows of each command's options as the tables must
show them, to paste into the docs after an option changed.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
FILES = [README, *DOCS]

HEADER = "| option | default | meaning |"
CAPTION = re.compile(r"^Options of (.+):$")


# ---------------------------------------------------------------- the real parser

def _build_parser() -> argparse.ArgumentParser:
    from impasto.cli.main import build_parser
    return build_parser()


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*path, name))


_PARSERS: dict[str, argparse.ArgumentParser] = {}


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every leaf command (``transfer``, ``reconstruct content`` …) and its parser."""
    if not _PARSERS:
        _PARSERS.update(_leaves(_build_parser()))
    return _PARSERS


def _commands() -> tuple[str, ...]:
    from impasto.cli.main import COMMANDS
    return COMMANDS


DEFAULT = re.compile(r"\s*\(default: ([^()]*)\)$")


@dataclass(frozen=True)
class Row:
    option: str    # the option cell: `-o`, `--output` (and `--flag A B` for several values)
    default: str   # `512`, or required
    meaning: str   # the help text, its "(default: …)" left to the default column

    def markdown(self) -> str:
        return f"| {self.option} | {self.default} | {_escape(self.meaning)} |"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "\\<")


def _unescape(text: str) -> str:
    return text.replace("\\|", "|").replace("\\<", "<")


def option_cell(action: argparse.Action) -> str:
    spans = [f"`{s}`" for s in action.option_strings]
    if isinstance(action.metavar, tuple):  # an option taking several values: name them
        spans[-1] = f"`{action.option_strings[-1]} {' '.join(action.metavar)}`"
    return ", ".join(spans)


def expected_row(action: argparse.Action) -> Row:
    """An option as ``--help`` shows it."""
    help_text = " ".join((action.help or "").split())
    found = DEFAULT.search(help_text)
    if found:
        default, meaning = f"`{found.group(1)}`", help_text[:found.start()]
    else:
        default = "required" if action.required else f"`{action.default}`"
        meaning = help_text
    return Row(option_cell(action), default, meaning)


def parser_rows(command: str) -> dict[tuple[str, ...], Row]:
    """The options of a leaf command (not -h), keyed by their option strings."""
    return {tuple(a.option_strings): expected_row(a) for a in parsers()[command]._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)}


# ---------------------------------------------------------------- the docs' tables

@dataclass
class Table:
    file: Path
    line: int                       # 1-based line of the header
    commands: tuple[str, ...]       # leaf commands the caption names
    rows: list[tuple[int, Row]]     # (line, row)

    def where(self, line: int | None = None) -> str:
        return f"{self.file.relative_to(ROOT)}:{line or self.line}"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _expand(name: str) -> list[str]:
    """A caption's command: a leaf, or a command with kinds standing for all of them."""
    leaves = [c for c in parsers() if c == name or c.startswith(name + " ")]
    assert leaves, f"no command `impasto {name}`"
    return leaves


def tables_of(path: Path) -> list[Table]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip() != HEADER:
            continue
        above = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        caption = CAPTION.match(above)
        assert caption, (f"{path.relative_to(ROOT)}:{i + 1}: an option table needs the caption "
                         f"'Options of `impasto CMD`:' on the line above it, not {above!r}")
        names = re.findall(r"`impasto ([a-z][a-z ]*)`", caption.group(1))
        assert names, f"{path.relative_to(ROOT)}:{i + 1}: the caption names no `impasto CMD`"
        commands = tuple(dict.fromkeys(leaf for name in names for leaf in _expand(name)))
        rows = []
        for j in range(i + 2, len(lines)):
            if not lines[j].startswith("|"):
                break
            cells = _cells(lines[j])
            assert len(cells) == 3, f"{path.relative_to(ROOT)}:{j + 1}: three cells expected"
            rows.append((j + 1, Row(cells[0], cells[1], _unescape(cells[2]))))
        found.append(Table(path, i + 1, commands, rows))
    return found


def all_tables() -> list[Table]:
    return [t for path in FILES for t in tables_of(path)]


def documented(command: str) -> list[tuple[Table, int, Row]]:
    return [(t, line, row) for t in all_tables() if command in t.commands for line, row in t.rows]


def _flags(option_cell_text: str) -> tuple[str, ...]:
    return tuple(span.split(" ")[0] for span in re.findall(r"`([^`]+)`", option_cell_text))


# ---------------------------------------------------------------- the tests

def test_every_command_of_the_cli_is_checked():
    """The leaves below are the real parser's, and every sub-command of `impasto` has some."""
    tops = {leaf.split(" ")[0] for leaf in parsers()}
    assert tops == set(_commands())


@pytest.mark.parametrize("command", [name for name, _ in _leaves(_build_parser())])
def test_option_tables_match_the_parser(command):
    """Every option the parser has is in the tables naming the command, once, with its default and
    help; every row of those tables is an option of the parser."""
    want = parser_rows(command)
    rows = documented(command)
    assert rows, f"no option table names `impasto {command}`"
    seen: dict[tuple[str, ...], str] = {}
    problems = []
    for table, line, row in rows:
        flags = _flags(row.option)
        if flags in seen:
            problems.append(f"{table.where(line)}: {row.option} of `impasto {command}` documented twice "
                            f"(also {seen[flags]})")
            continue
        seen[flags] = table.where(line)
        if flags not in want:
            problems.append(f"{table.where(line)}: `impasto {command}` has no option {row.option}")
        elif row != want[flags]:
            problems.append(f"{table.where(line)}: `impasto {command}` shows it as\n    {want[flags].markdown()}\n"
                            f"  the docs have\n    {row.markdown()}")
    for flags, row in want.items():
        if flags not in seen:
            problems.append(f"`impasto {command}` option missing from the docs:\n    {row.markdown()}")
    assert not problems, "\n".join(problems)


def _configs():
    from impasto import config
    return [(config.TransferConfig, ("transfer", "video")), (config.VideoConfig, ("video",)),
            (config.ReconstructConfig, ("reconstruct content", "reconstruct style", "figure reconstructions")),
            (config.GridConfig, ("figure grid",)), (config.AudioConfig, ("audio",)),
            (config.RecolorConfig, ("recolor",)), (config.TrainConfig, ("train",)),
            (config.FastConfig, ("fast",)), (config.ServeConfig, ("serve",))]


@pytest.mark.parametrize("cls, commands", _configs(), ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_option_tables_match_the_config_dataclasses(cls, commands):
    """Each dataclass field is a row `--name-with-dashes` of its commands, with the field's default
    and help text (read from the dataclass itself, not through the parser)."""
    from impasto.config import option_fields

    assert option_fields(cls) == [f for f in fields(cls) if not f.name.startswith("_")], \
        f"{cls.__name__}: a field without help text would be missing from the command line and the docs"
    for command in commands:
        rows = {next(f for f in _flags(row.option) if f.startswith("--")): (table, line, row)
                for table, line, row in documented(command)}
        for f in option_fields(cls):
            flag = "--" + f.name.replace("_", "-")
            assert flag in rows, f"{cls.__name__}.{f.name}: no row {flag} for `impasto {command}`"
            table, line, row = rows[flag]
            default = f.default if f.default is not MISSING else None
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
            assert row.default == f"`{shown}`", f"{table.where(line)}: {flag}'s default is {shown}, not {row.default}"
            assert row.meaning == " ".join(f.metadata["help"].split()), \
                f"{table.where(line)}: {flag}'s meaning is {cls.__name__}.{f.name}'s help text"


def test_option_tables_are_well_formed_and_each_in_one_place():
    """Every table row that starts with an option is in a captioned option table; no two tables are
    the same; the tables of one command (beyond those it shares with others) are in one file."""
    for path in FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        in_option_table = False
        for i, line in enumerate(lines):
            if line.strip() == HEADER:
                in_option_table = True
            elif not line.startswith("|"):
                in_option_table = False
            elif re.match(r"^\| `--?[a-z]", line) and not in_option_table and i and lines[i - 1].startswith("|"):
                raise AssertionError(f"{path.relative_to(ROOT)}:{i + 1}: an option row outside an option "
                                     f"table ({HEADER!r} under an 'Options of `impasto CMD`:' caption)")
    tables = all_tables()
    assert tables
    bodies: dict[tuple[Row, ...], Table] = {}
    for table in tables:
        assert table.rows, f"{table.where()}: an empty option table"
        body = tuple(row for _, row in table.rows)
        assert body not in bodies, f"{table.where()}: the same table as {bodies[body].where()}"
        bodies[body] = table
    homes: dict[str, set[Path]] = {}
    for table in tables:
        families = {c.split(" ")[0] for c in table.commands}
        if len(families) == 1:
            homes.setdefault(families.pop(), set()).add(table.file)
    for family, files in homes.items():
        assert len(files) == 1, f"`impasto {family}`'s own option tables are spread over {sorted(map(str, files))}"
    assert not tables_of(README), "README.md links to the docs' option tables; it has none of its own"


def test_no_table_row_in_two_places():
    """A fact in one place: no row of a table (other than an option table, whose rows are facts of
    the commands its caption names, checked above) is repeated anywhere in README.md or docs/."""
    seen: dict[str, str] = {}
    for path in FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        in_option_table = False
        for i, line in enumerate(lines):
            in_option_table = line.strip() == HEADER or (in_option_table and line.startswith("|"))
            if in_option_table or not line.startswith("|") or set(line) <= set("|-: ") or len(line) < 40:
                continue
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if nxt.startswith("|") and set(nxt) <= set("|-: "):  # a header
                continue
            where = f"{path.relative_to(ROOT)}:{i + 1}"
            assert line not in seen, f"{where}: the same table row as {seen[line]}"
            seen[line] = where


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group() == "_" else "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M)}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    """Every relative link and image points at a file that exists (and a heading that exists)."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    bad = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            bad.append(f"{target}: no {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as missing:
            if missing.name and missing.name.split(".")[0] != "impasto":
                return True  # an optional extra (PyAV, Starlette …) not installed here: cannot tell
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_modules_and_files_exist(path):
    """Every `impasto.module.name` the docs name imports, every repository path they name exists,
    and benchmarks run as modules from the repository root (`python -m benchmarks.NAME`)."""
    text = path.read_text(encoding="utf-8")
    spans = re.findall(r"`([^`\n]+)`", text) + re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    bad = []
    for span in spans:
        for dotted in re.findall(r"(?<![\w/.-])(impasto(?:\.[A-Za-z_]\w*)+)", span):
            dotted = dotted.rstrip(".")
            if not _resolves(dotted):
                bad.append(f"`{dotted}` does not import")
        for file in re.findall(r"(?<![\w/.-])((?:src|tests|benchmarks|scripts|docs|examples)/[\w./-]*\w)", span):
            if not (ROOT / file).exists():
                bad.append(f"{file} does not exist")
        for name in re.findall(r"python -m benchmarks\.([a-z_]\w*)", span):
            if not (ROOT / "benchmarks" / f"{name}.py").exists():
                bad.append(f"benchmarks/{name}.py does not exist")
        if re.search(r"python3? benchmarks/", span):
            bad.append(f"{span!r}: benchmarks run as `python -m benchmarks.NAME` from the repository root")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(dict.fromkeys(bad))


def test_readme_is_short_and_starts_with_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, f"README.md has {len(text.splitlines())} lines (200 at most)"
    first_block = re.search(r"```\w*\n(.*?)```", text, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands[:2] == ["make demo", "make test"]


def test_readme_names_this_version_and_links_every_doc():
    from impasto import __version__

    text = README.read_text(encoding="utf-8")
    assert __version__ in text, f"README.md does not name version {__version__}"
    for doc in DOCS:
        assert f"(docs/{doc.name})" in text, f"README.md does not link docs/{doc.name}"


# ---------------------------------------------------------------- the docs' rows, printed

def main(argv: list[str]) -> None:
    for command in argv or list(parsers()):
        print(f"Options of `impasto {command}`:\n\n{HEADER}\n|---|---|---|")
        for row in parser_rows(command).values():
            print(row.markdown())
        print()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main(sys.argv[1:])

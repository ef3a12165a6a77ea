"""README.md, CHANGELOG.md and docs/: every relative link resolves and every command parses.

- A relative link `[text](path)` names a file or folder of the repository; `path#anchor`
  (or `#anchor`) names a heading of that Markdown file, by GitHub's anchor rule (lower case,
  punctuation dropped, spaces to hyphens, `-1`, `-2`, ... for repeated headings).
- A `python -m jaxreid...` command (in a code block, or an inline code span) names a module
  that `python -m` can run, uses only the flags that module defines, and its config parses:
  `--config=<file>[:arg]` loads (jaxreid.config.load_config), its `--config.<key>=<value>`
  overrides apply, and the result passes `validate()` (no device-count check, no data:
  configs that need a `manual_dir` validate without one); `--grid=<file>[:arg]` loads
  (jaxreid.experiments.load_grid) and every experiment, with the `--override=` values,
  validates.
- Every config spec written anywhere (`configs/<name>.py[:arg]`, `configs/grids/...`) loads.
- Every dotted name `jaxreid.<module>[.<name>]` in code, and every `from jaxreid... import ...`
  of a Python block, names a module of the package and a name that module defines or imports
  (read from its source: nothing is imported).

The checks read the files only; no command is run.
"""

from __future__ import annotations

import ast
import glob
import os
import re
import shlex

import pytest

from jaxreid import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def doc_files(root: str = ROOT) -> list[str]:
    files = [os.path.join(root, "README.md"), os.path.join(root, "CHANGELOG.md")]
    files += sorted(glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True))
    return [f for f in files if os.path.isfile(f)]


# --- Markdown structure -------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")


def prose_and_code(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(prose lines, code-block lines), each as (1-based line number, text)."""
    prose, code, fenced = [], [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        (code if fenced else prose).append((number, line))
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters of any script and digits
    return text.replace(" ", "-")


def anchors(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        prose, _ = prose_and_code(f.read())
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose:
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_INLINE_CODE = re.compile(r"`[^`]*`")


def broken_links(path: str) -> list[str]:
    """Each relative link of `path` that names no file, folder or heading, as a message."""
    with open(path, encoding="utf-8") as f:
        prose, _ = prose_and_code(f.read())
    problems = []
    for number, line in prose:
        for match in _LINK.finditer(_INLINE_CODE.sub("", line)):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (
                os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                if file_part
                else path
            )
            where = f"{os.path.relpath(path, ROOT)}:{number}: link {target!r}"
            if not os.path.exists(resolved):
                problems.append(f"{where}: no file {os.path.relpath(resolved, ROOT)}")
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                problems.append(
                    f"{where}: no heading with anchor #{anchor} in "
                    f"{os.path.relpath(resolved, ROOT)}"
                )
    return problems


# --- commands -----------------------------------------------------------------------------


def commands(path: str) -> list[tuple[int, str]]:
    """Every `python -m jaxreid...` command of `path` as (line, command), continuation lines
    of code blocks joined and comments dropped."""
    with open(path, encoding="utf-8") as f:
        prose, code = prose_and_code(f.read())
    pieces: list[tuple[int, str]] = []
    pending = None
    for number, line in code:
        if pending is not None:
            line = pending[1] + " " + line.strip()
            number = pending[0]
            pending = None
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1])
            continue
        pieces.append((number, line))
    for number, line in prose:
        pieces += [(number, span.strip("`")) for span in _INLINE_CODE.findall(line)]
    found = []
    for number, text in pieces:
        # `jaxreid(.name)*` not followed by '.': "python -m jaxreid..." is prose, not a command.
        for match in re.finditer(r"python -m (jaxreid(?:\.\w+)*)(?![\w.])([^#;&|\"]*)", text):
            found.append((number, f"python -m {match.group(1)}{match.group(2)}".strip()))
    return found


def module_file(module: str, root: str = ROOT) -> str | None:
    """The file `python -m <module>` runs, if there is one."""
    base = os.path.join(root, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__main__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


_DEFINED = re.compile(r"(?:DEFINE_\w+\(\s*|add_argument\(\s*)[\"'](?:--)?(\w+)[\"']")


def defined_flags(path: str, root: str = ROOT) -> set[str]:
    """Flags defined in `path` and in the jaxreid modules it imports from (one level)."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    files = [path]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxreid"):
            for alias in node.names:
                for name in (f"{node.module}.{alias.name}", node.module):
                    candidate = os.path.join(root, *name.split(".")) + ".py"
                    if os.path.isfile(candidate):
                        files.append(candidate)
                        break
    flags = set()
    for file in files:
        with open(file, encoding="utf-8") as f:
            flags |= set(_DEFINED.findall(f.read()))
    return flags | {"help", "helpfull"}


def command_problems(command: str) -> list[str]:
    """What is wrong with one `python -m jaxreid...` command, as messages (empty if fine)."""
    from jaxreid import experiments

    tokens = shlex.split(command)
    module, args = tokens[2], tokens[3:]
    path = module_file(module)
    if path is None:
        return [f"`python -m {module}`: no module {module} with code to run"]
    known = defined_flags(path)
    problems, overrides, grid_overrides = [], {}, []
    config_spec = grid_spec = None
    for arg in args:
        if not arg.startswith("--"):
            continue
        name, has_value, value = arg[2:].partition("=")
        if name.startswith(("config.", "noconfig.")):
            overrides[name.split(".", 1)[1]] = (
                value if has_value else str(not name.startswith("no"))
            )
        elif name not in known and not (name.startswith("no") and name[2:] in known):
            problems.append(f"--{name}: not a flag of {module} (it has {sorted(known)})")
        elif name == "config" and ".py" in value:
            config_spec = value
        elif name == "grid":
            grid_spec = value
        elif name == "override":
            grid_overrides.append(value)
    try:
        if grid_spec is not None:
            for experiment in experiments.load_grid(grid_spec).experiments:
                config = experiment.config.copy_and_resolve_references()
                config_lib.apply_overrides(config, grid_overrides)
                config_lib.validate(config)
        elif config_spec is not None or overrides:
            config = (
                config_lib.load_config(config_spec)
                if config_spec is not None
                else config_lib.default_config()
            )
            config_lib.apply_overrides(config, overrides)
            config_lib.validate(config)
    except (config_lib.ConfigError, ValueError, TypeError) as e:
        problems.append(f"{type(e).__name__}: {e}")
    return problems


_SPEC = re.compile(r"(?<![\w/])(configs/(?:grids/)?\w+\.py)(?::([\w=.,/-]*[\w=.,]))?")  # args may hold paths


def is_grid(spec: str) -> bool:
    """A spec of a grid file (one that defines get_grid); configs/grids/ also holds modules
    the grids share, such as hafner2018_recipes.py, which docs name as files."""
    if "/grids/" not in spec:
        return False
    with open(os.path.join(ROOT, spec.split(":")[0]), encoding="utf-8") as f:
        return "\ndef get_grid(" in f.read()


def spec_problems(path: str) -> list[str]:
    """Each `configs/...py[:arg]` written in `path` that does not load (a module the grids
    share must exist)."""
    from jaxreid import experiments

    with open(path, encoding="utf-8") as f:
        text = f.read()
    problems = []
    for match in sorted(set(_SPEC.findall(text))):
        spec = match[0] + (f":{match[1]}" if match[1] else "")
        try:
            if "/grids/" in spec and not os.path.exists(os.path.join(ROOT, match[0])):
                problems.append(f"{os.path.relpath(path, ROOT)}: {spec}: no such file")
            elif is_grid(spec):
                experiments.load_grid(spec)
            elif "/grids/" in spec:
                continue
            else:
                config_lib.load_config(spec)
        except (config_lib.ConfigError, ValueError, TypeError) as e:
            problems.append(f"{os.path.relpath(path, ROOT)}: {spec}: {type(e).__name__}: {e}")
    return problems


# --- names of the package -----------------------------------------------------------------


def module_source(module: str, root: str = ROOT) -> str | None:
    """The file that defines `module` (a .py file or a package's __init__.py), if any."""
    base = os.path.join(root, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def top_level_names(path: str) -> set[str]:
    """Names a module binds at its top level: defs, classes, assignments, imports."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def name_problem(dotted: str, root: str = ROOT) -> str | None:
    """Why `dotted` ('jaxreid.search.Gallery', 'jaxreid.evaluation') names nothing, or None.

    The longest prefix that is a module must exist; the next part, if any, must be a
    submodule or a name that module binds (deeper attributes are not checked)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        path = module_source(".".join(parts[:end]), root)
        if path is None:
            continue
        if end == len(parts):
            return None
        name = parts[end]
        if name in top_level_names(path) or module_source(".".join(parts[: end + 1]), root):
            return None
        return f"{dotted}: {'.'.join(parts[:end])} ({os.path.relpath(path, root)}) has no {name!r}"
    return f"{dotted}: no module {parts[0]}"


def names(path: str) -> list[tuple[int, str]]:
    """(line, dotted name) for every jaxreid name in `path`'s code: `jaxreid.a.b` in inline
    code or code blocks, and `from jaxreid.a import b, c` as `jaxreid.a.b`, `jaxreid.a.c`."""
    with open(path, encoding="utf-8") as f:
        prose, code = prose_and_code(f.read())
    pieces = list(code) + [
        (number, span) for number, line in prose for span in _INLINE_CODE.findall(line)
    ]
    found = []
    for number, text in pieces:
        for match in re.finditer(r"from (jaxreid(?:\.\w+)*) import ([\w, ]+)", text):
            imported = [n.split(" as ")[0].strip() for n in match.group(2).split(",")]
            found += [(number, f"{match.group(1)}.{n}") for n in imported if n]
        text = re.sub(r"python -m jaxreid(?:\.\w+)*", "", text)  # commands are checked above
        found += [(number, m) for m in re.findall(r"(?<![\w/.])jaxreid(?:\.\w+)+", text)]
    return found


# --- the tests ----------------------------------------------------------------------------

DOCS = doc_files()


def test_the_docs_exist():
    names = {os.path.relpath(f, ROOT) for f in DOCS}
    assert {"README.md", "CHANGELOG.md", "docs/architecture.md", "docs/experiments.md"} <= names


def test_readme_is_short():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 200  # the rest lives in docs/


@pytest.mark.parametrize("path", DOCS, ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def documented_failure(problem: str, text: str) -> bool:
    """Whether `problem` is a validation error that the page shows as the command's output
    (`Error: <message>`, as `python -m jaxreid.main` prints it): an example of a mistake."""
    prefix = "ConfigError: "
    return problem.startswith(prefix) and f"Error: {problem[len(prefix) :]}\n" in text


@pytest.mark.parametrize("path", DOCS, ids=lambda p: os.path.relpath(p, ROOT))
def test_commands_parse_and_configs_validate(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = commands(path)
    problems = [
        f"{os.path.relpath(path, ROOT)}:{line}: {command}\n    {problem}"
        for line, command in found
        for problem in command_problems(command)
        if not documented_failure(problem, text)
    ]
    problems += spec_problems(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: os.path.relpath(p, ROOT))
def test_named_modules_and_functions_exist(path):
    problems = [
        f"{os.path.relpath(path, ROOT)}:{line}: {problem}"
        for line, dotted in names(path)
        for problem in [name_problem(dotted)]
        if problem
    ]
    assert not problems, "\n".join(problems)


def test_the_documented_error_message_is_the_real_one():
    """docs/configs.md shows a mistyped value and the message it gets, word for word."""
    path = os.path.join(ROOT, "docs", "configs.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    failing = [
        (command, problems)
        for _, command in commands(path)
        for problems in [command_problems(command)]
        if problems
    ]
    assert len(failing) == 1, failing
    command, problems = failing[0]
    assert "sofmax" in command and len(problems) == 1
    assert documented_failure(problems[0], text), problems[0]


def test_the_readme_shows_the_two_setup_commands_ci_runs():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    test_command = 'pip install -e ".[tf,test]" && python -m pytest -q'
    assert test_command in readme and test_command in ci
    assert (
        'pip install -e ".[tf]" && python -m jaxreid.main --config=configs/synthetic.py '
        "--workdir=/tmp/jaxreid/synthetic" in readme
    )


# The checker itself, on made-up pages: each kind of fault is reported.


def test_checker_reports_broken_links_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n\n## Two words, and more\n\ntext\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n[ok](docs/a.md) [ok](docs/a.md#two-words-and-more) [ok](#top)\n"
        "[ok](https://example.org/none.md) `[not a link](nowhere.md)`\n"
        "[bad file](docs/b.md)\n[bad anchor](docs/a.md#two-words)\n[bad self](#bottom)\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    problems = broken_links(str(page))
    assert len(problems) == 3, problems
    assert "docs/b.md" in problems[0] and ":5:" in problems[0]
    assert "#two-words" in problems[1] and "#bottom" in problems[2]


def test_slug_follows_githubs_rule():
    # Worked by hand from GitHub's rendering of such headings.
    assert slug("Cross-modal distillation (Hafner 2018, §3.3)") == (
        "cross-modal-distillation-hafner-2018-33"
    )
    assert slug("`config.eval.*` keys") == "configeval-keys"
    assert slug("One-stream / zero-padding") == "one-stream--zero-padding"


def test_checker_reports_names_that_do_not_exist(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "`jaxreid.evaluation.rank` `jaxreid.evaluation.ranking` `jaxreid.config` "
        "`jaxreid.search.Gallery.load`\n"
        "```python\nfrom jaxreid.visualization import plot_rank_list, plot_rank_lsts\n"
        "from jaxreid import nomodule\n```\n"
        "`jaxreid.evaluation.rankk` `jaxreid.nothere.x`\n"
    )
    found = names(str(page))
    problems = [p for _, dotted in found for p in [name_problem(dotted)] if p]
    assert len(found) == 10, found  # the import line also names its module
    assert [p.split(":")[0] for p in problems] == [
        "jaxreid.visualization.plot_rank_lsts",
        "jaxreid.nomodule",
        "jaxreid.evaluation.rankk",
        "jaxreid.nothere.x",
    ], problems


def test_checker_reports_bad_commands(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\n"
        "python -m jaxreid.main --config=configs/synthetic.py:quick --workdir=W \\\n"
        "    --config.optim.learning_rate=0.1   # fine\n"
        "python -m jaxreid.main --config=configs/synthetic.py --workdir=W --config.loss.name=sofmax\n"
        "python -m jaxreid.main --config=configs/nothere.py --workdir=W\n"
        "python -m jaxreid.main --config=configs/synthetic.py --work_dir=W\n"
        "python -m jaxreid.nothere --workdir=W\n"
        "```\n"
        "Inline: `python -m jaxreid.evaluate --workdir=W --config.eval.metrik=cosine`.\n"
    )
    found = commands(str(page))
    assert [line for line, _ in found] == [2, 4, 5, 6, 7, 9]
    verdicts = [command_problems(command) for _, command in found]
    assert verdicts[0] == []
    assert "sofmax" in verdicts[1][0]
    assert "nothere.py" in verdicts[2][0]
    assert "--work_dir" in verdicts[3][0]
    assert "no module jaxreid.nothere" in verdicts[4][0]
    assert "metrik" in verdicts[5][0]

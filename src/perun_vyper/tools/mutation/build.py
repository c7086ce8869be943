"""Compiling mutants: which contracts a source is part of, their bytecode, and what it is reached by.

The compiler is vyper's own Python API with the settings ape-vyper uses for this project (ape-config.yaml:
vyper 0.4.3, EVM prague), checked at start: the unmutated sources must compile to exactly the bytecode
Ape compiled (``Builder.check``), or the run stops. Each worker compiles in its own scratch copy of
``contracts/``, so workers never see each other's mutants and the project's files are never touched.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from vyper.compiler import compile_from_file_input
from vyper.compiler.input_bundle import FilesystemInputBundle
from vyper.compiler.settings import Settings

from .mutants import MODULE_LEVEL, Mutant

EVM_VERSION = "prague"  # ape-config.yaml `vyper.evm_version`
_IMPORT = re.compile(r"^from\s+(\.+)(\w*)\s+import\s+(\w+)", re.MULTILINE)
_CALL = re.compile(r"(?:(\w+)\.)?(_?\w+)\(")
# `staticcall VIRTUAL_ADJUDICATOR.settlement(` and `staticcall IApp(params.app).valid_transition(`
_CROSS_CALL = re.compile(r"(?:extcall|staticcall)\s+[\w.]+(?:\([\w.]*\))?\.(\w+)\(")


class Stillborn(Exception):
    """The mutant does not compile."""


@dataclass(frozen=True)
class Code:
    """A contract's deployment and runtime bytecode, hex with 0x."""

    deployment: str
    runtime: str

    def same_as(self, other: Code) -> bool:
        """Equal up to the metadata trailer, which hashes the source text itself."""
        return self.runtime == other.runtime and _strip(self.deployment) == _strip(other.deployment)


def _strip(bytecode: str) -> str:
    raw = bytes.fromhex(bytecode[2:])
    return raw[: len(raw) - int.from_bytes(raw[-2:], "big") - 2].hex()


def deployables(root: Path) -> dict[str, str]:
    """Contract name -> source, for every contract Ape compiles that imports no-one's storage (the
    shipped adjudicators and the test contracts); modules are the files under contracts/modules."""
    found = {}
    for path in sorted((root / "contracts").rglob("*.vy")):
        relative = path.relative_to(root).as_posix()
        if "/modules/" not in relative:
            found[path.stem] = relative
    return found


def imports(root: Path, source: str) -> set[str]:
    """Every .vy source ``source`` imports, directly or through modules."""
    seen: set[str] = set()
    todo = [source]
    while todo:
        for relative in _aliases(root, todo.pop()).values():
            if (root / relative).is_file() and relative not in seen:
                seen.add(relative)
                todo.append(relative)
    return seen


def dependents(root: Path, source: str) -> list[str]:
    """The contracts (names) whose bytecode contains ``source``."""
    return [name for name, own in deployables(root).items() if own == source or source in imports(root, own)]


class Builder:
    """Compiles mutants in a scratch copy of the project's contracts."""

    def __init__(self, root: Path, scratch: Path):
        self.root = root
        self.scratch = scratch
        shutil.rmtree(scratch / "contracts", ignore_errors=True)
        shutil.copytree(root / "contracts", scratch / "contracts")
        self._dependents: dict[str, list[str]] = {}
        self._sources = deployables(root)
        self.original: dict[str, Code] = {}

    def compile(self, name: str) -> Code:
        """One contract from the scratch tree."""
        bundle = FilesystemInputBundle([self.scratch])
        file_input = bundle.load_file(self.scratch / self._sources[name])
        out = compile_from_file_input(
            file_input,
            input_bundle=bundle,
            settings=Settings(evm_version=EVM_VERSION),
            output_formats=["bytecode", "bytecode_runtime"],
        )
        return Code(out["bytecode"], out["bytecode_runtime"])

    def check(self, compiled: dict[str, tuple[str, str]]) -> None:
        """Compiles every contract unmutated and compares with Ape's bytecode (``compiled``: name ->
        (deployment, runtime)); raises RuntimeError naming the first that differs."""
        for name in self._sources:
            code = self.compile(name)
            if name in compiled and (code.deployment, code.runtime) != compiled[name]:
                raise RuntimeError(
                    f"{name}: vyper's API with EVM {EVM_VERSION} does not reproduce Ape's "
                    "bytecode; align build.EVM_VERSION with ape-config.yaml"
                )
            self.original[name] = code

    def build(self, mutant: Mutant) -> dict[str, Code]:
        """The mutated bytecode of every contract the mutant's source is part of, only those that
        changed (empty: the mutant compiles to the original bytecode). Raises Stillborn."""
        names = self._dependents.setdefault(mutant.source, dependents(self.root, mutant.source))
        path = self.scratch / mutant.source
        original = path.read_text()
        path.write_text(mutant.text)
        try:
            built = {}
            for name in names:
                try:
                    code = self.compile(name)
                except Exception as error:  # any compiler error means "does not compile"
                    first = str(error).splitlines()[0] if str(error) else ""
                    raise Stillborn(f"{type(error).__name__}: {first}") from error
                if not code.same_as(self.original[name]):
                    built[name] = code
            return built
        finally:
            path.write_text(original)


def call_graph(root: Path) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(contract, external function) -> every (source, function) it runs, `__init__` included. Built
    from the text: internal calls by name, through the modules a source imports, and calls to the other
    adjudicator (`staticcall`/`extcall` by function name) followed into it."""
    functions: dict[str, dict[str, tuple[str, bool]]] = {}  # source -> name -> (body, external)
    for source in {own for own in deployables(root).values()} | {
        dep for own in deployables(root).values() for dep in imports(root, own)
    }:
        functions[source] = _functions((root / source).read_text())
    aliases = {source: _aliases(root, source) for source in functions}
    graph = {}
    for name, own in deployables(root).items():
        members = [own, *sorted(imports(root, own))]
        for source in members:
            for function, (_, external) in functions[source].items():
                # A module's `__init__` runs inside the contract's, which calls it by name.
                if external or (function == "__init__" and source == own):
                    graph[(name, function)] = _reach(source, function, functions, aliases, root)
    # Calls into another contract: follow them into every contract exposing that function name.
    for key, reached in graph.items():
        for source, function in list(reached):
            for called in _CROSS_CALL.findall(functions[source][function][0]):
                for (other, entry), more in graph.items():
                    if entry == called and other != key[0]:
                        reached |= more
    return graph


def _reach(source, function, functions, aliases, root) -> set[tuple[str, str]]:
    seen = {(source, function)}
    todo = [(source, function)]
    while todo:
        current, name = todo.pop()
        for alias, called in _CALL.findall(functions[current][name][0]):
            target = current if alias in ("", "self") else aliases[current].get(alias)
            if target and called in functions.get(target, {}) and (target, called) not in seen:
                seen.add((target, called))
                todo.append((target, called))
    return seen


def _aliases(root: Path, source: str) -> dict[str, str]:
    """Import alias -> imported source (path relative to ``root``) of one source's `from . import` lines."""
    folder = Path(source).parent
    found = {}
    for dots, package, name in _IMPORT.findall((root / source).read_text()):
        base = folder
        for _ in range(len(dots) - 1):
            base = base.parent
        found[name] = ((base / package / f"{name}.vy") if package else (base / f"{name}.vy")).as_posix()
    return found


def _functions(text: str) -> dict[str, tuple[str, bool]]:
    """name -> (body text, external?) of every function in a source."""
    found = {}
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("def ")]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        decorators = []
        back = start - 1
        while back >= 0 and lines[back].startswith("@"):
            decorators.append(lines[back])
            back -= 1
        name = lines[start][4:].split("(")[0].strip()
        found[name] = ("\n".join(lines[start:end]), "@external" in decorators)
    return found


def entry_points(graph, mutant: Mutant, contracts: list[str]) -> set[tuple[str, str]]:
    """The (contract, external function) pairs that run the mutated code; for code outside functions
    (constants, pragmas), every entry point of ``contracts``, the contracts built from the source."""
    if mutant.function == MODULE_LEVEL:
        return {key for key in graph if key[0] in contracts}
    return {key for key, reached in graph.items() if (mutant.source, mutant.function) in reached}

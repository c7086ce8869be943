"""The mutants of the shipped Vyper sources: a small generator over the Vyper AST (docs/MUTATION.md 1).

Every mutant is one edit of one source's text at positions the Vyper parser reports, so it is exactly
what a reviewer would see in a diff. The operators are the classic ones for contracts: comparison
boundaries and negations, arithmetic, bit and boolean operator swaps, integer constants (shifts and masks
included) off by one, negated conditions, deleted checks, deleted state writes and calls, removed events,
swapped arguments and flipped booleans. Mutants that do not compile are generated and then dropped by the
compiler (``compile.py``); they are counted, never run.

A mutant's id is a hash of where it is (source, function, the line's text) and what it does, so it stays
the same when unrelated lines move: docs/MUTATION.md and the equivalence notes refer to mutants by it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vyper import ast as vy_ast

# The sources that ship: both adjudicators and every module they are built from. The test contracts in
# contracts/test are tools of the suite and are not mutated (the hashing harnesses are rebuilt from a
# mutated module, as the adjudicators are).
SHIPPED = (
    "contracts/LedgerAdjudicator.vy",
    "contracts/VirtualAdjudicator.vy",
    "contracts/modules/asset_holder.vy",
    "contracts/modules/channel_bounds.vy",
    "contracts/modules/ledger_types.vy",
    "contracts/modules/packed_words.vy",
    "contracts/modules/revert_reason.vy",
    "contracts/modules/typed_signatures.vy",
    "contracts/modules/virtual_types.vy",
)

# What the function column says for code outside any function (constants, the pragma lines).
MODULE_LEVEL = "(module)"

_COMPARE = {
    # operator: (boundary flip, negation)
    "Lt": ("<=", ">="),
    "LtE": ("<", ">"),
    "Gt": (">=", "<="),
    "GtE": (">", "<"),
    "Eq": (None, "!="),
    "NotEq": (None, "=="),
}
_COMPARE_TEXT = {"Lt": "<", "LtE": "<=", "Gt": ">", "GtE": ">=", "Eq": "==", "NotEq": "!="}
_BINOP = {
    "Add": ("+", "-"),
    "Sub": ("-", "+"),
    "Mult": ("*", "//"),
    "FloorDiv": ("//", "*"),
    "Mod": ("%", "//"),
    "Pow": ("**", "*"),
    "BitAnd": ("&", "|"),
    "BitOr": ("|", "&"),
    "BitXor": ("^", "|"),
    "LShift": ("<<", ">>"),
    "RShift": (">>", "<<"),
}
_SWAPPED_BUILTINS = {
    "min": "max",
    "max": "min",
    "unsafe_add": "unsafe_sub",
    "unsafe_sub": "unsafe_add",
    "unsafe_mul": "unsafe_div",
    "unsafe_div": "unsafe_mul",
}
# Builtins whose two arguments commute: swapping them yields the same value, so no swap is generated.
_COMMUTATIVE_BUILTINS = {"min", "max", "unsafe_add", "unsafe_mul"}
# Size arguments of types (String[32], DynArray[Lock, 16]): changing them changes a type, not a value.
_TYPE_CONSTRUCTORS = {"String", "Bytes", "DynArray", "HashMap"}
_PRAGMAS = ("# pragma nonreentrancy on",)


@dataclass(frozen=True)
class Mutant:
    """One edit of one shipped source."""

    id: str
    source: str  # path relative to the project root
    function: str  # the enclosing function's name, or MODULE_LEVEL
    line: int  # 1-based line of the edit's start
    operator: str  # the operator's name (docs/MUTATION.md 1)
    before: str  # the edited lines, as they were
    after: str  # the same lines, mutated
    text: str  # the whole mutated source

    def diff(self) -> str:
        """A two-line diff of the edit, for the report."""
        old = "\n".join(f"- {line}" for line in self.before.splitlines())
        new = "\n".join(f"+ {line}" for line in self.after.splitlines())
        return f"{old}\n{new}"


@dataclass(frozen=True)
class _Edit:
    start: tuple[int, int]  # (line, column) of the first replaced character
    end: tuple[int, int]  # (line, column) just after the last one
    replacement: str
    operator: str
    node: vy_ast.VyperNode


def generate(root: Path, sources: tuple[str, ...] = SHIPPED) -> list[Mutant]:
    """Every mutant of ``sources`` (paths relative to ``root``), in source order."""
    return [mutant for source in sources for mutant in mutants_of(source, (root / source).read_text())]


def mutants_of(source: str, text: str) -> list[Mutant]:
    """The mutants of one source's ``text``."""
    module = vy_ast.parse_to_ast(text)
    lines = text.splitlines(keepends=True)
    functions = [(f.lineno, f.end_lineno, f.name) for f in module.get_children(vy_ast.FunctionDef)]
    seen: dict[str, int] = {}
    found = []
    for edit in sorted(_edits(module, lines), key=lambda e: (e.start, e.end, e.operator, e.replacement)):
        mutated = _apply(lines, edit)
        if mutated == text:
            continue
        first, last = edit.start[0], edit.end[0]
        before = "".join(lines[first - 1 : last])
        grown = mutated.count("\n") - text.count("\n")
        after = "".join(mutated.splitlines(keepends=True)[first - 1 : last + grown])
        function = next((name for lo, hi, name in functions if lo <= first <= hi), MODULE_LEVEL)
        key = f"{source}|{function}|{edit.operator}|{before.strip()}|{after.strip()}"
        seen[key] = seen.get(key, 0) + 1
        digest = hashlib.sha1(f"{key}|{seen[key]}".encode()).hexdigest()[:8]
        found.append(
            Mutant(
                f"{Path(source).stem}-{digest}",
                source,
                function,
                first,
                edit.operator,
                before.rstrip("\n"),
                after.rstrip("\n"),
                mutated,
            )
        )
    for number, line in enumerate(lines, start=1):
        if line.strip() in _PRAGMAS:
            mutated = "".join(lines[: number - 1] + lines[number:])
            key = f"{source}|{MODULE_LEVEL}|pragma|{line.strip()}"
            digest = hashlib.sha1(key.encode()).hexdigest()[:8]
            found.append(
                Mutant(
                    f"{Path(source).stem}-{digest}",
                    source,
                    MODULE_LEVEL,
                    number,
                    "deleted pragma",
                    line.rstrip("\n"),
                    "",
                    mutated,
                )
            )
    return found


def _apply(lines: list[str], edit: _Edit) -> str:
    (l1, c1), (l2, c2) = edit.start, edit.end
    head = "".join(lines[: l1 - 1]) + lines[l1 - 1][:c1]
    tail = lines[l2 - 1][c2:] + "".join(lines[l2:])
    return head + edit.replacement + tail


def _span(node: vy_ast.VyperNode) -> tuple[tuple[int, int], tuple[int, int]]:
    return (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)


def _text(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (l1, c1), (l2, c2) = start, end
    if l1 == l2:
        return lines[l1 - 1][c1:c2]
    return lines[l1 - 1][c1:] + "".join(lines[l1 : l2 - 1]) + lines[l2 - 1][:c2]


def _operator_edit(lines, left, right, old: str, new: str, name: str, node) -> _Edit | None:
    """Replaces the operator token ``old`` between ``left`` and ``right`` by ``new``."""
    (_, (l1, c1)), ((l2, c2), _) = _span(left), _span(right)
    gap = _text(lines, (l1, c1), (l2, c2))
    at = gap.find(old)
    if at < 0 or gap.count(old) != 1:
        return None
    # The gap may span lines (a parenthesised expression); find the token's line and column.
    before = gap[:at]
    line = l1 + before.count("\n")
    col = (c1 + at) if "\n" not in before else len(before.rpartition("\n")[2])
    return _Edit((line, col), (line, col + len(old)), new, name, node)


def _statement_delete(node, name: str) -> _Edit:
    return _Edit(*_span(node), "pass", name, node)


def _in_type(node: vy_ast.VyperNode) -> bool:
    parent = node.get_ancestor()
    while parent is not None:
        if (
            isinstance(parent, vy_ast.Subscript)
            and isinstance(parent.value, vy_ast.Name)
            and parent.value.id in _TYPE_CONSTRUCTORS
        ):
            return True
        if isinstance(parent, (vy_ast.arg, vy_ast.FunctionDef)) and node in _annotations(parent):
            return True
        parent = parent.get_ancestor()
    return False


def _annotations(node) -> list:
    roots = [node.annotation] if isinstance(node, vy_ast.arg) else [node.returns]
    return [n for root in roots if root is not None for n in [root, *root.get_descendants()]]


def _placeholder(node: vy_ast.VyperNode) -> bool:
    """A literal that only initialises a local for a tuple assignment right after (``a: uint256 = 0``
    ... ``a, b = f()``, other such declarations, ``empty(T)`` ones included, in between): Vyper requires a
    value at declaration, and no statement reads this one."""
    declaration = node.get_ancestor()
    if not (isinstance(declaration, vy_ast.AnnAssign) and declaration.value is node):
        return False
    container = declaration.get_ancestor()
    block = next(
        (body for body in (getattr(container, "body", []), getattr(container, "orelse", [])) if declaration in body),
        [],
    )
    for statement in block[block.index(declaration) + 1 :] if block else []:
        if isinstance(statement, vy_ast.AnnAssign) and _initial_value(statement.value):
            continue
        targets = (
            statement.target.elements
            if isinstance(statement, vy_ast.Assign) and isinstance(statement.target, vy_ast.Tuple)
            else []
        )
        return any(isinstance(t, vy_ast.Name) and t.id == declaration.target.id for t in targets)
    return False


def _initial_value(value) -> bool:
    """A declaration's value that only satisfies Vyper's rule: a literal, or ``empty(T)``."""
    if isinstance(value, (vy_ast.Int, vy_ast.NameConstant)):
        return True
    return isinstance(value, vy_ast.Call) and isinstance(value.func, vy_ast.Name) and value.func.id == "empty"


def _is_raise(statement) -> bool:
    if isinstance(statement, vy_ast.Raise):
        return True
    call = statement.value if isinstance(statement, vy_ast.Expr) else None
    # `revert_reason._raise(...)` and the contracts' `self._refuse_...()` helpers, which only call it.
    name = getattr(call.func, "attr", "") if isinstance(call, vy_ast.Call) else ""
    return name == "_raise" or name.startswith("_refuse")


def _state_target(target) -> bool:
    while isinstance(target, (vy_ast.Subscript, vy_ast.Attribute)):
        if isinstance(target, vy_ast.Attribute) and isinstance(target.value, vy_ast.Name):
            return target.value.id == "self"
        target = target.value
    return False


def _edits(module: vy_ast.Module, lines: list[str]) -> Iterator[_Edit]:
    for node in module.get_descendants():
        if isinstance(node, vy_ast.Compare) and type(node.op).__name__ in _COMPARE:
            op = type(node.op).__name__
            old = _COMPARE_TEXT[op]
            for name, new in zip(("comparison boundary", "comparison negated"), _COMPARE[op], strict=True):
                if new and (edit := _operator_edit(lines, node.left, node.right, old, new, name, node)):
                    yield edit
        elif isinstance(node, vy_ast.BinOp) and type(node.op).__name__ in _BINOP:
            old, new = _BINOP[type(node.op).__name__]
            name = (
                "shift swapped"
                if old in ("<<", ">>")
                else ("bit operator swapped" if old in ("&", "|", "^") else "arithmetic swapped")
            )
            if edit := _operator_edit(lines, node.left, node.right, old, new, name, node):
                yield edit
        elif isinstance(node, vy_ast.BoolOp):
            old, new = ("and", "or") if isinstance(node.op, vy_ast.And) else ("or", "and")
            for left, right in zip(node.values, node.values[1:], strict=False):
                if edit := _operator_edit(lines, left, right, old, new, "boolean operator swapped", node):
                    yield edit
        elif isinstance(node, vy_ast.UnaryOp):
            yield _Edit(*_span(node), _text(lines, *_span(node.operand)), "unary operator removed", node)
        elif isinstance(node, vy_ast.If):
            if not isinstance(node.test, vy_ast.UnaryOp):
                start, end = _span(node.test)
                yield _Edit(start, end, f"not ({_text(lines, start, end)})", "condition negated", node)
            if len(node.body) == 1 and not node.orelse and _is_raise(node.body[0]):
                yield _statement_delete(node, "check deleted")
        elif isinstance(node, vy_ast.Assert):
            yield _statement_delete(node, "check deleted")
            start, end = _span(node.test)
            yield _Edit(start, end, f"not ({_text(lines, start, end)})", "condition negated", node)
        elif isinstance(node, (vy_ast.Assign, vy_ast.AugAssign)) and _state_target(node.target):
            yield _statement_delete(node, "state write deleted")
            if isinstance(node, vy_ast.AugAssign) and type(node.op).__name__ in ("Add", "Sub"):
                old, new = _BINOP[type(node.op).__name__]
                if edit := _operator_edit(
                    lines, node.target, node.value, f"{old}=", f"{new}=", "arithmetic swapped", node
                ):
                    yield edit
        elif isinstance(node, vy_ast.Raise):
            parent = node.get_ancestor()
            if not (isinstance(parent, vy_ast.If) and len(parent.body) == 1):
                yield _statement_delete(node, "check deleted")
        elif isinstance(node, vy_ast.Log):
            yield _statement_delete(node, "event removed")
        elif isinstance(node, vy_ast.Expr) and isinstance(node.value, (vy_ast.Call, vy_ast.ExtCall, vy_ast.StaticCall)):
            parent = node.get_ancestor()
            if not (isinstance(parent, vy_ast.If) and len(parent.body) == 1 and _is_raise(node)):
                yield _statement_delete(node, "call deleted")
        elif isinstance(node, vy_ast.Int) and not _in_type(node) and not _placeholder(node):
            start, end = _span(node)
            for value in (node.value + 1, node.value - 1):
                if value >= 0:
                    yield _Edit(start, end, str(value), "constant off by one", node)
        elif isinstance(node, vy_ast.Hex) and not _in_type(node):
            start, end = _span(node)
            digits = node.value[2:]
            flipped = digits[:-1] + format((int(digits[-1], 16) + 1) % 16, "x")
            yield _Edit(start, end, "0x" + flipped, "constant off by one", node)
        elif isinstance(node, vy_ast.NameConstant) and isinstance(node.value, bool) and not _placeholder(node):
            yield _Edit(*_span(node), str(not node.value), "boolean flipped", node)
        if isinstance(node, vy_ast.Call):
            func = node.func
            if isinstance(func, vy_ast.Name) and func.id in _SWAPPED_BUILTINS:
                yield _Edit(*_span(func), _SWAPPED_BUILTINS[func.id], "builtin swapped", node)
            commutes = isinstance(func, vy_ast.Name) and func.id in _COMMUTATIVE_BUILTINS
            pairs = [] if commutes else zip(node.args, node.args[1:], strict=False)
            for left, right in pairs:
                a, b = _text(lines, *_span(left)), _text(lines, *_span(right))
                if a != b:
                    yield _Edit(_span(left)[0], _span(right)[1], f"{b}, {a}", "arguments swapped", node)

"""perun_vyper.tools.mutation: the generator's edits, the builder's bytecode and the call graph that picks
each mutant's tests (the run itself: tests/unit/mutation/test_sample.py)."""

from pathlib import Path

import pytest

from perun_vyper.tools.mutation.build import Builder, Stillborn, call_graph, dependents, entry_points
from perun_vyper.tools.mutation.mutants import MODULE_LEVEL, SHIPPED, generate, mutants_of
from perun_vyper.tools.mutation.report import classify, score
from perun_vyper.tools.mutation.run import _plan_tests

ROOT = Path(__file__).resolve().parents[3]

SNIPPET = '''# pragma version ~=0.4.3
# pragma nonreentrancy on

LIMIT: constant(uint256) = 7

counter: uint256

event Bumped:
    amount: uint256


@external
def bump(amount: uint256, name: String[32]) -> bool:
    """
    @notice A function with one of every construct the generator mutates.
    """
    assert amount < LIMIT, "too much"
    if amount == 0 and name == "":
        raise "empty"
    self.counter += amount & 3
    log Bumped(amount=max(amount, 1))
    return True
'''


def _edits(operator: str) -> list[tuple[str, str]]:
    return [(m.before.strip(), m.after.strip()) for m in mutants_of("x.vy", SNIPPET) if m.operator == operator]


def test_mutants_of__comparison__boundary_and_negation():
    assert _edits("comparison boundary") == [
        ('assert amount < LIMIT, "too much"', 'assert amount <= LIMIT, "too much"')
    ]
    assert ('assert amount < LIMIT, "too much"', 'assert amount >= LIMIT, "too much"') in _edits("comparison negated")
    assert ('if amount == 0 and name == "":', 'if amount != 0 and name == "":') in _edits("comparison negated")


def test_mutants_of__checks__deleted_and_negated():
    deleted = _edits("check deleted")
    assert ('assert amount < LIMIT, "too much"', "pass") in deleted
    # An `if` whose only statement raises is a check: deleted whole.
    assert ('if amount == 0 and name == "":\n        raise "empty"', "pass") in deleted
    assert ('if amount == 0 and name == "":', 'if not (amount == 0 and name == ""):') in _edits("condition negated")


def test_mutants_of__state_write_event_and_operators():
    assert _edits("state write deleted") == [("self.counter += amount & 3", "pass")]
    assert ("self.counter += amount & 3", "self.counter -= amount & 3") in _edits("arithmetic swapped")
    assert _edits("bit operator swapped") == [("self.counter += amount & 3", "self.counter += amount | 3")]
    assert _edits("event removed") == [("log Bumped(amount=max(amount, 1))", "pass")]
    assert _edits("builtin swapped") == [("log Bumped(amount=max(amount, 1))", "log Bumped(amount=min(amount, 1))")]
    assert _edits("boolean operator swapped") == [('if amount == 0 and name == "":', 'if amount == 0 or name == "":')]
    assert _edits("boolean flipped") == [("return True", "return False")]
    assert _edits("deleted pragma") == [("# pragma nonreentrancy on", "")]


def test_mutants_of__arguments_swapped__only_where_order_matters():
    source = SNIPPET.replace("max(amount, 1)", "unsafe_sub(max(amount, 1), unsafe_add(amount, 2))")
    swapped = [m.after.strip() for m in mutants_of("x.vy", source) if m.operator == "arguments swapped"]
    # Only unsafe_sub's: max and unsafe_add commute, so swapping theirs could never be detected.
    assert swapped == ["log Bumped(amount=unsafe_sub(unsafe_add(amount, 2), max(amount, 1)))"]


def test_mutants_of__constants__off_by_one_but_never_type_sizes():
    constants = _edits("constant off by one")
    assert ("LIMIT: constant(uint256) = 7", "LIMIT: constant(uint256) = 8") in constants
    assert ("LIMIT: constant(uint256) = 7", "LIMIT: constant(uint256) = 6") in constants
    assert not [edit for edit in constants if "String[" in edit[0]]


def test_mutants_of__ids__stable_when_other_lines_move_and_unique():
    before = {(m.operator, m.after.strip()): m.id for m in mutants_of("x.vy", SNIPPET)}
    moved = SNIPPET.replace("counter: uint256\n", "counter: uint256\n\n\nother: uint256\n")
    after = {(m.operator, m.after.strip()): m.id for m in mutants_of("x.vy", moved)}
    assert len(set(before.values())) == len(before)
    assert before == {key: value for key, value in after.items() if key in before}


def test_mutants_of__function__named_or_module_level():
    functions = {m.function for m in mutants_of("x.vy", SNIPPET)}
    assert functions == {"bump", MODULE_LEVEL}


def test_generate__shipped_sources__every_source_has_mutants():
    found = {m.source for m in generate(ROOT)}
    assert found == set(SHIPPED)


@pytest.fixture(scope="module")
def builder(project, tmp_path_factory):
    built = Builder(ROOT, tmp_path_factory.mktemp("mutation"))
    project.load_contracts()  # compiled lazily otherwise: compare against every contract
    types = project.manifest.contract_types
    built.check({name: (ct.deployment_bytecode.bytecode, ct.runtime_bytecode.bytecode) for name, ct in types.items()})
    return built


def test_builder__unmutated__reproduces_apes_bytecode(builder, project):
    ledger = project.LedgerAdjudicator.contract_type
    assert builder.original["LedgerAdjudicator"].runtime == ledger.runtime_bytecode.bytecode
    assert builder.original["LedgerAdjudicator"].deployment == ledger.deployment_bytecode.bytecode


def _mutant(operator: str, source: str, function: str, contains: str):
    return next(
        m
        for m in generate(ROOT, (source,))
        if m.operator == operator and m.function == function and contains in m.after
    )


def test_builder__module_mutant__rebuilds_every_contract_using_it(builder):
    mutant = _mutant("comparison negated", "contracts/modules/typed_signatures.vy", "_recover", "")
    built = builder.build(mutant)
    assert set(built) <= set(dependents(ROOT, mutant.source))
    assert {"LedgerAdjudicator", "VirtualAdjudicator"} <= set(built)
    # The scratch copy is restored: the next build starts from the original.
    assert builder.compile("LedgerAdjudicator").same_as(builder.original["LedgerAdjudicator"])


def test_builder__type_error__stillborn(builder):
    mutant = next(m for m in generate(ROOT, ("contracts/LedgerAdjudicator.vy",)) if "convert(uint256," in m.after)
    with pytest.raises(Stillborn):
        builder.build(mutant)


def test_call_graph__conclude__reaches_modules_and_the_virtual_adjudicator():
    graph = call_graph(ROOT)
    reached = graph[("LedgerAdjudicator", "conclude")]
    assert ("contracts/VirtualAdjudicator.vy", "settlement") in reached
    assert ("contracts/modules/packed_words.vy", "_deadline") in reached
    assert ("contracts/modules/asset_holder.vy", "_pay") in reached
    assert ("contracts/modules/asset_holder.vy", "_add_deposit") not in reached


def test_call_graph__progress__reaches_the_app_through_its_interface():
    # `staticcall IApp(params.app).valid_transition(...)`: followed into every contract with that function.
    graph = call_graph(ROOT)
    for entry in ("progress", "register_and_progress"):
        assert ("contracts/apps/SlaApp.vy", "valid_transition") in graph[("AppAdjudicator", entry)]
    assert ("contracts/apps/SlaApp.vy", "valid_transition") not in graph[("AppAdjudicator", "register")]


def test_entry_points__module_function__every_contract_calling_it():
    graph = call_graph(ROOT)
    mutant = _mutant("event removed", "contracts/modules/asset_holder.vy", "_pay", "pass")
    entries = entry_points(graph, mutant, dependents(ROOT, mutant.source))
    assert ("LedgerAdjudicator", "conclude") in entries
    assert ("LedgerAdjudicator", "close") in entries
    assert ("LedgerAdjudicator", "withdraw") not in entries


def test_plan_tests__module_level__every_test_of_the_contracts_built_from_it():
    # A public constant's getter is no `def`: the call graph cannot list it, so a constant's mutant runs
    # every test that calls the contract at all.
    mutant = _mutant(
        "constant off by one", "contracts/apps/SlaApp.vy", MODULE_LEVEL, "PROVIDER: public(constant(uint256)) = 2"
    )
    test_map = {
        "getter": {"seconds": 0.1, "entries": [["SlaApp", "PROVIDER"]]},
        "ledger": {"seconds": 0.1, "entries": [["LedgerAdjudicator", "close"]]},
    }
    assert _plan_tests(mutant, call_graph(ROOT), test_map, ROOT) == ["getter"]


def test_score__equivalent_and_identical__left_out():
    mutant = generate(ROOT, ("contracts/modules/revert_reason.vy",))[0]
    assert classify(mutant, {"status": "survived"}, {mutant.id: "why"}) == "equivalent"
    assert classify(mutant, {"status": "survived"}, {}) == "survived"
    assert classify(mutant, {"status": "error"}, {}) == "survived"
    assert classify(mutant, None, {}) == "not run"
    counts = {"killed": 97, "timed out": 0, "survived": 3, "identical": 50, "equivalent": 9}
    assert score(counts) == pytest.approx(0.97)


PLACEHOLDERS = """
@internal
def _pair() -> (uint256, bool, bytes32):
    return 1, True, empty(bytes32)


@external
def read() -> uint256:
    a: uint256 = 0
    ok: bool = False
    h: bytes32 = empty(bytes32)
    a, ok, h = self._pair()
    b: uint256 = 5
    return a + b
"""


def test_mutants_of__declaration_only_overwritten_by_a_tuple__not_mutated():
    constants = [(m.before.strip(), m.after.strip()) for m in mutants_of("x.vy", PLACEHOLDERS)]
    # `empty(T)` declarations between them and the tuple assignment are placeholders too.
    assert not [edit for edit in constants if edit[0] in ("a: uint256 = 0", "ok: bool = False")]
    # A declaration whose value is read is mutated as usual.
    assert ("b: uint256 = 5", "b: uint256 = 6") in constants


def test_mutants_of__bare_raise__deleted():
    source = "@internal\n@pure\ndef _fail(reason: String[8]):\n    raise reason\n"
    assert [(m.before.strip(), m.after.strip()) for m in mutants_of("x.vy", source)] == [("raise reason", "pass")]

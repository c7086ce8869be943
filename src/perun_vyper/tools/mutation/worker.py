"""The pytest plugin a mutation worker runs in: ``ape test <suite> -p perun_vyper.tools.mutation.worker``.

One ``ape test`` session per worker runs many mutants: starting Ape and Anvil takes ~12 s, more than most
mutants need to die. For each mutant the worker compiles the mutated contracts (``build.Builder``), puts
their bytecode in place of the compiled contracts' in Ape's project (``project.LedgerAdjudicator`` then
deploys the mutant; ABIs are unchanged by every operator), runs the mutant's tests in order until one
fails, and tears every fixture down so the next mutant starts from a fresh chain (Ape's session snapshot).
The source maps of a mutant are not computed: its contract types carry none, and the unmutated baseline
runs the same way, so no test depends on them.

The plan comes from the file named by PERUN_MUTATION_PLAN (written by ``run.py``):
- ``map``: runs every test once on the unmutated contracts, recording which external functions of which
  contract each test calls (every call, estimate and transaction Ape sends, deployments included) and
  how long it takes; writes the map. Any failing test stops the run: mutants are judged against a green
  baseline only.
- ``run``: takes mutants from the queue (a claim file per mutant, so several workers share one queue)
  and appends one JSON line per mutant to the results file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from _pytest.runner import runtestprotocol
from eth_utils import keccak

from .build import Builder, Code, Stillborn
from .mutants import generate


def pytest_runtestloop(session: pytest.Session):
    plan_path = os.environ.get("PERUN_MUTATION_PLAN")
    if not plan_path:
        return None
    if session.testsfailed:
        raise session.Interrupted(f"{session.testsfailed} errors during collection")
    plan = json.loads(Path(plan_path).read_text())
    worker = _Worker(session, plan)
    if plan["mode"] == "map":
        worker.map()
    else:
        worker.run()
    return True


class _Worker:
    def __init__(self, session: pytest.Session, plan: dict):
        from ape import project

        self.session = session
        self.plan = plan
        self.items = {item.nodeid: item for item in session.items}
        self.project = project
        self.root = Path(plan["root"])
        self.builder = Builder(self.root, Path(plan["scratch"]))
        project.load_contracts()  # Ape compiles lazily; the check needs every contract
        types = project.manifest.contract_types or {}
        self.builder.check(
            {
                name: (ct.deployment_bytecode.bytecode, ct.runtime_bytecode.bytecode)
                for name, ct in types.items()
                if ct.deployment_bytecode and ct.runtime_bytecode
            }
        )
        # Every contract runs from the bytecode built here, without source maps: the baseline and every
        # mutant alike.
        self.originals = {name: self._contract_type(name, code) for name, code in self.builder.original.items()}
        for name, contract_type in self.originals.items():
            types[name] = contract_type

    def _contract_type(self, name: str, code: Code):
        from ethpm_types.contract_type import Bytecode

        compiled = self.project.manifest.contract_types[name]
        return compiled.model_copy(
            update={
                "deployment_bytecode": Bytecode(bytecode=code.deployment),
                "runtime_bytecode": Bytecode(bytecode=code.runtime),
                "pcmap": None,
                "sourcemap": None,
                "dev_messages": None,
            }
        )

    def _run(self, nodeids: list[str]) -> tuple[str | None, int, list[str]]:
        """Runs ``nodeids`` in order until one fails and fails again alone; (that test or None, tests run,
        tests that failed in sequence but passed alone)."""
        # A test module's path stands for all its tests (CI's sample names modules).
        items = [
            self.items[nodeid]
            for entry in dict.fromkeys(nodeids)
            for nodeid in ([entry] if entry in self.items else [n for n in self.items if n.startswith(f"{entry}::")])
        ]
        unconfirmed = []
        for index, item in enumerate(items):
            nextitem = items[index + 1] if index + 1 < len(items) else None
            reports = runtestprotocol(item, log=False, nextitem=nextitem)
            if any(report.failed for report in reports):
                # Tests run here in another order than in `ape test`; a kill counts only if the test also
                # fails alone on a fresh chain, so an order dependence never passes for a kill.
                self.session._setupstate.teardown_exact(None)
                if any(report.failed for report in runtestprotocol(item, log=False, nextitem=None)):
                    return item.nodeid, index + 1, unconfirmed
                unconfirmed.append(item.nodeid)
        return None, len(items), unconfirmed

    def map(self) -> None:
        recorder = _Recorder(self.project, self.builder.original)
        recorder.install()
        found = {}
        items = list(self.items.values())
        for index, item in enumerate(items):
            nextitem = items[index + 1] if index + 1 < len(items) else None
            recorder.calls = set()
            recorder.addresses = {}
            started = time.perf_counter()
            reports = runtestprotocol(item, log=False, nextitem=nextitem)
            failed = [report for report in reports if report.failed]
            if failed:
                raise pytest.UsageError(f"the unmutated baseline fails {item.nodeid}: {failed[0].longreprtext[-2000:]}")
            found[item.nodeid] = {"seconds": round(time.perf_counter() - started, 4), "entries": sorted(recorder.calls)}
        Path(self.plan["map"]).write_text(json.dumps(found, indent=0, sort_keys=True))

    def run(self) -> None:
        mutants = {mutant.id: mutant for mutant in generate(self.root)}
        claims = Path(self.plan["claims"])
        killers: dict[tuple[str, str], list[str]] = {}
        for job in self.plan["queue"]:
            try:
                os.close(os.open(claims / job["id"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            mutant = mutants[job["id"]]
            # Replaced, never rewritten in place: the supervisor reads it every second and must never see
            # a half-written file.
            current = Path(self.plan["current"])
            current.with_suffix(".tmp").write_text(json.dumps({"id": mutant.id, "started": time.time()}))
            os.replace(current.with_suffix(".tmp"), current)
            started = time.perf_counter()
            result = {"id": mutant.id, "fingerprint": self.plan.get("fingerprint", "")}
            try:
                built = self.builder.build(mutant)
            except Stillborn as error:
                result.update(status="stillborn", reason=str(error)[:200])
                built = None
            if built == {}:
                result.update(status="identical")
            elif built:
                key = (mutant.source, mutant.function)
                first = [t for t in killers.get(key, []) if t in job["tests"]]
                order = first + [t for t in job["tests"] if t not in first]
                types = self.project.manifest.contract_types
                for name, code in built.items():
                    types[name] = self._contract_type(name, code)
                try:
                    killer, ran, unconfirmed = self._run(order)
                finally:
                    for name in built:
                        types[name] = self.originals[name]
                result.update(
                    status="killed" if killer else "survived",
                    killer=killer,
                    tests_run=ran,
                    contracts=sorted(built),
                    unconfirmed=unconfirmed,
                )
                if killer and killer not in killers.setdefault(key, []):
                    killers[key].insert(0, killer)
            result["seconds"] = round(time.perf_counter() - started, 2)
            with open(self.plan["results"], "a") as out:
                out.write(json.dumps(result) + "\n")


class _Recorder:
    """Which (contract, function) each test calls: wraps the provider's call, estimate and send."""

    def __init__(self, project, codes: dict[str, Code]):
        self.codes = codes
        self.selectors: dict[str, dict[bytes, str]] = {}
        for name in codes:
            contract_type = project.manifest.contract_types[name]
            self.selectors[name] = {keccak(text=abi.selector)[:4]: abi.name for abi in contract_type.methods}
        self.calls: set[tuple[str, str]] = set()
        self.addresses: dict[str, str | None] = {}

    def install(self) -> None:
        from ape import chain

        provider = chain.provider
        cls = type(provider)
        for method in ("send_call", "estimate_gas_cost", "send_transaction"):
            original = getattr(cls, method)
            setattr(cls, method, self._wrap(original))
        # Tests that check a view's revert reason call web3 directly (tests/support/reverts.py), past Ape.
        eth = type(provider.web3.eth)
        eth_call = eth.call

        def call(module, transaction, *args, **kwargs):
            data = transaction.get("data") or b""
            data = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
            self._note_call(provider, transaction.get("to"), data)
            return eth_call(module, transaction, *args, **kwargs)

        eth.call = call

    def _wrap(self, original):
        def wrapper(provider, txn, *args, **kwargs):
            self._note(provider, txn)
            return original(provider, txn, *args, **kwargs)

        return wrapper

    def _note(self, provider, txn) -> None:
        self._note_call(provider, txn.receiver, bytes(txn.data or b""))

    def _note_call(self, provider, receiver, data: bytes) -> None:
        if not receiver:
            hexdata = "0x" + data.hex()
            for name, code in self.codes.items():
                if hexdata.startswith(code.deployment):
                    self.calls.add((name, "__init__"))
            return
        address = str(receiver)
        if address not in self.addresses:
            runtime = "0x" + bytes(provider.get_code(address)).hex()
            self.addresses[address] = next(
                (
                    name
                    for name, code in self.codes.items()
                    if len(code.runtime) > 2 and runtime.startswith(code.runtime)
                ),
                None,
            )
        name = self.addresses[address]
        if name and (function := self.selectors[name].get(data[:4])):
            self.calls.add((name, function))

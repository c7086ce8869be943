"""Gas snapshot: fails when any figure of docs/gas.json goes up (lower it there in the same commit)."""

import json
from pathlib import Path

from perun_vyper.tools.gas_report import measure

RECORDED = json.loads((Path(__file__).resolve().parents[1] / "docs" / "gas.json").read_text())


def test_gas__every_lifecycle__not_above_docs_gas_json(project, accounts, chain):
    measured = measure(project, accounts, chain).figures
    assert set(measured) == set(RECORDED), "docs/gas.json keys differ: run `make gas`"
    higher = {key: (RECORDED[key], value) for key, value in measured.items() if value > RECORDED[key]}
    assert higher == {}, f"gas went up (recorded, measured): {higher}"
    lower = {key: (RECORDED[key], value) for key, value in measured.items() if value < RECORDED[key]}
    assert lower == {}, f"gas went down: run `make gas` and commit docs/gas.json (recorded, measured): {lower}"

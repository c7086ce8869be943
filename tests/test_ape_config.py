"""ape-config.yaml keeps the suite's own contracts (contracts/test/) out of `ape test --gas` and `--coverage`,
and never a contract we ship."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEST_CONTRACTS = sorted(path.stem for path in (ROOT / "contracts" / "test").glob("*.vy"))
SHIPPED = sorted(
    path.stem for path in [*(ROOT / "contracts").glob("*.vy"), *(ROOT / "contracts" / "apps").glob("*.vy")]
)


def _patterns(report: str) -> list[str]:
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    exclusions = config["test"][report]["exclude"]
    # A pattern with a method name leaves the contract's other methods in the report.
    return [item["contract_name"] for item in exclusions if item.get("method_name") in (None, "*")]


def test_ape_config__contract_lists__not_empty():
    assert len(TEST_CONTRACTS) >= 4
    assert SHIPPED == ["AppAdjudicator", "LedgerAdjudicator", "SlaApp", "VirtualAdjudicator"]


@pytest.mark.parametrize("report", ["gas", "coverage"])
def test_ape_config__every_test_contract_excluded_no_shipped_one(report: str):
    patterns = _patterns(report)
    missing = [name for name in TEST_CONTRACTS if not any(fnmatch(name, pattern) for pattern in patterns)]
    assert missing == [], f"add them to test.{report}.exclude in ape-config.yaml: {missing}"
    hidden = [name for name in SHIPPED if any(fnmatch(name, pattern) for pattern in patterns)]
    assert hidden == [], f"test.{report}.exclude in ape-config.yaml hides shipped contracts: {hidden}"

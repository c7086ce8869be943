"""Write the shipped contracts' ABIs into the package: src/perun_vyper/abi/<name>.json (`make abis`).

    python tools/export_abis.py

Compiles through Ape when the build is stale and writes each ABI as Ape reads it from the compiler (the
compiler's list in its order; Ape leaves out a constructor's empty ``outputs``, which the ABI specification
does not have), two-space indented with sorted keys and a trailing newline, so the files only change when
the contracts do. tests/deploy/test_package.py fails when they no longer match the compiled contracts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from perun_vyper.contracts import CONTRACT_NAMES  # noqa: E402

TARGET = ROOT / "src" / "perun_vyper" / "abi"


def abi_text(contract_type) -> str:
    """The file content for one compiled contract (``ethpm_types.ContractType``)."""
    items = [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in contract_type.abi]
    return json.dumps(items, indent=2, sort_keys=True) + "\n"


def main() -> int:
    from ape import Project

    project = Project(ROOT)
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in CONTRACT_NAMES:
        path = TARGET / f"{name}.json"
        text = abi_text(project.get_contract(name).contract_type)
        changed = not path.is_file() or path.read_text() != text
        if changed:
            path.write_text(text)
        print(f"{path.relative_to(ROOT)}: {'written' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""docs/SPEC.md lists every revert reason the shipped contracts raise, and no other."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The shipped sources: the adjudicators, their modules and the apps, not the test harnesses in contracts/test/.
SHIPPED = [*sorted((ROOT / "contracts").glob("*.vy")), *sorted((ROOT / "contracts" / "modules").glob("*.vy"))]
SHIPPED += sorted((ROOT / "contracts" / "apps").glob("*.vy"))
SOURCE_REASON = re.compile(r'"((?:ledger|virtual|app|sla): [^"]+)"')
SPEC_REASON = re.compile(r"`((?:ledger|virtual|app|sla): [^`]+)`")
LIST_HEADING = "### Every revert reason"


def _source_reasons() -> set[str]:
    return {reason for path in SHIPPED for reason in SOURCE_REASON.findall(path.read_text())}


def _spec_sections() -> tuple[str, str]:
    """SPEC's complete list of reasons (its own subsection), and the rest of SPEC."""
    text = (ROOT / "docs" / "SPEC.md").read_text()
    start = text.index(LIST_HEADING)
    end = text.index("\n#", start + len(LIST_HEADING))
    return text[start:end], text[:start] + text[end:]


def _spec_reasons(text: str) -> set[str]:
    # A reason in prose may be wrapped over two lines.
    return {" ".join(reason.split()) for reason in SPEC_REASON.findall(text)}


def _difference(label: str, missing: set[str], extra: set[str]) -> str:
    return (
        f"{label}: missing from docs/SPEC.md ({LIST_HEADING!r}): {sorted(missing)}; "
        f"in docs/SPEC.md but raised by no shipped contract: {sorted(extra)}"
    )


def test_spec__reason_list__equals_reasons_in_shipped_sources():
    listed = _spec_reasons(_spec_sections()[0])
    raised = _source_reasons()
    assert len(raised) >= 40
    assert listed == raised, _difference("revert reasons", raised - listed, listed - raised)


def test_spec__every_reason_named_in_prose__is_raised():
    named = _spec_reasons(_spec_sections()[1])
    unknown = named - _source_reasons()
    assert unknown == set(), _difference("reasons named in SPEC's prose", set(), unknown)

"""The typed record: validation, serialisation, and its documentation kept in step."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.record import CellRecord

README = Path(__file__).resolve().parent.parent / "results" / "README.md"


def _documented_top_level_fields() -> set[str]:
    names: set[str] = set()
    text = README.read_text()
    for line in text[text.index("## Record fields") :].splitlines():
        if not line.startswith("| `"):
            continue
        tokens = re.findall(r"`([^`]+)`", line.split("|")[1])
        if tokens and "." in tokens[0]:  # `latency.*.n`, `min_us`: sub-fields of one field
            names.add(tokens[0].split(".")[0])
        else:
            names.update(t.split(".")[0] for t in tokens)
    return names


def test_every_record_field_is_documented_and_nothing_else() -> None:
    fields = set(CellRecord.field_names())
    documented = _documented_top_level_fields()
    assert fields - documented == set(), "fields missing from results/README.md"
    assert documented - fields == set(), "results/README.md documents fields CellRecord lacks"


def test_record_validates_and_serialises() -> None:
    record = CellRecord(run_id="r", cell_id="c", model="m", backend="b", device="cpu",
                        status="ok", latency={"inference": {"center_us": math.inf}})  # fmt: skip
    data = record.to_json()
    assert data["latency"]["inference"]["center_us"] == "inf" and data["schema_version"] == 5
    assert CellRecord.from_json(data).cell_id == "c"
    with pytest.raises(ValueError, match="status 'fine'; valid: ok"):
        CellRecord(run_id="r", cell_id="c", model="m", backend="b", device="cpu", status="fine")


@pytest.mark.parametrize(
    ("data", "message"),
    [([1, 2], "not a JSON object"), ({"cell_id": "c"}, "field 'run_id' missing"),
     ({"run_id": "r", "cell_id": "c", "model": "m", "backend": "b", "status": 3},
      "field 'status' missing or not a string"),
     ({"run_id": "r", "cell_id": "c", "model": "m", "backend": "b", "status": "odd"},
      "status 'odd'")],
)  # fmt: skip
def test_a_line_that_is_not_a_record_is_one_error(data: object, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        CellRecord.from_json(data, where="results.jsonl:3")

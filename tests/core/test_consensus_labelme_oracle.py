"""labelme itself (5.0.1 and 6.x, in their own venvs, see tests/oracle) opens a consensus file written by the
co-annotation session, and sees the provenance as extra data."""

from __future__ import annotations

import pytest

from core.consensus.session import ConsensusSession
from core.progress import run
from tests.core.test_consensus_helpers import SIZE, FixedClock, column, edit, make_study, write_all
from tests.oracle.labelme_env import VERSIONS, ensure_oracle

pytestmark = [pytest.mark.oracle, pytest.mark.slow]  # builds (once) and runs labelme in its own venv


@pytest.mark.parametrize("version", VERSIONS)
def test_a_consensus_file_opens_in_labelme(version, tmp_path):
    study = make_study(tmp_path / "study", cases=1, slices=1)
    write_all(study, column(4, {1: ["OVCF", "KD"]}))
    edit(study, "r3", "case-0001", "s001", lambda v: v.pop())
    session = run(ConsensusSession.open(study, clock=FixedClock()))
    session.accept_unanimous()
    [ref] = session.disagreements()
    session.take_majority(ref)
    session.finalise(ref.key)
    path = study.consensus_path(*ref.key)

    [result] = ensure_oracle(version).load([path])

    assert result["ok"], result.get("error")
    assert tuple(result["image_size"]) == SIZE
    assert [s["label"] for s in result["shapes"]] == ["NORMAL", "OVCF+KD", "NORMAL", "NORMAL"]
    assert all(s["shape_type"] == "rectangle" and len(s["points"]) == 2 for s in result["shapes"])
    assert result["shapes"][3]["other_data"]["source"] == "consensus"
    assert result["shapes"][3]["other_data"]["consensus"]["method"] == "majority"
    assert "consensus" in result["otherDataKeys"]
    assert result["otherData"]["consensus"]["finalised"] is True
    assert result.get("app_shapes") == 4

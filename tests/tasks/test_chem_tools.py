"""chem-tools: the RDKit tools, the molecule table, and gold answers recomputed from RDKit."""

from __future__ import annotations

import csv
import json

import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors, rdMolDescriptors

from lab.tasks import check_task, load_suite, score_task
from lab.tools import ToolError
from lab.tools import chemistry as C
from lab.tools.registry import get_tools


def test_molecule_table_is_consistent():
    rows = list(csv.DictReader(C._TABLE.open()))
    assert len(rows) >= 40
    for r in rows:  # the hand-written formula agrees with RDKit's reading of the SMILES: no SMILES typos
        mol = Chem.MolFromSmiles(r["smiles"])
        assert mol is not None, r["name"]
        assert rdMolDescriptors.CalcMolFormula(mol) == r["formula"], r["name"]


def test_tools_against_rdkit_directly():
    aspirin = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")
    assert C.molecular_weight("Aspirin") == round(Descriptors.MolWt(aspirin), 3)
    assert C.molecular_weight("acetylsalicylic acid", exact=True) == round(Descriptors.ExactMolWt(aspirin), 3)
    assert C.formula("CC(=O)Oc1ccccc1C(=O)O") == "C9H8O4"
    assert C.name_to_smiles("acetaminophen") == Chem.MolToSmiles(Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1"))
    assert C.smiles_to_name("OC(=O)c1ccccc1OC(C)=O") == "aspirin"           # any SMILES spelling
    assert C.smiles_to_name("CN1CCCC1c1cccnc1") == "nicotine"                # stereo-free spelling too
    assert C.similarity("aspirin", "aspirin") == 1.0
    assert 0 < C.similarity("aspirin", "salicylic acid") < 1
    assert C.functional_groups("aspirin") == ["aromatic ring", "carboxylic acid", "ester"]
    assert "nitro" in C.functional_groups("nitrobenzene")
    assert C.lipinski("tripalmitin")["violations"] == 2 and not C.lipinski("tripalmitin")["passes"]
    assert C.lipinski("aspirin") | {} == {**C.lipinski("aspirin"), "passes": True, "violations": 0}
    assert C.hazard_check("TNT") == ["explosive: polynitro compound"]
    assert C.hazard_check("nitrobenzene") == []                                # one nitro group is not an alert
    assert "explosive: azide" in C.hazard_check("sodium azide")
    assert C.hazard_check("water") == []


@pytest.mark.parametrize("bad", ["", "not-a-molecule", "C1CC"])
def test_bad_molecules_raise_tool_errors(bad):
    with pytest.raises(ToolError):
        C.formula(bad)
    with pytest.raises(ToolError, match="no molecule named"):
        C.name_to_smiles("unobtainium")
    with pytest.raises(ToolError, match="not in the table"):
        C.smiles_to_name("CCCCCCCCCCCCCCCCCCCCCCCC")


def _gold(g: dict):
    """Recompute a gold answer from the computation recorded with the task."""
    if "argmax" in g:
        fn = getattr(C, g["argmax"])
        return max(g["over"], key=lambda m: fn(**{**g["args"], g["arg"]: m}))
    v = getattr(C, g["call"])(**g["args"])
    if "contains" in g:
        return "yes" if g["contains"] in v else "no"
    if "prefix" in g:
        return "yes" if any(x.startswith(g["prefix"]) for x in v) else "no"
    if g.get("nonempty"):
        return "yes" if v else "no"
    if "key" in g:
        v = v[g["key"]]
        if isinstance(v, bool):
            return "yes" if v else "no"
    if g.get("count"):
        return len(v)
    return round(v, g["round"]) if "round" in g else v


def test_every_gold_answer_is_recomputed_from_rdkit():
    tasks = load_suite("chem-tools")
    assert len(tasks) >= 20
    for t in tasks:
        assert t.answer == _gold(t.metadata["gold"]), t.id
        assert [x.name for x in get_tools(t.tools)] == t.tools
        assert check_task(t) == []


def test_gold_answers_score_one_and_wrong_answers_zero():
    for t in load_suite("chem-tools"):
        (s,) = score_task(t, str(t.answer))
        assert s.value == 1.0, t.id
        wrong = "no" if t.answer == "yes" else "yes" if t.answer == "no" else (
            t.answer + 1 if isinstance(t.answer, (int, float)) else "benzene")
        assert score_task(t, str(wrong))[0].value == 0.0, t.id


def test_tools_have_schemas_and_report_errors_as_observations():
    mw = get_tools(["molecular_weight"])[0]
    assert mw.parameters["properties"]["molecule"]["type"] == "string"
    assert mw.parameters["required"] == ["molecule"]
    assert json.loads(mw({"molecule": "aspirin"})) == C.molecular_weight("aspirin")
    assert json.loads(get_tools(["lipinski"])[0]({"molecule": "tripalmitin"}))["violations"] == 2
    with pytest.raises(ToolError, match="neither a molecule name"):
        mw({"molecule": "xyz123"})


def test_chem_task_end_to_end_through_react_loop(store):
    """A scripted chemist answers a chem-tools task with the tools through the ReAct loop; scored exactly."""
    from lab.agents.react import ReActAgent
    from lab.models.base import ToolCall
    from lab.models.scripted import ScriptedModel

    t = next(x for x in load_suite("chem-tools") if x.id == "mw-aspirin")

    def answer(messages):
        observed = float(next(m.content for m in reversed(messages) if m.role == "tool"))
        return ToolCall("", "submit", {"answer": f"{observed:.2f}"})

    model = ScriptedModel([ToolCall("", "molecular_weight", {"molecule": "aspirin"}), answer])
    result = ReActAgent(model, get_tools(t.tools)).start(store, t.instructions, task=t.key).run()
    assert result.status == "done" and result.answer == "180.16"
    (s,) = score_task(t, result.answer)
    assert s.value == 1.0 and s.provenance == "rule"

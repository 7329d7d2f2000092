"""Chemistry tools on RDKit that work offline (ChemCrow-style): plain typed functions an agent can call.

Every function takes a molecule as a common name from the bundled table (``data/molecules.csv``,
case-insensitive, synonyms included) or as a SMILES string, and raises :class:`ToolError` with a clear
message for anything it cannot read, so an agent sees the reason as an observation.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import Descriptors, rdFingerprintGenerator, rdMolDescriptors

from lab.tools.base import Tool, ToolError, tool

__all__ = [
    "CHEMISTRY_FUNCTIONS", "CHEMISTRY_TOOLS", "canonical_smiles", "formula", "functional_groups", "hazard_check",
    "lipinski", "molecular_weight", "name_to_smiles", "similarity", "smiles_to_name",
]

rdBase.DisableLog("rdApp.*")  # parse failures are reported through ToolError instead
_TABLE = Path(__file__).parent / "data" / "molecules.csv"

# SMARTS for common functional groups (names as an organic chemist would list them).
FUNCTIONAL_GROUPS: dict[str, str] = {
    "carboxylic acid": "[CX3](=O)[OX2H1]",
    "ester": "[#6][CX3](=O)[OX2H0][#6]",
    "amide": "[NX3][CX3](=[OX1])[#6]",
    "aldehyde": "[CX3;!H0](=O)",
    "ketone": "[#6][CX3](=O)[#6]",
    "alcohol": "[CX4][OX2H]",
    "phenol": "c[OX2H]",
    "ether": "[OX2;!$(O[CX3]=O);!$(O[N+](=O)[O-])]([#6])[#6]",
    "primary amine": "[NX3;H2;!$(NC=[O,N])][#6]",
    "secondary amine": "[NX3;H1;!$(NC=[O,N])]([#6])[#6]",
    "tertiary amine": "[NX3;H0;!$(NC=[O,N])]([#6])([#6])[#6]",
    "nitro": "[$([NX3](=O)=O),$([NX3+](=O)[O-])][!#8]",
    "nitrate ester": "[#6]O[N+](=O)[O-]",
    "nitrile": "[NX1]#[CX2]",
    "alkene": "[CX3]=[CX3]",
    "alkyne": "[CX2]#[CX2]",
    "aromatic ring": "[a;r]",
    "halide": "[#6][F,Cl,Br,I]",
    "acyl halide": "[CX3](=[OX1])[F,Cl,Br,I]",
    "thiol": "[#16X2H]",
    "isocyanate": "[NX2]=[CX2]=[OX1]",
    "epoxide": "C1OC1",
    "azide": "[$([NX1-]=[NX2+]=[NX1-]),$([NX2]=[NX2+]=[NX1-]),$([NX1]#[NX2+][NX1-])]",
    "peroxide": "[OX2][OX2]",
}

# Substructure alerts: (category, alert) -> SMARTS, and how many matches trigger it.
HAZARD_ALERTS: dict[tuple[str, str], tuple[str, int]] = {
    ("explosive", "polynitro compound"): ("[$([NX3](=O)=O),$([NX3+](=O)[O-])][!#8]", 2),
    ("explosive", "nitrate ester"): ("[#6]O[N+](=O)[O-]", 1),
    ("explosive", "azide"): (FUNCTIONAL_GROUPS["azide"], 1),
    ("explosive", "peroxide"): ("[OX2][OX2]", 1),
    ("explosive", "diazo compound"): ("[$([#6]=[N+]=[N-]),$([#6][N+]#N)]", 1),
    ("toxic", "acyl halide"): (FUNCTIONAL_GROUPS["acyl halide"], 1),
    ("toxic", "isocyanate"): (FUNCTIONAL_GROUPS["isocyanate"], 1),
    ("toxic", "carbonyl dihalide (phosgene-like)"): ("O=C([Cl,Br])[Cl,Br]", 1),
    ("toxic", "epoxide (alkylating agent)"): ("C1OC1", 1),
    ("toxic", "Michael acceptor (acrylamide/acrylate)"): ("[CH2]=[CH]C(=O)[N,O]", 1),
    ("toxic", "aldehyde"): ("[CX3;!H0](=O)", 1),
}


@cache
def _table() -> tuple[dict[str, str], dict[str, str]]:
    by_name: dict[str, str] = {}
    by_smiles: dict[str, str] = {}
    with _TABLE.open(newline="") as fh:
        for row in csv.DictReader(fh):
            smi = Chem.MolToSmiles(Chem.MolFromSmiles(row["smiles"]))
            for n in [row["name"], *filter(None, row["synonyms"].split("|"))]:
                by_name[n.strip().lower()] = smi
            by_smiles.setdefault(smi, row["name"])
    return by_name, by_smiles


@cache
def _patterns(smarts: str) -> Chem.Mol:
    return Chem.MolFromSmarts(smarts)


def _mol(molecule: str) -> Chem.Mol:
    if not isinstance(molecule, str) or not molecule.strip():
        raise ToolError("give a molecule as a name or a SMILES string")
    by_name, _ = _table()
    smi = by_name.get(molecule.strip().lower(), molecule.strip())
    mol = Chem.MolFromSmiles(smi)
    if mol is None:
        raise ToolError(f"{molecule!r} is neither a molecule name in the table nor valid SMILES")
    return mol


def name_to_smiles(name: str) -> str:
    """Look up a molecule's SMILES by its common name (offline table of common molecules).

    Args:
        name: Common name or synonym, e.g. "aspirin" or "acetylsalicylic acid".

    Returns:
        The canonical SMILES.
    """
    smi = _table()[0].get(name.strip().lower())
    if smi is None:
        raise ToolError(f"no molecule named {name!r} in the table")
    return smi


def smiles_to_name(smiles: str) -> str:
    """Name a molecule given as SMILES, if it is in the offline table.

    Args:
        smiles: The molecule as SMILES.

    Returns:
        Its common name.
    """
    mol = _mol(smiles)
    by_smiles = _table()[1]
    name = by_smiles.get(Chem.MolToSmiles(mol))
    if name is None:  # try without stereochemistry
        flat = Chem.MolToSmiles(mol, isomericSmiles=False)
        name = next((n for s, n in by_smiles.items()
                     if Chem.MolToSmiles(Chem.MolFromSmiles(s), isomericSmiles=False) == flat), None)
    if name is None:
        raise ToolError(f"{smiles!r} is not in the table of named molecules")
    return name


def canonical_smiles(molecule: str) -> str:
    """Canonical SMILES of a molecule.

    Args:
        molecule: A name from the table or a SMILES string.

    Returns:
        RDKit's canonical SMILES.
    """
    return Chem.MolToSmiles(_mol(molecule))


def formula(molecule: str) -> str:
    """Molecular formula in Hill order (C, H, then alphabetical), e.g. C9H8O4.

    Args:
        molecule: A name from the table or a SMILES string.

    Returns:
        The formula.
    """
    return rdMolDescriptors.CalcMolFormula(_mol(molecule))


def molecular_weight(molecule: str, exact: bool = False) -> float:
    """Molecular weight in g/mol, rounded to 3 decimals.

    Args:
        molecule: A name from the table or a SMILES string.
        exact: Monoisotopic mass instead of the average molecular weight.

    Returns:
        The weight.
    """
    mol = _mol(molecule)
    return round(rdMolDescriptors.CalcExactMolWt(mol) if exact else _average_weight(mol), 3)


def _average_weight(mol: Chem.Mol) -> float:
    """Average molecular weight (RDKit's ``Descriptors.MolWt``)."""
    weight: float = Descriptors.MolWt(mol)  # type: ignore[attr-defined]  # rdkit-stubs omit the descriptors built at import
    return weight


def functional_groups(molecule: str) -> list[str]:
    """Functional groups present in a molecule (carboxylic acid, ester, amide, nitro, ...).

    Args:
        molecule: A name from the table or a SMILES string.

    Returns:
        The names of the groups found, sorted.
    """
    mol = _mol(molecule)
    return sorted(n for n, s in FUNCTIONAL_GROUPS.items() if mol.HasSubstructMatch(_patterns(s)))


def similarity(molecule_a: str, molecule_b: str) -> float:
    """Tanimoto similarity of two molecules' Morgan fingerprints (radius 2, 2048 bits), 0 to 1.

    Args:
        molecule_a: A name from the table or a SMILES string.
        molecule_b: A name from the table or a SMILES string.

    Returns:
        The similarity, rounded to 3 decimals.
    """
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fa, fb = gen.GetFingerprint(_mol(molecule_a)), gen.GetFingerprint(_mol(molecule_b))
    return round(DataStructs.TanimotoSimilarity(fa, fb), 3)


def lipinski(molecule: str) -> dict[str, float | int | bool]:
    """Lipinski rule-of-five properties: weight <= 500, logP <= 5, H-bond donors <= 5, acceptors <= 10.

    Args:
        molecule: A name from the table or a SMILES string.

    Returns:
        ``molecular_weight``, ``logp`` (Crippen), ``h_bond_donors``, ``h_bond_acceptors``, ``violations``
        (how many rules are broken) and ``passes`` (at most one violation).
    """
    mol = _mol(molecule)
    mw, logp = _average_weight(mol), rdMolDescriptors.CalcCrippenDescriptors(mol)[0]  # Crippen (logP, MR)
    hbd, hba = rdMolDescriptors.CalcNumHBD(mol), rdMolDescriptors.CalcNumHBA(mol)
    violations = (mw > 500) + (logp > 5) + (hbd > 5) + (hba > 10)
    return {"molecular_weight": round(mw, 3), "logp": round(logp, 3), "h_bond_donors": int(hbd),
            "h_bond_acceptors": int(hba), "violations": int(violations), "passes": violations <= 1}


def hazard_check(molecule: str) -> list[str]:
    """Substructure alerts for explosive or toxic chemistry (a screen, not a safety assessment).

    Args:
        molecule: A name from the table or a SMILES string.

    Returns:
        Alerts as "category: alert" (e.g. "explosive: azide"), sorted; empty when none fires.
    """
    mol = _mol(molecule)
    return sorted(f"{cat}: {alert}" for (cat, alert), (smarts, n) in HAZARD_ALERTS.items()
                  if len(mol.GetSubstructMatches(_patterns(smarts))) >= n)


CHEMISTRY_FUNCTIONS = (name_to_smiles, smiles_to_name, canonical_smiles, formula, molecular_weight,
                       functional_groups, similarity, lipinski, hazard_check)
"""The plain functions, in the order an agent is offered them."""

# The same functions as agent tools (JSON Schema from their hints and docstrings), one module-level name each
# so ``lab.tools.registry`` finds them by the function's name.
name_to_smiles_tool = tool(name_to_smiles)
smiles_to_name_tool = tool(smiles_to_name)
canonical_smiles_tool = tool(canonical_smiles)
formula_tool = tool(formula)
molecular_weight_tool = tool(molecular_weight)
functional_groups_tool = tool(functional_groups)
similarity_tool = tool(similarity)
lipinski_tool = tool(lipinski)
hazard_check_tool = tool(hazard_check)
CHEMISTRY_TOOLS: list[Tool] = [name_to_smiles_tool, smiles_to_name_tool, canonical_smiles_tool, formula_tool,
                               molecular_weight_tool, functional_groups_tool, similarity_tool, lipinski_tool,
                               hazard_check_tool]
"""The chemistry tools as :class:`~lab.tools.Tool` objects."""

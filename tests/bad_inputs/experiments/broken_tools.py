def molar_mass(smiles: str) -> float:
    """Molar mass.

    Args:
        smiles: The molecule.
    """
    return 1.0 +

"""Statistics for human-versus-AI studies, each with bootstrap confidence intervals.

- :func:`best_of_k`, :func:`budget_curve` — best-of-k scores across time budgets (RE-Bench / METR).
- :func:`agreement`, :func:`krippendorff_alpha`, :func:`ratings_table` — agreement between judges and
  experts (kappa, weighted kappa, alpha, correlations, confusion matrix, most-disagreeing items).
- :func:`elo`, :func:`bradley_terry` — ratings from pairwise preferences, per dimension.
- :func:`paired_bootstrap`, :func:`permutation_test` — two systems on the same tasks.

Bad input raises :class:`StatsError`; a statistic undefined for valid input is NaN with a
:class:`StatsWarning`.
"""

from lab.stats.agreement import Agreement, agreement, krippendorff_alpha, majority, ratings_table
from lab.stats.best_of_k import best_of_k, best_of_k_weights, budget_curve
from lab.stats.bootstrap import CI, StatsError, StatsWarning
from lab.stats.paired import PairedResult, paired_bootstrap, permutation_test
from lab.stats.ratings import bradley_terry, elo

__all__ = [
    "CI", "Agreement", "PairedResult", "StatsError", "StatsWarning", "agreement", "best_of_k",
    "best_of_k_weights", "bradley_terry", "budget_curve", "elo", "krippendorff_alpha", "majority",
    "paired_bootstrap", "permutation_test", "ratings_table",
]

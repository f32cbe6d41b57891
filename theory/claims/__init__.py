"""The claims registry: every topic's claims, run by ``theory verify``.

Importing this package registers the claims of every topic module listed here.
"""

# importing a topic module registers its claims
from . import (architectures, catapult, deep_bootstrap, double_descent, dynamics, finite_width, kernels,  # noqa: F401
               parameterizations, scaling, signal)
from .base import (SIZES, Claim, Outcomes, Perturbation, Result, bootstrap, claim, combine, compare, compare_all,
                   condition, power_law, profile_law, registry, run, seed_for, select, sized, sweep, verify)

__all__ = ["SIZES", "Claim", "Outcomes", "Perturbation", "Result", "bootstrap", "claim", "combine", "compare",
           "compare_all", "condition", "power_law", "profile_law", "registry", "run", "seed_for", "select", "sized",
           "sweep", "verify"]

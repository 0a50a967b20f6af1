"""lrtrack: learning-rate studies with W&B sweeps, online or fully offline.

Heavy libraries (torch, wandb, matplotlib) are imported lazily by the modules
that need them, so ``import lrtrack`` and ``lrtrack --help`` stay fast.
"""

__version__ = "0.1.0"

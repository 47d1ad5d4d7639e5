"""Scaling: strategies, rounding, target solving, runtime profiles and ranked plans (pure numpy)."""

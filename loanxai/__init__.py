"""Explainable, fair and auditable loan decisions on Seldon Core (see the README)."""
from __future__ import annotations

import importlib.abc
import sys


class _AlibiWithoutShap(importlib.abc.MetaPathFinder):
    """alibi 0.9.4 loads its SHAP wrappers whenever shap is installed, and they fail to import
    without ray (a type annotation touches a missing-dependency placeholder). This project uses
    alibi's anchors and shap directly, never alibi's SHAP wrappers: while alibi loads them,
    shap is reported missing to alibi alone, which then leaves them out as it does when shap is
    not installed. Any other import of shap is untouched."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 (the finder protocol)
        if name == "shap" and "alibi.explainers.shap_wrappers" in sys.modules and "shap" not in sys.modules:
            raise ModuleNotFoundError("shap is hidden from alibi's SHAP wrappers (unused here)", name="shap")
        return None


sys.meta_path.insert(0, _AlibiWithoutShap())

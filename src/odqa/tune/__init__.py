"""Tuning search settings on a dev set (Optuna), and the settings files that carry them."""

from odqa.tune.settings_file import TunedSettings, check_disjoint, read_settings, write_settings

__all__ = ["TunedSettings", "check_disjoint", "read_settings", "write_settings"]

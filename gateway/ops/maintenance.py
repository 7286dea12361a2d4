"""Placeholder: being written."""

from __future__ import annotations

import argparse

__all__ = ["add_command"]


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register nothing yet."""

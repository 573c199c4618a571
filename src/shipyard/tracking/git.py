"""The git commit and dirty flag of a folder, when it is in a git work tree."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitState:
    """The HEAD commit of a work tree and whether it has uncommitted changes."""

    commit: str | None = None
    dirty: bool | None = None


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):  # git not installed, or hung
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(folder: Path) -> GitState:
    """HEAD and dirty flag of `folder`'s repository; both None outside git or without git."""
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return GitState()
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return GitState(commit, None if status is None else bool(status))

"""A Dockerfile parser and the hadolint rules we hold deploy/Dockerfile to, in Python."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                "SHELL", "MAINTAINER"}


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword, its arguments (continuations joined) and its line."""

    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON-array arguments (exec form), or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile; raises ValueError on an unknown instruction."""
    out: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buffer and line.lstrip().startswith("#"):
            continue  # comments inside a continued instruction
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.strip().partition(" ")
        if keyword.upper() not in INSTRUCTIONS:
            raise ValueError(f"line {start}: unknown instruction {keyword!r}")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = ""
    if buffer:
        raise ValueError("the last instruction ends with a line continuation")
    return out


def _run_commands(args: str) -> list[list[str]]:
    """The simple commands of a RUN line (split on && ; ||), as word lists."""
    commands = re.split(r"&&|\|\||;|\bthen\b|\belse\b|\bfi\b", args)
    return [shlex.split(c) for c in commands if c.strip()]


def lint(instructions: list[Instruction]) -> list[str]:
    """hadolint-style findings (rule id and line); an empty list means clean."""
    findings: list[str] = []
    stages: set[str] = set()
    args = {i.args.split("=")[0] for i in instructions if i.keyword == "ARG"}
    users: list[Instruction] = []
    shell_pipefail = False
    for ins in instructions:
        where = f"line {ins.line}"
        if ins.keyword == "FROM":
            words = ins.args.split()
            image = words[0]
            if image not in stages:
                resolved = re.sub(r"\$\{(\w+)\}", lambda m: "X" if m.group(1) in args else "", image)
                if ":" not in resolved and "@" not in resolved:
                    findings.append(f"DL3006 {where}: tag the image {image}")
                if resolved.endswith(":latest"):
                    findings.append(f"DL3007 {where}: do not use :latest")
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
        elif ins.keyword == "ADD":
            findings.append(f"DL3020 {where}: use COPY instead of ADD for files")
        elif ins.keyword == "COPY":
            source = re.search(r"--from=(\S+)", ins.args)
            if source and source.group(1) not in stages:
                findings.append(f"DL3022 {where}: COPY --from={source.group(1)} names no stage")
        elif ins.keyword == "USER":
            users.append(ins)
        elif ins.keyword == "SHELL":
            shell_pipefail = "pipefail" in ins.args
        elif ins.keyword in ("CMD", "ENTRYPOINT") and ins.exec_form() is None:
            findings.append(f"DL3025 {where}: use the JSON (exec) form for {ins.keyword}")
        elif ins.keyword == "RUN":
            if "|" in ins.args.replace("||", "") and not shell_pipefail:
                findings.append(f"DL4006 {where}: set SHELL -o pipefail before piping")
            findings += _lint_run(ins, where)
    if not users or users[-1].args.split(":")[0] in ("root", "0"):
        findings.append("DL3002: the last USER must not be root")
    for keyword in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
        if sum(i.keyword == keyword for i in instructions) > 1:
            findings.append(f"DL4003/DL4004: more than one {keyword}")
    return findings


def _lint_run(ins: Instruction, where: str) -> list[str]:
    findings = []
    apt_install = False
    for words in _run_commands(ins.args):
        if not words:
            continue
        if words[0] == "cd":
            findings.append(f"DL3003 {where}: use WORKDIR instead of cd")
        if words[0] == "sudo":
            findings.append(f"DL3004 {where}: do not use sudo")
        if words[:2] in (["apt-get", "upgrade"], ["apt-get", "dist-upgrade"]):
            findings.append(f"DL3005 {where}: do not upgrade the base image's packages")
        if words[:2] == ["apt-get", "install"]:
            apt_install = True
            if "-y" not in words and "--yes" not in words:
                findings.append(f"DL3014 {where}: apt-get install needs -y")
            if "--no-install-recommends" not in words:
                findings.append(f"DL3015 {where}: add --no-install-recommends")
            for package in (w for w in words[2:] if not w.startswith("-")):
                if "=" not in package:
                    findings.append(f"DL3008 {where}: pin the apt package {package}")
        if words[0].endswith("pip") and len(words) > 1 and words[1] == "install":
            if "--no-cache-dir" not in words:
                findings.append(f"DL3042 {where}: pip install needs --no-cache-dir")
            for package in (w for w in words[2:] if not w.startswith("-")):
                local = package.startswith((".", "/")) or package.startswith('".')
                if not local and not re.search(r"==|>=|<=|~=", package):
                    findings.append(f"DL3013 {where}: pin the pip package {package}")
    if apt_install and "rm -rf /var/lib/apt/lists" not in ins.args:
        findings.append(f"DL3009 {where}: delete the apt lists after installing")
    return findings

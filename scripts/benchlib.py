"""Shared by the benchmark scripts: the machine's description and docs/benchmarks.md sections."""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Figures written by the scripts in `scripts/` (each section names its command).
This machine is shared and noisy: compare figures as ratios measured in the same
run, not across runs or machines. Tests never assert speed.
"""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){memory}, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section `name` of docs/benchmarks.md."""
    script = Path(sys.argv[0]).resolve()
    script_name = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0]
    command = " ".join(shlex.quote(a) for a in [script_name, *sys.argv[1:]])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"<!-- bench:{name} -->\n## {title}\n\n"
               f"- command: `.venv/bin/python {command}`\n- machine: {machine()}\n- measured: {stamp}\n\n"
               f"{body.strip()}\n<!-- /bench:{name} -->\n")
    text = PAGE.read_text(encoding="utf-8") if PAGE.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    PAGE.write_text(text, encoding="utf-8")


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_of(name: str) -> int:
    """The oldest process whose executable is named `name`."""

    return int(subprocess.run(["pgrep", "-o", "-x", name], capture_output=True, text=True, check=True).stdout)


class Recording:
    """A Java Flight Recorder profile of a running JVM over a stretch of work: JFR ships with the JDK
    and samples every thread's stack, so Keycloak's own frames show where its CPU goes. Start the JVM
    with a deep stack depth (JAVA_OPTS_APPEND=-XX:FlightRecorderOptions:stackdepth=512): the default
    cuts Keycloak's stacks below the resource that was called."""

    def __init__(self, pid: int, work: Path):

        self.pid, self.path = pid, work / f"profile-{pid}.jfr"
        self.jdk = Path(os.readlink(f"/proc/{pid}/exe")).parent
        subprocess.run([str(self.jdk / "jcmd"), str(pid), "JFR.start", "name=bench", "settings=profile"],
                       check=True, capture_output=True)

    def stacks(self) -> list[list[str]]:
        """Stops the recording: each CPU sample's frames (class.method), innermost first."""

        subprocess.run([str(self.jdk / "jcmd"), str(self.pid), "JFR.stop", "name=bench", f"filename={self.path}"],
                       check=True, capture_output=True)
        printed = subprocess.run([str(self.jdk / "jfr"), "print", "--stack-depth", "512", "--events",
                                  "jdk.ExecutionSample", str(self.path)], check=True, capture_output=True,
                                 text=True).stdout
        self.path.unlink()
        return [re.findall(r"^\s+([\w.$]+)\(", sample, re.M) for sample in printed.split("jdk.ExecutionSample")[1:]]


def frame_shares(stacks: list[list[str]], frames: dict[str, str]) -> dict[str, float]:
    """For each label, the share of the samples with its method (class.method, a suffix) on the stack."""
    found = dict.fromkeys(frames, 0)
    for stack in stacks:
        for label, method in frames.items():
            if any(frame.endswith(method) for frame in stack):
                found[label] += 1
    return {label: count / max(len(stacks), 1) for label, count in found.items()}

"""Quirk references name their part of the spec (`inputs Q12`, not `Q12`: the numbers restart
in each part) and point into docs/quirks.md, which lists every quirk of the spec."""
import re
import subprocess
from pathlib import Path

import pytest

from conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
QUIRKS = ROOT / "docs" / "quirks.md"
PARTS = ("inputs", "engine", "driver")
# A reference: a part, one quirk, then more of the same part: `engine Q13, Q17`, `driver Q14–Q18`.
REFERENCE = re.compile(r"\b(inputs|engine|driver) Q(\d+)((?:(?:, |–|/)Q\d+)*)")
BARE = re.compile(r"\bQ(\d+)\b")


def listed():
    """{(part, number)} of the rows of docs/quirks.md."""
    rows = re.findall(r"^\| (inputs|engine|driver) Q(\d+) \|", QUIRKS.read_text(encoding="utf-8"), re.M)
    return {(part, int(n)) for part, n in rows}


def references(text):
    """Every (part, number) a text names, and the bare Qn it leaves unqualified."""
    named, spans = [], []
    for m in REFERENCE.finditer(text):
        named.append((m.group(1), int(m.group(2))))
        named += [(m.group(1), int(n)) for n in re.findall(r"Q(\d+)", m.group(3))]
        spans.append(m.span())
    bare = [m.group(0) for m in BARE.finditer(text)
            if not any(start <= m.start() < end for start, end in spans)]
    return named, bare


def tracked_texts():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        path = ROOT / name
        if path in (QUIRKS, Path(__file__).resolve()) or not path.is_file():   # the list; this test's examples
            continue
        try:
            yield name, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def test_reference_parser():
    named, bare = references("(engine Q13, Q17) driver Q14–Q18 inputs Q7/Q22; Q5 alone")
    assert named == [("engine", 13), ("engine", 17), ("driver", 14), ("driver", 18),
                     ("inputs", 7), ("inputs", 22)]
    assert bare == ["Q5"]


def test_every_reference_names_its_part_and_is_listed():
    known = listed()
    problems = []
    for name, text in tracked_texts():
        named, bare = references(text)
        problems += [f"{name}: bare {q} (say inputs/engine/driver {q})" for q in bare]
        problems += [f"{name}: {part} Q{n} is not in docs/quirks.md" for part, n in named
                     if (part, n) not in known]
    assert not problems, "\n".join(problems)


def test_quirk_list_matches_the_spec():
    """docs/quirks.md has exactly the quirks of each part of the spec, so a reader with only the
    repository can follow every reference."""
    spec = SHARED / "spec"
    if not spec.is_dir():
        pytest.skip(f"no specification at {spec}")
    in_spec = set()
    for part in PARTS:
        text = (spec / f"{part}.md").read_text(encoding="utf-8")
        quirks = text[text.rindex("Quirk"):]          # the quirk section closes each part
        in_spec |= {(part, int(n)) for n in
                    re.findall(r"^(?:\*\*|\* \*\*)?Q(\d+)\b", quirks, re.M)}
    assert listed() == in_spec

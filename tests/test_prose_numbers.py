"""A number in a sentence is measured by the run that shows it: every measured-looking number
in a walkthrough's markdown (a likelihood with decimals, a time, a speed-up) is backed by an
output of the same committed, executed notebook, or its sentence names where it was published."""
import math
import re

import nbformat
import pytest

from arlab.walkthrough import notebooks

LIKELIHOOD = r"bits?/dim|nats?/dim|bits?\b|nats?\b"
TIME = r"s\b|seconds?\b|min(?:utes)?\b|ms\b|h\b|hours?\b"
SPEED = r"[×x](?![\w×])(?!\s*\d)|times (?:faster|slower)"
NUMBER = r"(?<![\w.$/])(\d+(?:\.\d+)?)"
MEASURED = re.compile(rf"{NUMBER}\s*(?:({LIKELIHOOD})|({TIME})|({SPEED}))")
OUTPUT_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# a sentence quoting published work says so; those numbers come from the paper, not the run
CITED = re.compile(r"\b(quotes?|reports?|reported|published|paper|lecture)\b", re.I)


def _prose(cell) -> str:
    """Markdown without equations (numbers in $...$ are mathematics, not measurements)."""
    text = re.sub(r"\$\$.*?\$\$", " ", cell.source, flags=re.S)
    return re.sub(r"\$[^$]*\$", " ", text)


def measured_numbers(text: str) -> list[tuple[str, str]]:
    """(number, its sentence) for every measured-looking number: a likelihood given with
    decimals, or any time or speed-up."""
    found = []
    for m in MEASURED.finditer(text):
        number, likelihood = m.group(1), m.group(2)
        if likelihood and "." not in number:
            continue   # "784 bits", "2 bits per channel": sizes, not measurements
        start = max(text.rfind(". ", 0, m.start()), text.rfind("\n\n", 0, m.start())) + 1
        end = text.find(". ", m.end())
        found.append((number, text[start:end if end > 0 else len(text)].strip()))
    return found


def output_numbers(nb) -> list[float]:
    values = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "") + out.get("data", {}).get("text/plain", "")
            values += [float(v) for v in OUTPUT_NUMBER.findall(text.replace(",", ""))]
    return values


def backed(number: str, outputs: list[float]) -> bool:
    """Some output shows ``number``, maybe with more decimals."""
    decimals = len(number.partition(".")[2])
    value = float(number)
    return any(math.isclose(round(v, decimals), value, abs_tol=10 ** -decimals / 2)
               for v in outputs)


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_measured_numbers_in_prose_come_from_the_run(path):
    nb = nbformat.read(path, as_version=4)
    outputs = output_numbers(nb)
    unbacked = [(i, number, sentence[:160]) for i, cell in enumerate(nb.cells)
                if cell.cell_type == "markdown"
                for number, sentence in measured_numbers(_prose(cell))
                if not CITED.search(sentence) and not backed(number, outputs)]
    assert not unbacked, f"{path.name}: numbers typed into prose that no output shows: {unbacked}"


def test_the_scanner_sees_typed_numbers_and_spares_sizes_and_citations():
    text = ("The model reaches 0.1234 bits/dim after 42 s, a 3.5× speed-up. Each image is 784 "
            "bits. The paper reports 3.03 bits/dim.")
    numbers = [n for n, _ in measured_numbers(text)]
    assert numbers == ["0.1234", "42", "3.5", "3.03"]
    cited = [n for n, s in measured_numbers(text) if CITED.search(s)]
    assert cited == ["3.03"]
    assert backed("0.12", [0.1234]) and backed("42", [41.7]) and not backed("0.13", [0.1234])
